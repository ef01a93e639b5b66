#!/bin/sh
# Make the inputs of the John the Ripper example: hashes.txt and john.conf. Needs `openssl`.
#
#   ./prepare.sh [DIR]     write the inputs into DIR (default: the current directory)
#
# hashes.txt holds two md5crypt hashes with the same salt:
#   a: the password 7391, which incremental mode Digits6 finds after about 57% of its
#      1,111,110 candidates (position 629,101; 62,101 of 111,110 for Digits5)
#   b: a password that is not digits, which Digits6 never finds, so the session always runs
#      through the whole key space and ends with "Session completed" (a fixed amount of work)
set -eu

out=${1:-.}
mkdir -p "$out"
cd "$out"

printf 'a:%s\nb:%s\n' \
    "$(openssl passwd -1 -salt aaaaaaaa 7391)" \
    "$(openssl passwd -1 -salt aaaaaaaa 'kX9#q')" > hashes.txt

# john.conf: run-john.sh installs it as ~/.john/john.conf of an isolated home. With a private
# john.conf, John 1.9.0 does not read /etc/john/john.conf at all, so it holds all we need.
#   Idle = N    use the CPU at normal priority (Debian's default Y yields to every other process)
#   Save = 600  John's own timed rewrite of job.rec (John's default). The supervisor asks for
#               every checkpoint with SIGHUP; a timed save adds nothing to what HTCondor keeps
#               and is one more in-place rewrite that a commit could race with. (Save = 2, as
#               in the issue, also works; see docs/howto/john.md.)
#   Digits6     digits, lengths 1-6: 1,111,110 candidates, about 60 s at ~18,500 md5crypt/s
#   Digits5     the same up to length 5: 111,110 candidates, about 6 s (used by the tests)
cat > john.conf <<'EOF'
[Options]
Idle = N
Save = 600
Beep = N

[Incremental:Digits6]
File = /usr/share/john/digits.chr
MinLen = 1
MaxLen = 6
CharCount = 10

[Incremental:Digits5]
File = /usr/share/john/digits.chr
MinLen = 1
MaxLen = 5
CharCount = 10
EOF

echo "prepare.sh: wrote $(pwd)/hashes.txt and $(pwd)/john.conf"
