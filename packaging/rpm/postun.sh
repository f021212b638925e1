# pagerpipe %postun: reload systemd after the unit files went away or changed.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
