#!/usr/bin/env bash
# api_test.sh BAYGATE FED_ATTACK WORKDIR SRCDIR - the HTTP API of a real gateway, with
# two gateways (Guangzhou 440100, Shenzhen 440300) on loopback; Guangzhou serves the API:
#  - /v1/status: the same fields and values as `baygate status --json`;
#  - /v1/enterprises/{uscc}: an enterprise listed at the peer is said to be listed there;
#    our own city from our store;
#  - 401 without a key and with a revoked one, 403 for a purpose outside the key's;
#  - problem+json for an invalid USCC, naming the position;
#  - /metrics passes `promtool check metrics`;
#  - /v1/openapi.json validates with a standard OpenAPI validator (npm, tests/openapi/);
#  - a client trickling its request does not stop another from being served;
#  - a huge header gets 431 and a huge body 413, and the gateway keeps serving;
#  - the log names the application, never its key nor the enterprise;
#  - /healthz and /readyz answer without a key; readyz names each check, and turns 503
#    naming our standing once our certificate is revoked (the last section);
#  - /v1/evidence/head: our signed head and the witness's cosignature; /v1/evidence: the
#    leaves `audit find --json` finds, 400 naming a malformed parameter; the bundle of
#    a lookup's exchange: the bytes `audit export` writes, verifying offline; 404 for an
#    unknown request id.
set -uo pipefail
export LC_ALL=C
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
src=$(realpath "$4") || exit 2
SUITE=api
# shellcheck source=lib.sh
source "$src/tests/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2

READY_S=60
declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen)
cities=(440100 440300)
cleanup() { stop_procs "${pid[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- set-up
run "$bg" ca init --dir CA
for c in "${cities[@]}"; do
  setup_city "$c"
  # Heads and witness rounds every second, so that an exchange is soon witnessed.
  sed -i 's/^head_interval_s = .*/head_interval_s = 1/; s/^witness_interval_s = .*/witness_interval_s = 1/' \
    "gw$c/baygate.ini"
done
api_port=$("$fa" freeport) || setup_fail freeport
printf '\n[api]\nlisten = 127.0.0.1:%s\n' "$api_port" >>gw440100/baygate.ini
run "$bg" ca crl --dir CA --out crl.pem
{
  roster_federation 1 4194304
  roster_purpose supervision false
  roster_purpose lending true
  roster_members "${cities[@]}"
  roster_permission 440100 440300 "supervision, lending" "serious-dishonesty, abnormal-operation" 5000
  roster_permission 440300 440100 "supervision, lending" "serious-dishonesty, abnormal-operation" 5000
} >roster.ini
run "$bg" roster sign --ca CA --out roster.pb roster.ini
for c in "${cities[@]}"; do run cp crl.pem roster.pb "gw$c/"; done
run "$bg" check --dir gw440100 # [api] listen is a known key

# Both cities hold the same 20 enterprises; Shenzhen lists the first 3 as seriously
# dishonest, Guangzhou grades the first 5.
run "$bg" gen --city 440100 --count 20 --seed 7 --dirty 0 --out base.csv --quiet
tail -n +2 base.csv | cut -d, -f1 >ids.txt
since=$(date -u -d '-30 days' +%F)
until=$(date -u -d '+300 days' +%F)
hdr="uscc,name,grade,evaluated_at,valid_until,serious-dishonesty:reason,serious-dishonesty:listed_at"
{ echo "$hdr"; awk -v s="$since" -v u="$until" '{ g = NR <= 5 ? "A," s "," u : ",,"
    print $1 ",Enterprise " NR "," g ",," }' ids.txt; } >gz.csv
{ echo "$hdr"; awk -v s="$since" '{ l = NR <= 3 ? "court ruling," s : ","
    print $1 ",Enterprise " NR ",,,," l }' ids.txt; } >sz.csv
run "$bg" import --dir gw440100 --strict gz.csv
run "$bg" import --dir gw440300 --strict sz.csv
listed=$(sed -n 1p ids.txt)
clean=$(sed -n 10p ids.txt)

for c in "${cities[@]}"; do start_gw "$c"; done
for c in "${cities[@]}"; do
  wait_for "$READY_S" "$bg" status --dir "gw$c" || setup_fail "gateway $c did not come up: $(tail -5 "gw$c.log")"
done
published() { (($(grep -c " psi.published " "gw$1.log") >= 3)); }
for c in "${cities[@]}"; do
  wait_for "$READY_S" published "$c" || setup_fail "$c did not publish: $(tail -5 "gw$c.log")"
done

base="http://127.0.0.1:$api_port"
key=$("$bg" apikey create --dir gw440100 --name lender-a --purposes supervision 2>>setup.log) ||
  setup_fail "apikey create"
old=$("$bg" apikey create --dir gw440100 --name old-app --purposes supervision 2>>setup.log) ||
  setup_fail "apikey create (old-app)"
# field FILE EXPR: a value of the JSON in FILE (o is the object).
field() { node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1]));
  const v=eval(process.argv[2]); console.log(typeof v==="object"?JSON.stringify(v):v);' "$@"; }
