#!/bin/bash
# check_order.sh - checks that the daemon's files are ordered by height (README.md):
# every include of a daemon header and every call of (or reference to) a function
# another daemon file defines must go to a file of a lower height. Prints each
# violation; exits 1 if there is one, 0 otherwise.
cd "$(dirname "$0")" || exit 2
declare -A H DEF
while read -r h f; do H[$f]=$h; done < <(sed -nE 's/^\| ([0-9]+) \| ([a-z_]+) \|.*/\1 \2/p' README.md)
bad=0
edge() { # from to what
    if [ -z "${H[$1]}" ] || [ -z "${H[$2]}" ]; then
        echo "no height: $1 -> $2 ($3)"; bad=1
    elif [ "${H[$1]}" -le "${H[$2]}" ]; then
        echo "not downward: $1 (${H[$1]}) -> $2 (${H[$2]}): $3"; bad=1
    fi
}
# Code without comments, for the call search.
code() { sed -e 's#/\*.*\*/##g' -e '/^ *\/\*/,/\*\//d' -e '/^ \*/d' "$1"; }
# The functions a file defines for others: a definition whose type line is not static.
for c in *.c; do
    for fn in $(awk '/^[a-z_][a-z0-9_]*\(/ && prev !~ /^static/ { sub(/\(.*/, ""); print } { prev = $0 }' "$c"); do
        DEF[$fn]=${c%.c}
    done
done
for f in *.c *.h; do
    m=${f%.*}
    for inc in $(grep -n '#include "gateway/daemon/' "$f" | sed -E 's#.*daemon/([a-z_]+)\.h".*#\1#'); do
        [ "$inc" = "$m" ] || edge "$m" "$inc" "$f includes $inc.h"
    done
done
for c in *.c; do
    m=${c%.c}
    body=$(code "$c")
    for fn in "${!DEF[@]}"; do
        t=${DEF[$fn]}
        [ "$t" = "$m" ] && continue
        grep -qE "\\b$fn\\b" <<<"$body" && edge "$m" "$t" "$c uses $fn"
    done
done
[ $bad = 0 ] && echo "ok: ${#H[@]} files, every include and call goes downward"
exit $bad
