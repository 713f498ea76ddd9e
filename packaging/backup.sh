#!/bin/sh
# Backs up one gateway directory while the gateway runs:
#   backup GATEWAY_DIR BACKUP_DIR [KEEP]
# writes BACKUP_DIR/<name>-<UTC time>.tar.gz (mode 0600: it holds the city's
# private key) and keeps the newest KEEP (default 14). The credit store is
# copied with SQLite's online backup, so the copy is consistent even during an
# import; the evidence log is append-only, and a torn last record in a copy is
# repaired (and logged) by the gateway that starts from it.
set -eu
src=${1:?usage: backup GATEWAY_DIR BACKUP_DIR [KEEP]}
dst=${2:?usage: backup GATEWAY_DIR BACKUP_DIR [KEEP]}
keep=${3:-14}
[ -f "$src/baygate.ini" ] || { echo "backup: $src is not a gateway directory" >&2; exit 2; }
umask 077
mkdir -p "$dst"
name=$(basename "$src")
stamp=$(date -u +%Y%m%dT%H%M%SZ)
work=$(mktemp -d "$dst/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
db="$src/data/credit.db"
if [ -f "$db" ]; then
    sqlite3 "$db" ".backup '$work/credit.db'"
fi
# Everything but the live store (copied above) and the local API socket.
tar -C "$(dirname "$src")" --exclude="$name/data/credit.db" \
    --exclude="$name/data/credit.db-*" --exclude="$name/local.ipc" \
    -cf "$work/backup.tar" "$name"
if [ -f "$work/credit.db" ]; then
    tar -C "$work" --transform="s|^credit.db|$name/data/credit.db|" -rf "$work/backup.tar" credit.db
fi
gzip -n "$work/backup.tar"
mv "$work/backup.tar.gz" "$dst/$name-$stamp.tar.gz"
echo "backup: $dst/$name-$stamp.tar.gz"
# The newest $keep stay; names sort by time.
ls -1 "$dst" | grep -E "^$name-[0-9]{8}T[0-9]{6}Z\.tar\.gz\$" | sort -r | tail -n +"$((keep + 1))" |
    while read -r old; do rm -f "$dst/$old"; done
