# pagerpipe %post: put the users that run handlers in the `pagerpipe` group (created in %pre),
# and create the state and spool directories they write: root:pagerpipe, mode 2775
# (group-writable; setgid, so everything inside belongs to the group). See PACKAGING.md.
for user in sensu nagios icinga zabbix; do
    if getent passwd "$user" >/dev/null && ! id -nG "$user" | tr ' ' '\n' | grep -qx pagerpipe; then
        usermod -a -G pagerpipe "$user"
    fi
done
for dir in /var/lib/pagerpipe /var/spool/pagerpipe; do
    mkdir -p "$dir"
    chown root:pagerpipe "$dir"
    chmod 2775 "$dir"
done
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
