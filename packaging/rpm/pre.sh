# pagerpipe %pre: the `pagerpipe` group, which owns /var/lib/pagerpipe and /var/spool/pagerpipe.
getent group pagerpipe >/dev/null || groupadd -r pagerpipe
exit 0
