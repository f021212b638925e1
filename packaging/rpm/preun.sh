# pagerpipe %preun: on erase (not upgrade), stop and disable the flush timers of every user.
if [ "$1" = 0 ] && [ -d /run/systemd/system ]; then
    for link in /etc/systemd/system/timers.target.wants/pagerpipe-flush@*.timer; do
        [ -e "$link" ] || [ -L "$link" ] || continue
        systemctl disable --now "$(basename "$link")" >/dev/null 2>&1 || :
    done
    systemctl stop 'pagerpipe-flush@*.service' >/dev/null 2>&1 || :
fi
exit 0
