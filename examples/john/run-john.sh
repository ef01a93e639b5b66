#!/bin/sh
# Run John the Ripper 1.9.0 (Debian's `john`) with a private home inside the current directory.
#
#   ./run-john.sh JOHN-ARGUMENTS...     e.g. ./run-john.sh --session=job --incremental=Digits6 \
#                                               --format=md5crypt hashes.txt
#                                       then ./run-john.sh --restore=job to resume
#
# Why: John reads ~/.john/john.conf and appends cracked passwords to ~/.john/john.pot, where ~ is
# the home directory of the user's passwd entry (getpwuid), not $HOME. On an execute point that
# is a directory shared by every job of the user (or /root, or a home that does not exist), and
# a john.pot left there makes the next run skip the hashes it already cracked. So this script
# gives John a home in the sandbox:
#
#   ./john-home/.john/john.conf   a copy of ./john.conf, made at every start
#   ./john-home/.john/john.pot -> $PWD/john.pot  (absolute, so that it also resolves when
#                                  john-home is mounted elsewhere; the pot lives at the top of
#                                  the sandbox, where it is a checkpoint file and the output)
#
# and makes John see ./john-home as its home, in the first way that works here:
#   1. unshare: a private mount namespace with ./john-home bind-mounted over the passwd home
#      (`unshare -m` as root; `unshare -rm`, a user namespace, otherwise; needs util-linux and,
#      for non-root users, unprivileged user namespaces);
#   2. nss_wrapper: LD_PRELOAD=libnss_wrapper.so with a one-line passwd file naming ./john-home
#      (apt-get install libnss-wrapper; needs no privileges at all).
# JOHN_ISOLATION=unshare or JOHN_ISOLATION=nss_wrapper forces one; JOHN=/path/to/john picks the
# binary (default: john on PATH, else /usr/sbin/john, where Debian puts it).
#
# Every step ends in `exec`: the process that started this script becomes John itself, so the
# signals the supervisor sends (SIGHUP: save job.rec; SIGTERM/SIGINT: save and exit 1) reach it.
set -eu

# Until John has installed its own SIGHUP handler (a few ms after its exec; ~40-80 ms after this
# script starts), a SIGHUP would kill the job. Ignore it meanwhile: the ignored disposition is
# inherited through exec, and John replaces it with its handler as it starts. (John writes job.rec
# at start anyway, so a checkpoint request that arrives this early still sees a fresh job.rec.)
trap '' HUP

here=$(pwd)
home="$here/john-home"
john=${JOHN:-$(command -v john 2>/dev/null || echo /usr/sbin/john)}

mkdir -p "$home/.john"
cp john.conf "$home/.john/john.conf"
ln -sfn "$here/john.pot" "$home/.john/john.pot"

try_unshare() {
    command -v unshare >/dev/null 2>&1 || return 1
    if [ "$(id -u)" = 0 ]; then opts=-m; else opts=-rm; fi
    # Probe once: a kernel or container may forbid mount (or user) namespaces.
    unshare $opts sh -c 'mount --bind "$1" "$1"' sh "$home" 2>/dev/null || return 1
    exec unshare $opts sh -c '
        target=$(getent passwd "$(id -u)" | cut -d: -f6)
        mount --bind "$1" "$target" || exit 125
        shift
        exec "$@"' sh "$home" "$john" "$@"
}

try_nss_wrapper() {
    lib=
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
        [ -e "$d/libnss_wrapper.so" ] && lib="$d/libnss_wrapper.so" && break
    done
    [ -n "$lib" ] || return 1
    user=$(id -un 2>/dev/null || echo job)
    printf '%s:x:%s:%s:job:%s:/bin/sh\n' "$user" "$(id -u)" "$(id -g)" "$home" > "$home/passwd"
    printf '%s:x:%s:\n' "$(id -gn 2>/dev/null || echo job)" "$(id -g)" > "$home/group"
    LD_PRELOAD=$lib NSS_WRAPPER_PASSWD="$home/passwd" NSS_WRAPPER_GROUP="$home/group" \
        exec "$john" "$@"
}

case ${JOHN_ISOLATION:-auto} in
    unshare) try_unshare "$@" ;;
    nss_wrapper) try_nss_wrapper "$@" ;;
    auto) try_unshare "$@" || try_nss_wrapper "$@" ;;
    *) echo "run-john.sh: JOHN_ISOLATION must be unshare, nss_wrapper or auto" >&2; exit 2 ;;
esac
echo "run-john.sh: cannot give John a private home here: no usable 'unshare' (mount namespace)" \
     "and no libnss_wrapper.so (apt-get install libnss-wrapper)" >&2
exit 2
