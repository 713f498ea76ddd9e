#!/usr/bin/env bash
# Remakes the seed corpora in fuzz/corpus/<harness>/ from the project's own
# tools: `baygate demo` (real rosters, certificates, CRLs, CSRs, keys,
# attestations, status lists, evidence logs, configs, city data), `baygate
# gen` (city data with defects) and the harnesses' own --make-seeds (sealed
# envelopes, snapshot streams, audit records signed by the harness's fixture).
#
#   fuzz/make_corpus.sh [BUILD_DIR]     (default: build; needs baygate and fuzz_replay_*)
#
# Keys and signatures are fresh on every run, so the bytes differ run to run;
# the shapes do not. Corpora stay small: a few files per harness.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bg=$build/baygate
for f in "$bg" "$build"/fuzz/fuzz_replay_uscc; do
  [[ -x $f ]] || { echo "make_corpus: $f missing: build first" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=fuzz/corpus

"$bg" demo --dir "$tmp/demo" --count 24 >/dev/null 2>&1
"$bg" gen --city 440300 --count 12 --seed 7 --dirty 0.3 --out "$tmp/dirty.csv" >/dev/null 2>&1
d=$tmp/demo

# seed HARNESS NAME MODE FILE: FILE's bytes behind a one-byte mode prefix
# (MODE "-": no prefix).
seed() {
  local h=$1 name=$2 mode=$3 file=$4
  mkdir -p "$out/$h"
  if [[ $mode == - ]]; then
    cp "$file" "$out/$h/$name"
  else
    { printf "\\x$(printf %02x "$mode")"; cat "$file"; } >"$out/$h/$name"
  fi
}

rm -rf "$out"
mkdir -p "$out"

# uscc: identifiers as `uscc check` sees them, clean and as people type them.
i=0
while IFS= read -r id && ((i < 8)); do
  printf '%s' "$id" >"$tmp/id"; seed uscc "id$i" - "$tmp/id"; i=$((i + 1))
done <"$d/data/440100.ids"
id=$(head -n 1 "$d/data/440100.ids")
printf '  %s\r\n' "${id,,}" >"$tmp/id"; seed uscc lower-spaced - "$tmp/id"
printf '\xef\xbb\xbf\xe3\x80\x80%s\xc2\xa0' "$id" >"$tmp/id"; seed uscc bom-ideographic - "$tmp/id"
printf '\xef\xbc\x99\xef\xbc\x91%s' "${id:2}" >"$tmp/id"; seed uscc fullwidth - "$tmp/id"

# csv and import: city data, clean (demo) and dirty (gen --dirty).
for c in 440100 440300; do
  seed csv "$c.csv" 255 "$d/data/$c.csv"
  seed import "$c.csv" 0 "$d/data/$c.csv"
done
seed csv dirty.csv 255 "$tmp/dirty.csv"
seed csv dirty-short-records.csv 8 "$tmp/dirty.csv"
seed import dirty.csv 0 "$tmp/dirty.csv"
seed import dirty-strict.csv 1 "$tmp/dirty.csv"
seed import repair.csv 0 "$d/data/440300-repair.csv"

# config: real baygate.ini files, and --listen values for init.
seed config gz.ini 0 "$d/440100/baygate.ini"
seed config rogue.ini 0 "$d/rogue/baygate.ini"
printf 'tls+tcp://127.0.0.1:7440' >"$tmp/l"; seed config listen 1 "$tmp/l"
printf 'tls+tcp://[::1]:7501' >"$tmp/l"; seed config listen-v6 1 "$tmp/l"

# certs: every PKI object a gateway or the CA loads.
seed certs ca.crt 0 "$d/440100/ca.crt"
seed certs city.crt 0 "$d/440100/city.crt"
openssl x509 -in "$d/440300/city.crt" -outform DER -out "$tmp/city.der"
seed certs city.der 1 "$tmp/city.der"
seed certs city.csr 2 "$d/440100/city.csr"
seed certs crl.pem 3 "$d/crl.pem"
seed certs city.key 4 "$d/rogue/city.key"

# attest: attestations and status lists as `baygate query --attest-dir` saves them.
n=0
for a in "$d"/attest-440100-before/*.att; do
  seed attest "att$n" 0 "$a"
  len=$(stat -c %s "$a")
  { printf "\\x02\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8)))"
    cat "$a" "$d/attest-440100-before/440300.status"; } >"$out/attest/pair$n"
  n=$((n + 1))
done
seed attest status-before 1 "$d/attest-440100-before/440300.status"
seed attest status-after 1 "$d/attest-440100-after/440300.status"

# roster: the demo's signed roster and its source (certificate paths pointed at
# the harness's fixture files).
seed roster demo.pb 0 "$d/roster.pb"
sed -e 's|certificate = \(4[0-9]*\)/city.crt|certificate = \1.crt|' "$d/roster.ini" >"$tmp/r.ini"
seed roster demo.ini 1 "$tmp/r.ini"

# audit: a real gateway's evidence log files (mode 4: u32 lengths, LE).
le32() { local v=$1; printf "\\x$(printf %02x $((v & 255)))\\x$(printf %02x $(((v >> 8) & 255)))\\x$(printf %02x $(((v >> 16) & 255)))\\x$(printf %02x $((v >> 24)))"; }
a=$d/440300/data/audit
mkdir -p "$out/audit"
{ printf '\x04'; le32 "$(stat -c %s "$a/leaves.log")"; cat "$a/leaves.log"
  le32 "$(stat -c %s "$a/heads.log")"; cat "$a/heads.log"; cat "$a/witness.log"; } >"$out/audit/demo-440300"

# bundle: a real gateway's evidence bundle of one exchange (the demo's Shenzhen log:
# the first request id it holds), besides the harness's own seeds below.
rid=$("$bg" audit find --dir "$d/440300" --json | grep -o '"request_id":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)
mkdir -p "$out/bundle"
if [[ -n $rid ]] && "$bg" audit export --dir "$d/440300" --request "$rid" --unwitnessed \
  --out "$tmp/bundle.pb" >/dev/null 2>&1; then
  seed bundle demo-440300 - "$tmp/bundle.pb"
fi

# bodies: hand-made protobuf bodies, one per decoder (first byte: the type).
mkdir -p "$out/bodies"
printf '\x00\x0a\x04ping' >"$out/bodies/ping"
printf '\x02\x08\x6b\x12\x05stale' >"$out/bodies/error"
printf '\x03\x0a\x06grades\x10\x01\x18\x02\x38\x00\x40\x80\x80\x04' >"$out/bodies/snapshot-request"
printf '\x04\x0a\x06grades\x10\x01\x18\x02\x32\x20%s\x48\x01\x52\x04BGPC' \
  "$(head -c 32 /dev/zero | tr '\0' 'd')" >"$out/bodies/snapshot-chunk"
printf '\x05\x0a\x12serious-dishonesty\x10\x01\x18\x01\x20\x01\x38\x01\x40\x01\x4a\x20%s' \
  "$(head -c 32 /dev/zero | tr '\0' 'e')" >"$out/bodies/psi-query"
printf '\x07\x08\x02' >"$out/bodies/status-request"
printf '\x09\x08\x05' >"$out/bodies/head-request"

# psi: the three asker modes, an edited answer, an answerer batch (three
# copies of the ristretto255 base point).
mkdir -p "$out/psi"
printf '\x01' >"$out/psi/membership"
printf '\x02' >"$out/psi/graded"
printf '\x03' >"$out/psi/count"
printf '\x02\x05\x01\x40\x80' >"$out/psi/graded-edited"
g='\xe2\xf2\xae\x0a\x6a\xbc\x4e\x71\xa8\x84\xa9\x61\xc5\x00\x51\x5f\x58\xe3\x0b\x6a\xa5\x82\xdd\x8d\xb6\xa6\x59\x45\xe0\x8d\x2d\x76'
printf "\\x00$g$g$g" >"$out/psi/answerer"

# The harnesses' own seeds: real sealed envelopes, snapshot streams, audit records.
for h in envelope snapshot roster attest audit bundle relay; do
  mkdir -p "$out/$h"
  "$build/fuzz/fuzz_replay_$h" --make-seeds "$out/$h" >/dev/null
done

for h in "$out"/*/; do
  printf '%-10s %3d files %7d bytes\n' "$(basename "$h")" "$(ls "$h" | wc -l)" "$(cat "$h"/* | wc -c)"
done