# get PATH [KEY] [curl options]: body into out.body, status code printed.
get() {
  local p=$1 k=${2:-}
  shift 2 2>/dev/null || shift
  local auth=()
  [[ -n $k ]] && auth=(-H "Authorization: Bearer $k")
  curl -s -o out.body -w '%{http_code} %{content_type}' --max-time 30 "${auth[@]}" "$@" "$base$p"
}

# ------------------------------------------------------------- keys
expect_eq "0. apikey create prints one key" "$(grep -cE '^bgk_[0-9a-f]{64}$' <<<"$key")" 1
if grep -q "$key" gw440100/data/apikeys; then bad "0. the key file holds no key" "key found"; else
  ok "0. the key file holds the hash only"; fi
expect_eq "0. the key file is 0600" "$(stat -c %a gw440100/data/apikeys)" 600
"$bg" apikey list --dir gw440100 >list.txt 2>&1
expect_eq "0. apikey list shows both applications" "$(grep -cE '^(lender-a|old-app) ' list.txt)" 2

# ------------------------------------------------------------- status
r=$(get /v1/status "$key")
expect_eq "1. GET /v1/status" "$r" "200 application/json"
cp out.body api_status.json
"$bg" status --dir gw440100 --json >cli_status.json
# The same keys, and the same values for the fields that do not move from second to second.
keys_of() { node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1]));
  const walk=(v,p)=>{ if (v&&typeof v==="object"&&!Array.isArray(v)) for (const k of Object.keys(v)) { console.log(p+k); walk(v[k],p+k+"."); } };
  walk(o,"");' "$1" | sort; }
expect_eq "1. status: the same fields as status --json" "$(diff <(keys_of api_status.json) <(keys_of cli_status.json) && echo same)" same
stable() { node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1]));
  console.log(JSON.stringify([o.city,o.name,o.roster_serial,o.crl_next_update_ms,o.certificate.not_after,
    o.cert_sha256,o.lists.map(l=>[l.list,l.epoch,l.entries]),o.peers.map(p=>[p.city,p.endpoint])]));' "$1"; }
expect_eq "1. status: the same values" "$(stable api_status.json)" "$(stable cli_status.json)"

# ------------------------------------------------------------- lookup
r=$(get "/v1/enterprises/$listed?purpose=supervision" "$key")
expect_eq "2. GET /v1/enterprises/{listed}" "$r" "200 application/json"
cp out.body lookup.json
peer_sd() { node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1]));
  const c=o.cities.find(c=>c.city===process.argv[2]); console.log(c.lists.find(l=>l.list==="serious-dishonesty").status);' "$1" "$2"; }
expect_eq "2. Shenzhen lists it (asked privately)" "$(peer_sd lookup.json 440300)" listed
expect_eq "2. Guangzhou (our store) does not" "$(peer_sd lookup.json 440100)" "not listed"
expect_eq "2. our grade from our store" "$(node -e 'const o=JSON.parse(require("fs").readFileSync("lookup.json"));console.log(o.cities[0].grade.grade)')" A
"$bg" lookup --dir gw440100 --purpose supervision --json "$listed" >cli_lookup.json
strip() { node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1]));
  for (const c of o.cities) { delete c.grade_request_id; for (const l of c.lists) delete l.request_id; }
  console.log(JSON.stringify(o));' "$1"; }
expect_eq "2. the same answer as baygate lookup --json (request ids aside)" "$(strip lookup.json)" "$(strip cli_lookup.json)"
get "/v1/enterprises/$clean?purpose=supervision" "$key" >/dev/null
expect_eq "2. an enterprise not listed there is not" "$(peer_sd out.body 440300)" "not listed"

