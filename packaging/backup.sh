#!/bin/sh
# Backs up one gateway directory while the gateway runs:
#   backup GATEWAY_DIR BACKUP_DIR [KEEP]
# writes BACKUP_DIR/<name>-<UTC time>.tar.gz with 'baygate backup' (mode 0600: it
# holds the city's private key; a consistent copy of the store and of the evidence
# log, a manifest with every file's SHA-256) and keeps the newest KEEP (default 14).
# Restore with 'baygate restore --from FILE --dir NEWDIR'.
set -eu
src=${1:?usage: backup GATEWAY_DIR BACKUP_DIR [KEEP]}
dst=${2:?usage: backup GATEWAY_DIR BACKUP_DIR [KEEP]}
keep=${3:-14}
umask 077
mkdir -p "$dst"
name=$(basename "$src")
stamp=$(date -u +%Y%m%dT%H%M%SZ)
baygate backup --dir "$src" --out "$dst/$name-$stamp.tar.gz"
# The newest $keep stay; names sort by time.
ls -1 "$dst" | grep -E "^$name-[0-9]{8}T[0-9]{6}Z\.tar\.gz\$" | sort -r | tail -n +"$((keep + 1))" |
    while read -r old; do rm -f "$dst/$old"; done
