#!/bin/sh
# Writes the man pages, baygate(1) and one baygate-CMD(1) per command, from
# the binary's own help text with help2man: the help text is their one source.
#   manpages.sh BAYGATE OUTDIR VERSION
set -eu
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
out=$2
version=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

h2m() { # name description include-file program
    help2man --no-info --no-discard-stderr --section=1 \
        --source="baygate $version" --manual="baygate manual" \
        --version-string="$version" --name="$2" --include="$3" \
        --output="$out/$1.1" "$4"
}

"$bin" help | awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/' |
    sed 's/^  //' | grep -v '^help ' >"$tmp/commands"

# The help text's EXAMPLES and EXIT STATUS headings become help2man's sections
# of those names (a line "*NAME*"), and each example a "$ " line (verbatim).
sections='/^EXAMPLES$/,/^$/s/^  baygate/  $ baygate/; s/^\(EXAMPLES\|EXIT STATUS\)$/*\1*/'
see_also=""
while read -r cmd summary; do
    # A wrapper named baygate-CMD gives the page its own title and NAME line.
    # It takes the help text from stdout or stderr, whatever the exit status,
    # so that one command's help going to the wrong stream cannot lose its page.
    printf '#!/bin/sh\n"%s" %s "$@" 2>&1 | sed "%s"\nexit 0\n' "$bin" "$cmd" "$sections" \
        >"$tmp/baygate-$cmd"
    chmod +x "$tmp/baygate-$cmd"
    printf '[SEE ALSO]\n.BR baygate (1)\n' >"$tmp/$cmd.h2m"
    h2m "baygate-$cmd" "$summary" "$tmp/$cmd.h2m" "$tmp/baygate-$cmd"
    see_also="$see_also.BR baygate-$cmd (1)
"
done <"$tmp/commands"

cat >"$tmp/baygate.h2m" <<EOT
[FILES]
.TP
.I /var/lib/baygate/NAME
the gateway directory of the service instance baygate@NAME
.TP
.I /etc/default/baygate
options for every baygate@ service instance
[SEE ALSO]
$see_also
EOT
printf '#!/bin/sh\n"%s" "$@" 2>&1 | sed "%s"\nexit 0\n' "$bin" "$sections" >"$tmp/baygate"
chmod +x "$tmp/baygate"
h2m baygate "privacy-preserving credit exchange gateway" "$tmp/baygate.h2m" "$tmp/baygate"