# ------------------------------------------------------------- auth
r=$(get "/v1/status")
expect_eq "3. no key: 401 problem" "$r" "401 application/problem+json"
r=$(get "/v1/status" "bgk_$(printf '0%.0s' $(seq 64))")
expect_eq "3. an unknown key: 401" "${r%% *}" 401
run "$bg" apikey revoke --dir gw440100 --name old-app
r=$(get "/v1/status" "$old")
expect_eq "3. a revoked key: 401" "${r%% *}" 401
expect_in() { if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1" "'$3' not in $2: $(head -c 400 "$2")"; fi; }
expect_in "3. ... saying it was revoked" out.body '"detail":"the key was revoked"'
r=$(get "/v1/enterprises/$listed?purpose=lending" "$key")
expect_eq "3. a purpose outside the key's: 403 problem" "$r" "403 application/problem+json"
expect_in "3. ... naming the purposes it has" out.body "may ask for supervision, not for 'lending'"
r=$(get "/v1/enterprises/$listed" "$key")
expect_eq "3. no purpose: 400" "${r%% *}" 400

# ------------------------------------------------------------- problems
bad_code="${listed:0:17}$( [[ ${listed:17:1} == 0 ]] && echo 1 || echo 0)"
r=$(get "/v1/enterprises/$bad_code?purpose=supervision" "$key")
expect_eq "4. a bad check character: 400 problem" "$r" "400 application/problem+json"
want=$("$bg" uscc check "$bad_code" 2>&1 | sed 's/^ERR [^:]*: //')
expect_in "4. ... the detail says what uscc check says ($want)" out.body "$want"
node -e 'const o=JSON.parse(require("fs").readFileSync("out.body"));
  process.exit(o.type&&o.title&&o.status===400&&o.detail?0:1)' && ok "4. type, title, status, detail" ||
  bad "4. type, title, status, detail" "$(cat out.body)"
r=$(get "/v1/nothing" "$key")
expect_eq "4. an unknown path: 404 problem" "$r" "404 application/problem+json"
r=$(get "/v1/status" "$key" -X DELETE)
expect_eq "4. another method: 405" "${r%% *}" 405

# ------------------------------------------------------------- metrics, openapi
r=$(get /metrics "$key")
expect_eq "5. GET /metrics" "${r%% *}" 200
if promtool check metrics <out.body >promtool.out 2>&1; then ok "5. promtool check metrics"; else
  bad "5. promtool check metrics" "$(head -20 promtool.out)"; fi
for m in baygate_federation_answered_total baygate_snapshot_entries baygate_evidence_leaves \
  baygate_certificate_expiry_seconds baygate_crl_expiry_seconds baygate_api_requests_total \
  baygate_api_request_duration_seconds_bucket baygate_peer_up; do
  expect_in "5. metrics has $m" out.body "$m"
done
expect_in "5. requests counted per application" out.body 'baygate_api_requests_total{app="lender-a",route="enterprise",code="200"}'
r=$(get /v1/openapi.json)
expect_eq "6. GET /v1/openapi.json (no key)" "$r" "200 application/json"
cp out.body openapi.json
# The validator, as tests/openapi/package-lock.json pins it, installed once beside the
# test's directory (never into the source tree).
tools=$work/../openapi-tools
if [[ ! -d $tools/node_modules/@apidevtools/swagger-parser ]]; then
  mkdir -p "$tools" && cp "$src/tests/openapi/package.json" "$src/tests/openapi/package-lock.json" \
    "$src/tests/openapi/validate.js" "$tools/" &&
    (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error) >npm.log 2>&1 ||
    bad "6. the validator installs (npm ci)" "$(tail -5 npm.log)"
fi
cp "$src/tests/openapi/validate.js" "$tools/" 2>/dev/null
for p in /v1/status "/v1/enterprises/{uscc}" /metrics /healthz /readyz /v1/evidence/head /v1/evidence \
  "/v1/evidence/{request_id}/bundle"; do
  expect_eq "6. the document describes $p" "$(field openapi.json 'p=process.argv[3], o.paths[p]&&o.paths[p].get?"yes":"no"' "$p")" yes
done
if (cd "$tools" && node validate.js "$work/openapi.json") >validate.out 2>&1; then
  ok "6. the OpenAPI document validates"; else bad "6. the OpenAPI document validates" "$(head -20 validate.out)"; fi

# ------------------------------------------------------------- hostile clients
# A slow client: its request trickles a byte a second; another is served meanwhile.
( exec 3<>/dev/tcp/127.0.0.1/"$api_port"
  for ch in G E T ' ' / v 1 / s t a t; do printf '%s' "$ch" >&3; sleep 1; done
  exec 3>&- ) &
slow=$!
sleep 1
t0=$(date +%s%N)
r=$(get /v1/openapi.json)
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq "7. served while a client trickles" "${r%% *}" 200
if ((ms < 2000)); then ok "7. ... in ${ms} ms"; else bad "7. ... at once" "${ms} ms"; fi
kill "$slow" 2>/dev/null
wait "$slow" 2>/dev/null
big=$(head -c 65536 /dev/zero | tr '\0' a)
r=$(get /v1/status "$key" -H "X-Big: $big")
expect_eq "7. a 64 KiB header: 431" "${r%% *}" 431
r=$(head -c 1048576 /dev/zero | curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST \
  --data-binary @- -H 'Content-Type: application/octet-stream' "$base/v1/status")
expect_eq "7. a 1 MiB body: 413" "$r" 413
r=$(get /v1/status "$key")
expect_eq "7. the gateway keeps serving" "${r%% *}" 200

# ------------------------------------------------------------- the log
expect_in "8. the log names the application" gw440100.log 'app=lender-a'
if grep -qF -e "$key" -e "$listed" gw440100.log; then bad "8. the log holds no key, no enterprise id" "found"; else
  ok "8. the log holds no key, no enterprise id"; fi

# ------------------------------------------------------------- probes
r=$(get /healthz)
expect_eq "9. GET /healthz (no key)" "$r" "200 application/json"
expect_eq "9. ... says ok" "$(field out.body o.status)" ok
r=$(get /readyz)
expect_eq "9. GET /readyz (no key): ready" "$r" "200 application/json"
cp out.body readyz.json
expect_eq "9. ... every check named and ok" \
  "$(field readyz.json 'o.ready+" "+o.checks.map(c=>c.check+"="+c.ok).join(",")')" \
  "true gateway=true,standing=true,lists=true,evidence=true"
expect_eq "9. ... lists: what status publishes" "$(field readyz.json 'o.checks.find(c=>c.check==="lists").detail')" \
  "$(field api_status.json 'o.lists.length') lists published"
r=$(get /readyz "" -X POST)
expect_eq "9. readyz takes GET only" "${r%% *}" 405

# ------------------------------------------------------------- evidence head
r=$(get /v1/evidence/head)
expect_eq "10. evidence head without a key: 401" "${r%% *}" 401
# covered: a signed head exists and Shenzhen, our witness, has cosigned it.
covered() { get /v1/evidence/head "$key" >/dev/null &&
  [[ $(field out.body 'o.head!==null&&o.witnesses.some(w=>w.witness==="440300"&&w.covers_head)') == true ]]; }
if wait_for "$READY_S" covered; then ok "10. a signed head, cosigned by witness 440300"; else
  bad "10. a signed head, cosigned by witness 440300" "$(cat out.body)"; fi
cp out.body head.json
expect_eq "10. head: size within the log, a 32-byte root, a time" \
  "$(field head.json 'o.city+" "+(o.head.size<=o.log_size)+" "+/^[0-9a-f]{64}$/.test(o.head.root)+" "+(o.head.time_ms>0)')" \
  "440100 true true true"
expect_eq "10. the witness's cosignature: its size and when" \
  "$(field head.json 'const w=o.witnesses.find(w=>w.witness==="440300"); (w.size>=o.head.size)+" "+(w.cosigned_ms>0)+" "+w.behind')" \
  "true true 0"

# ------------------------------------------------------------- evidence find
rid=$(field lookup.json 'o.cities.find(c=>c.city==="440300").lists[0].request_id')
expect_eq "11. the lookup's exchange has a request id" "$(grep -cE '^[0-9a-f]{32}$' <<<"$rid")" 1
r=$(get "/v1/evidence?request=$rid" "$key")
expect_eq "11. GET /v1/evidence?request=ID" "$r" "200 application/json"
cp out.body find.json
"$bg" audit find --dir gw440100 --request "$rid" --json >cli_find.json 2>&1
# Each round trip of the exchange (the snapshot, then the query) leaves two leaves.
expect_eq "11. ... its round trips' leaves, sent and received, and only its" \
  "$(field find.json 'o.matches>=2&&o.matches%2===0&&o.leaves.length===o.matches&&o.leaves.every((l,i)=>l.request_id===process.argv[3]&&l.kind===(i%2?"answer-received":"request-sent"))' "$rid")" true
n=$(field find.json o.matches)
leaves() { field "$1" 'JSON.stringify([o.city,o.matches,o.ok,o.leaves])'; }
if [[ "$(leaves find.json)" == "$(leaves cli_find.json)" ]]; then ok "11. ... the same leaves as audit find --json"; else
  bad "11. ... the same leaves as audit find --json" "$(leaves find.json | head -c 300) vs $(leaves cli_find.json | head -c 300)"; fi
get "/v1/evidence?request=$rid&peer=440300&purpose=supervision" "$key" >/dev/null
expect_eq "11. peer and purpose filters keep them" "$(field out.body o.matches)" "$n"
get "/v1/evidence?request=$rid&peer=440600" "$key" >/dev/null
expect_eq "11. another peer: none" "$(field out.body o.matches)" 0
get "/v1/evidence?request=$rid&since=$(date -u -d '+1 day' +%F)" "$key" >/dev/null
expect_eq "11. since tomorrow: none" "$(field out.body o.matches)" 0
get "/v1/evidence?request=$rid&since=$(date -u -d '-1 day' +%s)&until=$(date -u +%F)" "$key" >/dev/null
expect_eq "11. since yesterday (Unix seconds) until today (a date): all" "$(field out.body o.matches)" "$n"
for p in "request=nothex" "peer=44" "purpose=" "auth_ref=abc" "since=yesterday" "until=2026-13-01"; do
  r=$(get "/v1/evidence?$p" "$key")
  expect_eq "11. $p: 400 problem" "$r" "400 application/problem+json"
  expect_in "11. ... naming ${p%%=*}" out.body "\"detail\":\"${p%%=*}"
done
r=$(get "/v1/evidence?since=2026-02-01&until=2026-01-01" "$key")
expect_eq "11. since after until: 400" "${r%% *}" 400

# ------------------------------------------------------------- evidence bundle
r=$(get "/v1/evidence/$rid/bundle")
expect_eq "12. bundle without a key: 401" "${r%% *}" 401
bundled() { [[ $(get "/v1/evidence/$rid/bundle" "$key") == "200 application/octet-stream" ]]; }
if wait_for "$READY_S" bundled; then ok "12. GET /v1/evidence/{id}/bundle: witnessed, octet-stream"; else
  bad "12. GET /v1/evidence/{id}/bundle" "$(head -c 400 out.body)"; fi
cp out.body api_bundle.pb
"$bg" audit export --dir gw440100 --request "$rid" --out cli_bundle.pb >export.out 2>&1
if cmp -s api_bundle.pb cli_bundle.pb; then ok "12. the same bytes as audit export ($(stat -c %s api_bundle.pb) bytes)"; else
  bad "12. the same bytes as audit export" "$(stat -c %s api_bundle.pb cli_bundle.pb | tr '\n' ' ') $(cat export.out)"; fi
if "$bg" audit verify-bundle api_bundle.pb --ca CA/ca.crt --roster roster.pb --crl crl.pem >verify.out 2>&1; then
  ok "12. it verifies offline (verify-bundle)"; else bad "12. it verifies offline" "$(cat verify.out)"; fi
r=$(get "/v1/evidence/$(printf '0%.0s' $(seq 32))/bundle" "$key")
expect_eq "12. an unknown request id: 404 problem" "$r" "404 application/problem+json"
r=$(get "/v1/evidence/nothex/bundle" "$key")
expect_eq "12. a malformed request id: 400 problem" "$r" "400 application/problem+json"
expect_in "12. ... naming request_id" out.body '"detail":"request_id'
r=$(get "/v1/evidence/$rid/other" "$key")
expect_eq "12. another resource under it: 404" "${r%% *}" 404

# ------------------------------------------------------------- not ready
# Our certificate revoked: peers refuse us, so readyz says so (and healthz does not).
run "$bg" ca revoke --dir CA --city 440100
run "$bg" ca crl --dir CA --out crl2.pem
cp crl2.pem gw440100/crl.pem.tmp && mv -f gw440100/crl.pem.tmp gw440100/crl.pem
not_ready() { [[ $(get /readyz) == "503 application/problem+json" ]]; }
if wait_for "$READY_S" not_ready; then ok "13. revoked: readyz 503 problem"; else
  bad "13. revoked: readyz 503 problem" "$(cat out.body)"; fi
expect_eq "13. ... the standing check fails, the others hold" \
  "$(field out.body 'o.ready+" "+o.checks.map(c=>c.check+"="+c.ok).join(",")')" \
  "false gateway=true,standing=false,lists=true,evidence=true"
expect_in "13. ... the detail names our standing" out.body "our standing is 'revoked'"
r=$(get /healthz)
expect_eq "13. healthz still 200" "${r%% *}" 200

echo "$SUITE: $pass passed, $fail failed"
((fail == 0))
