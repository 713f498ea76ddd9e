#!/usr/bin/env bash
# evidence_test.sh BAYGATE FED_ATTACK WORKDIR - the evidence of one exchange between
# two real gateways (Guangzhou 440100 asks, Shenzhen 440300 answers) on loopback:
# the request id `baygate query` prints (text, --json, --csv); `audit find --request`
# on both sides returns that exchange's leaves and nothing else; `audit export` once a
# witness has cosigned (heads and witness rounds every second); `audit verify-bundle`
# with only ca.crt and roster.pb copied to a fresh directory, and its refusals of
# tampered copies, of a roster without the witness and of another CA.
#
# FED_ATTACK is only used for free ports. Deadlines are generous and polled (the same
# script runs the ASan build); every process started here is stopped on exit.
set -uo pipefail
export LC_ALL=C
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
SUITE=evidence
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2
t_start=$SECONDS

READY_S=60
COUNT=400
declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen)
cities=(440100 440300)
cleanup() { stop_procs "${pid[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- set-up

run "$bg" ca init --dir CA
for c in "${cities[@]}"; do
  setup_city "$c"
  sed -i 's/^head_interval_s = .*/head_interval_s = 1/; s/^witness_interval_s = .*/witness_interval_s = 1/' \
    "gw$c/baygate.ini"
done
run "$bg" ca crl --dir CA --out crl.pem
{
  roster_federation 1 65536
  roster_purpose supervision false
  roster_members "${cities[@]}"
  roster_permission 440100 440300 supervision "serious-dishonesty, abnormal-operation" 1000000
  roster_permission 440300 440100 supervision "serious-dishonesty, abnormal-operation" 1000000
} >roster.ini
run "$bg" roster sign --ca CA --out roster.pb roster.ini
for c in "${cities[@]}"; do run cp crl.pem roster.pb "gw$c/"; done
run "$bg" gen --city 440100 --count "$COUNT" --seed 21 --out 440100.csv --quiet
run "$bg" gen --city 440300 --count "$COUNT" --seed 22 --share 440100.csv --share-rate 0.3 \
  --out 440300.csv --quiet
for c in "${cities[@]}"; do
  run "$bg" import --data-dir "gw$c/data" --city "$c" --strict "$c.csv"
done
cut -d, -f1 440100.csv | tail -n +2 | tr -d '"' >ids.txt

published() { (($(grep -c " psi.published " "gw$1.log") >= 3)); }
for c in "${cities[@]}"; do start_gw "$c"; done
for c in "${cities[@]}"; do
  if ! wait_for "$READY_S" "$bg" status --dir "gw$c" || ! wait_for "$READY_S" published "$c"; then
    bad "gateway $c did not come up and publish" "$(tail -5 "gw$c.log")"
    echo "$SUITE: $pass passed, $fail failed"
    exit 1
  fi
done
ok "two gateways up, lists published"

# ------------------------------------------------ the request id, printed

query() {
  "$bg" query --dir gw440100 --peer 440300 --list serious-dishonesty --purpose supervision \
    --in ids.txt --timeout-ms 20000 "$@" >q.out 2>q.err
}
query --csv
expect_eq "1. query --csv: exit" "$?" 0
hex32='^[0-9a-f]{32}$'
if [[ $(head -1 q.out) == *",list,grade_status,request_id" ]]; then
  ok "1. the CSV header ends with request_id"
else
  bad "1. CSV header" "$(head -1 q.out)"
fi
rid=$(tail -n +2 q.out | awk -F, '{ print $NF }' | sort -u)
rows=$(($(wc -l <q.out) - 1))
if [[ $rid =~ $hex32 ]] && ((rows == $(wc -l <ids.txt))); then
  ok "1. one request id on each of the $rows rows (one per input line): $rid"
else
  bad "1. one request id per exchange" "rows $rows, ids: $(head -3 <<<"$rid")"
fi
query
rid_text=$(awk '/^  request / { print $2 }' q.out)
query --json
rid_json=$(grep -o '"request_id":"[0-9a-f]*"' q.out | head -1 | cut -d'"' -f4)
if [[ $rid_text =~ $hex32 && $rid_json =~ $hex32 && $rid_text != "$rid" && $rid_json != "$rid_text" ]]; then
  ok "1. the table header and --json carry the request id, a new one per query"
else
  bad "1. request id in text and JSON" "text '$rid_text' json '$rid_json' csv '$rid'"
fi

# --------------------------------------------------------------- audit find

find_n() { "$bg" audit find --dir "gw$1" "${@:2}" --json | grep -o '"matches":[0-9]*' | cut -d: -f2; }
n_gz=$(find_n 440100 --request "$rid")
n_sz=$(find_n 440300 --request "$rid")
if ((n_gz >= 4 && n_gz == n_sz)); then
  ok "2. audit find --request: $n_gz leaves on each side (two per round trip)"
else
  bad "2. audit find --request on both sides" "Guangzhou $n_gz, Shenzhen $n_sz"
fi
"$bg" audit find --dir gw440300 --request "$rid" >f.out 2>&1
# (leaf rows: index, time, kind, peer, purpose, list, outcome, request id)
kinds=$(awk '$2 ~ /^[0-9-]+T/ { print $3 }' f.out | sort -u | tr '\n' ' ')
others=$(awk -v r="$rid" '$2 ~ /^[0-9-]+T/ && $NF != r' f.out | wc -l)
if [[ $kinds == "request-answered request-received " ]] && ((others == 0)); then
  ok "2. Shenzhen's leaves of it: $kinds, each with the request id"
else
  bad "2. Shenzhen's leaves of the exchange" "$(head -5 f.out)"
fi
"$bg" audit find --dir gw440100 --request "$rid" --json >f.json 2>&1
if grep -q '"kind":"request-sent"' f.json && grep -q '"kind":"answer-received"' f.json &&
  ! grep -q '"kind":"request-received"' f.json && grep -q '"purpose":"supervision"' f.json; then
  ok "2. Guangzhou's leaves of it (--json): request-sent and answer-received"
else
  bad "2. Guangzhou's leaves" "$(head -c 400 f.json)"
fi
all=$(find_n 440300)
expect_eq "2. other filters: --peer 440100 --purpose supervision matches every leaf of Shenzhen's" \
  "$(find_n 440300 --peer 440100 --purpose supervision)" "$all"
expect_eq "2. other filters: --purpose lending, --since tomorrow, --peer 440600 match none" \
  "$(find_n 440300 --purpose lending) $(find_n 440300 --since "$(date -u -d tomorrow +%F)") $(find_n 440300 --peer 440600)" \
  "0 0 0"
expect_eq "2. --since and --until around today match them all" \
  "$(find_n 440300 --since "$(date -u +%F)" --until "$(date -u +%F)")" "$all"
"$bg" audit find --dir gw440300 --request nothex >f.out 2>&1
expect_eq "2. a malformed request id: usage error" "$?" 2

# ------------------------------------------------------------- export, verify

export_sz() { "$bg" audit export --dir gw440300 --request "$rid" --out bundle.pb >e.out 2>e.err; }
if wait_for 60 export_sz; then
  ok "3. Shenzhen exports the bundle once Guangzhou has cosigned: $(grep -o 'cosigned by .*' e.out)"
else
  bad "3. export" "$(cat e.out e.err | tail -3)"
fi
if grep -q "verified against this gateway's CA certificate and roster" e.out; then
  ok "3. export checked it against the gateway's own roster"
else
  bad "3. export self-check" "$(cat e.out e.err)"
fi
if ! grep -a -q -F -f ids.txt bundle.pb; then
  ok "3. no enterprise identifier in the bundle"
else
  bad "3. no identifier in the bundle" "found one"
fi
mkdir -p fresh && cp CA/ca.crt roster.pb fresh/ && cp bundle.pb fresh/
(cd fresh && "$bg" audit verify-bundle bundle.pb --ca ca.crt --roster roster.pb >../v.out 2>&1)
vrc=$?
if [[ $vrc == 0 ]] && grep -q "^OK: evidence of request $rid in 440300's log" v.out &&
  grep -q "cosigned by 1 witness (roster members, pinned certificates): 440100" v.out &&
  grep -q "$n_sz leaves, each decoded and proven" v.out; then
  ok "3. verify-bundle with only ca.crt and roster.pb: $(grep -c request- v.out) leaves, witness 440100"
else
  bad "3. verify-bundle" "exit $vrc: $(head -8 v.out)"
fi
(cd fresh && "$bg" audit verify-bundle bundle.pb --ca ca.crt --roster roster.pb --json --min-witnesses 1 >../v.json 2>&1)
if grep -q '"ok":true' v.json && grep -q '"witnesses":\[{"witness":"440100"' v.json; then
  ok "3. verify-bundle --json"
else
  bad "3. verify-bundle --json" "$(head -c 300 v.json)"
fi
(cd fresh && "$bg" audit verify-bundle bundle.pb --ca ca.crt --roster roster.pb --min-witnesses 2 >../v.out 2>&1)
if [[ $? == 1 ]] && grep -q "^FAIL: 1 witness cosigned, at least 2 required" v.out; then
  ok "3. --min-witnesses 2: FAIL, exit 1"
else
  bad "3. --min-witnesses" "$(cat v.out)"
fi

# tampered copies: a leaf's purpose edited (still a valid leaf, another hash); a byte of
# the head's signature; a roster without the witness; another federation's CA.
off=$(grep -a -b -o supervision fresh/bundle.pb | head -1 | cut -d: -f1)
cp fresh/bundle.pb fresh/leaf.pb
printf 't' | dd of=fresh/leaf.pb bs=1 seek="$off" conv=notrunc 2>/dev/null
(cd fresh && "$bg" audit verify-bundle leaf.pb --ca ca.crt --roster roster.pb >../v.out 2>&1)
if [[ $? == 1 ]] && grep -q "^FAIL: leaf [0-9]* is not in the signed tree" v.out; then
  ok "4. a leaf byte changed: $(cut -c1-90 v.out)"
else
  bad "4. tampered leaf" "$(cat v.out)"
fi
{
  roster_federation 2 65536
  roster_purpose supervision false
  roster_members 440300
} >r2.ini
run "$bg" roster sign --ca CA --out fresh/r2.pb r2.ini
(cd fresh && "$bg" audit verify-bundle bundle.pb --ca ca.crt --roster r2.pb >../v.out 2>&1)
if [[ $? == 1 ]] && grep -q "^FAIL: cosignature 1 (by 440100): 440100 is not a member of the roster" v.out; then
  ok "4. a witness not in the roster: $(cut -c1-90 v.out)"
else
  bad "4. cosignature from a non-member" "$(cat v.out)"
fi
run "$bg" ca init --dir CA2
# the same roster signed by another CA: members pinned by fingerprint (as roster show says)
"$bg" roster show roster.pb >show.out 2>&1
for c in "${cities[@]}"; do
  fp=$(awk -v c="$c" '$1 == c { m = 1 } m && $1 == "certificate" { print $3; exit }' show.out)
  sed -i "s|^certificate = gw$c/city.crt\$|fingerprint = $fp|" roster.ini
done
run "$bg" roster sign --ca CA2 --out fresh/r3.pb roster.ini
(cd fresh && "$bg" audit verify-bundle bundle.pb --ca ../CA2/ca.crt --roster r3.pb >../v.out 2>&1)
if [[ $? == 1 ]] && grep -q "^FAIL: the log's city: the certificate of 440300" v.out; then
  ok "4. another federation's CA: $(cut -c1-90 v.out)"
else
  bad "4. another CA" "$(cat v.out)"
fi
head -c 100 fresh/bundle.pb >fresh/short.pb
(cd fresh && "$bg" audit verify-bundle short.pb --ca ca.crt --roster roster.pb >../v.out 2>&1)
if [[ $? == 1 ]] && grep -q "^FAIL: evidence bundle" v.out; then
  ok "4. a truncated bundle: $(cut -c1-70 v.out)"
else
  bad "4. truncated bundle" "$(cat v.out)"
fi

# The asking side's bundle too (Shenzhen witnesses Guangzhou).
export_gz() { "$bg" audit export --dir gw440100 --request "$rid" --out fresh/gz.pb >e.out 2>e.err; }
if wait_for 60 export_gz &&
  (cd fresh && "$bg" audit verify-bundle gz.pb --ca ca.crt --roster roster.pb >../v.out 2>&1) &&
  grep -q "cosigned by 1 witness.*: 440300" v.out; then
  ok "5. Guangzhou's bundle of the same exchange verifies, witnessed by Shenzhen"
else
  bad "5. the asking side's bundle" "$(cat e.err v.out | tail -4)"
fi
"$bg" audit export --dir gw440300 --request 00000000000000000000000000000000 --out none.pb >e.out 2>&1
if [[ $? == 1 ]] && grep -q "no leaf of 440300's log carries request id" e.out && [[ ! -e none.pb ]]; then
  ok "5. export of an unknown request id: nothing written, exit 1"
else
  bad "5. export of an unknown request" "$(cat e.out)"
fi

echo "# total: $((SECONDS - t_start)) s"
echo "$SUITE: $pass passed, $fail failed"
((fail == 0))
