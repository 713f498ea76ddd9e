#!/usr/bin/env bash
# api_test.sh BAYGATE FED_ATTACK WORKDIR SRCDIR - the HTTP API of a real gateway, with
# two gateways (Guangzhou 440100, Shenzhen 440300) on loopback; Guangzhou serves the API:
#  - /v1/status: the same fields and values as `baygate status --json`;
#  - /v1/enterprises/{uscc}: an enterprise listed at the peer is said to be listed there;
#    our own city from our store;
#  - 401 without a key and with a revoked one, 403 for a purpose outside the key's;
#  - a key scoped to lists: its lookup shows the others "not in scope", its job of
#    another list is refused; an older key file (no lists field) means every list;
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
#    unknown request id;
#  - /v1/jobs: a batch query made from JSON and from a text upload, polled to done, its
#    results (JSON and CSV) one row per input id per peer, row by row as the ground
#    truth and `baygate query --csv` have them (invalid ids reported); a peer that is
#    down has an error row per id while the other answers; a job in flight holds up
#    no other call and is cancelled; 400/403/413/415 naming what is wrong; another
#    application's job is not found; our evidence of a job's exchange names the
#    application that asked (the peer's does not); after a crash a done job's results are still
#    there and the job that was running says it was lost.
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
declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen [440600]=Foshan)
# Foshan answers until the jobs' section stops it, to be the peer that is down.
cities=(440100 440300 440600)
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
  roster_permission 440100 440600 "supervision, lending" "serious-dishonesty, abnormal-operation" 5000
  roster_permission 440600 440100 "supervision, lending" "serious-dishonesty, abnormal-operation" 5000
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
run "$bg" import --dir gw440600 --strict sz.csv
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

# ------------------------------------------------------------- keys scoped to lists
# A key scoped to grades: its lookup asks no list of any city, which every card says
# ("not in scope", never "not listed"), and a job of a list is refused naming its scope.
if "$bg" apikey create --dir gw440100 --name bad-lists --purposes supervision --lists grades,nope \
  >/dev/null 2>lists_err.txt; then bad "3b. --lists with an unknown list is refused" "exit 0"; else
  expect_in "3b. --lists with an unknown list is refused, naming the lists" lists_err.txt \
    "lists 'grades,nope': comma-separated, each once, of serious-dishonesty, abnormal-operation and grades"; fi
graded=$("$bg" apikey create --dir gw440100 --name grader --purposes supervision --lists grades 2>>setup.log) ||
  setup_fail "apikey create (grader)"
"$bg" apikey list --dir gw440100 >list.txt 2>&1
expect_eq "3b. apikey list shows the key's lists" "$(awk '$1=="grader"{print $3}' list.txt)" grades
get /v1/key "$graded" >/dev/null
expect_eq "3b. GET /v1/key: the scoped key's lists" "$(field out.body o.lists)" '["grades"]'
get "/v1/enterprises/$listed?purpose=supervision" "$graded" >/dev/null
cp out.body scoped.json
expect_eq "3b. a scoped lookup: every city's lists not in scope, our own included" \
  "$(field scoped.json 'o.cities.map(c=>c.city+":"+c.lists.map(l=>l.status).join("/")).join(" ")')" \
  "440100:not in scope/not in scope 440300:not in scope/not in scope 440600:not in scope/not in scope"
expect_eq "3b. ... and the grade still answered (ours A, Shenzhen's status given)" \
  "$(field scoped.json 'o.cities[0].grade.grade+" "+o.cities[1].grade_status')" \
  "A $(field lookup.json 'o.cities[1].grade_status')"
r=$(curl -s -o out.body -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $graded" \
  -H 'Content-Type: application/json' \
  --data-binary "{\"kind\":\"membership\",\"list\":\"serious-dishonesty\",\"purpose\":\"supervision\",\"ids\":[\"$listed\"]}" \
  "$base/v1/jobs")
expect_eq "3b. a job of a list outside the key's: 403" "$r" 403
expect_in "3b. ... naming the lists it may ask" out.body "application 'grader' may ask grades, not 'serious-dishonesty'"
# A key file written before keys had lists (six fields a line): the key asks every list.
sed -i -E 's/^(lender-a( [^ ]+){5}) [^ ]+$/\1/' gw440100/data/apikeys
get /v1/key "$key" >/dev/null
expect_eq "3b. a key line without lists (an older file): every list" "$(field out.body o.lists)" \
  '["serious-dishonesty","abnormal-operation","grades"]'

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
  "/v1/evidence/{request_id}/bundle" /v1/jobs "/v1/jobs/{id}" "/v1/jobs/{id}/results"; do
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

# ------------------------------------------------------------- jobs
other=$("$bg" apikey create --dir gw440100 --name other-app --purposes supervision 2>>setup.log) ||
  setup_fail "apikey create (other-app)"
# post BODY-FILE CTYPE [QUERY] [KEY]: POST /v1/jobs; status printed, body in out.body,
# headers in out.hdr.
post() {
  curl -s -o out.body -D out.hdr -w '%{http_code}' --max-time 60 -H "Authorization: Bearer ${4:-$key}" \
    -H "Content-Type: $2" --data-binary @"$1" "$base/v1/jobs${3:-}"
}
# done_job ID: the job has ended (any final state).
done_job() { get "/v1/jobs/$1" "$key" >/dev/null && [[ $(field out.body 'o.state!=="queued"&&o.state!=="running"') == true ]]; }
head -6 ids.txt >job_ids.txt
printf 'NOT-A-USCC\n%s\n' "$bad_code" >>job_ids.txt
node -e 'const ids=require("fs").readFileSync("job_ids.txt","utf8").trim().split("\n");
  console.log(JSON.stringify({kind:"membership",list:"serious-dishonesty",purpose:"supervision",peers:["440300"],ids}))' >job1.json
r=$(post job1.json application/json)
expect_eq "13. POST /v1/jobs (JSON): 202" "$r" 202
j1=$(field out.body o.id)
expect_eq "13. ... Location: /v1/jobs/{id}" "$(tr -d '\r' <out.hdr | sed -n 's/^Location: //Ip')" "/v1/jobs/$j1"
expect_eq "13. ... the job: queued or running, made by lender-a" \
  "$(field out.body '/^(queued|running)$/.test(o.state)+" "+o.application+" "+o.kind+" "+o.progress.ids')" "true lender-a membership 8"
if wait_for 30 done_job "$j1"; then ok "13. the job runs to its end"; else bad "13. the job runs to its end" "$(cat out.body)"; fi
cp out.body job1_state.json
expect_eq "13. ... done, 1 of 1 peers, 2 invalid ids, 440300 answered" \
  "$(field job1_state.json 'o.state+" "+o.progress.peers_done+"/"+o.progress.peers_total+" "+o.progress.invalid+" "+o.peers.map(p=>p.peer+"="+p.outcome).join()+" "+(o.started!==null&&o.finished!==null)')" \
  "done 1/1 2 440300=answered true"
r=$(get "/v1/jobs/$j1/results" "$key")
expect_eq "13. results: JSON by default" "$r" "200 application/json"
cp out.body job1_results.json
# The ground truth: Shenzhen lists the first 3 ids; lines 7 and 8 are invalid.
want="1:matched 2:matched 3:matched 4:not matched 5:not matched 6:not matched 7:invalid 8:invalid"
rows() { field "$1" 'o.rows.map(r=>r.peer+"/"+r.line+":"+r.status+(r.status==="matched"?"="+r.uscc:"")).join(" ")'; }
truth=$(awk -v p=440300 'NR<=6 {printf "%s%s/%d:%s", (NR>1?" ":""), p, NR, (NR<=3?"matched="$1:"not matched")} END {printf " %s/7:invalid %s/8:invalid", p, p}' job_ids.txt)
expect_eq "13. ... one row per input id at 440300, as the ground truth" "$(rows job1_results.json)" "$truth"
expect_eq "13. ... an invalid id's row says why" \
  "$(field job1_results.json 'o.rows[6].input+" "+(o.rows[6].error.length>0)+" "+o.rows[6].id')" "NOT-A-USCC true null"
r=$(get "/v1/jobs/$j1/results?format=csv" "$key")
expect_eq "13. results: ?format=csv" "$r" "200 text/csv; charset=utf-8"
cp out.body job1.csv
get "/v1/jobs/$j1/results" "$key" -H 'Accept: text/csv' >/dev/null
if cmp -s out.body job1.csv; then ok "13. ... Accept: text/csv gives the same"; else bad "13. ... Accept: text/csv" "$(head -3 out.body)"; fi
"$bg" query --dir gw440100 --peer 440300 --list serious-dishonesty --purpose supervision --in job_ids.txt --csv >cli_job.csv 2>cli_job.err
# csv_rows FILE: the rows of a CSV (quoted cells read as such) as peer|status|line|input.
csv_rows() { node -e 'const t=require("fs").readFileSync(process.argv[1],"utf8"), rows=[];
  let f="", r=[], q=false;
  for (let i = 0; i < t.length; i++) { const c = t[i];
    if (q) { if (c === "\"") { if (t[i+1] === "\"") { f += c; i++; } else q = false; } else f += c; }
    else if (c === "\"") q = true; else if (c === ",") { r.push(f); f = ""; }
    else if (c === "\n") { r.push(f); rows.push(r); r = []; f = ""; } else f += c; }
  rows.shift(); console.log(rows.map(x => [x[0], x[13], x[14], x[15]].join("|")).join(";"));' "$1"; }
# Everything but the request id (the last column) is what `baygate query --csv` says.
expect_eq "13. ... the CSV is the CLI's --csv, row by row (request ids aside)" \
  "$(diff <(sed 's/,[^,]*$//' job1.csv) <(sed 's/,[^,]*$//' cli_job.csv) >csv.diff && echo same)" same
expect_eq "13. ... and the JSON rows are its rows" \
  "$(field job1_results.json 'o.rows.map(r=>[r.peer,r.status,r.line,r.input].join("|")).join(";")')" \
  "$(csv_rows job1.csv)"
# The evidence of the job's exchange says which application asked; the peer's does not.
jrid=$(field job1_state.json 'o.peers[0].request_id')
get "/v1/evidence?request=$jrid" "$key" >/dev/null
expect_eq "13. our evidence of the job's exchange names the application" \
  "$(field out.body 'o.matches>=2&&o.leaves.every(l=>l.application==="lender-a")')" true
"$bg" audit find --dir gw440300 --request "$jrid" --json >sz_find.json 2>&1
expect_eq "13. ... the peer's evidence of it does not" \
  "$(field sz_find.json 'o.matches>=2&&o.leaves.every(l=>l.application===undefined)')" true
# A text upload, the parameters in the query: a count (of at least min_count_batch ids).
cat ids.txt >count_ids.txt
printf 'NOT-A-USCC\n%s\n' "$bad_code" >>count_ids.txt
r=$(post count_ids.txt text/plain "?kind=count&list=serious-dishonesty&purpose=supervision&peers=440300")
expect_eq "13. POST /v1/jobs (text/plain upload): 202" "$r" 202
j2=$(field out.body o.id)
wait_for 30 done_job "$j2"
get "/v1/jobs/$j2/results" "$key" >/dev/null
expect_eq "13. ... a count: 3 at 440300, and a row per invalid id" \
  "$(field out.body 'o.rows.map(r=>r.status+(r.count!==null?"="+r.count:"")).join()')" "count=3,invalid,invalid"

# Refusals, each naming what was wrong.
printf '{"kind":"membership","list":"serious-dishonesty","purpose":"lending","ids":["%s"]}' "$listed" >j403.json
r=$(post j403.json application/json)
expect_eq "13. a purpose outside the key's: 403" "$r" 403
expect_in "13. ... naming it" out.body "may ask for supervision, not for 'lending'"
printf '{"kind":"membership","colour":"red","ids":[]}' >j400.json
r=$(post j400.json application/json)
expect_eq "13. an unknown member: 400" "$r" 400
expect_in "13. ... naming it" out.body 'unknown member \"colour\"'
printf '{"kind":"everything","list":"serious-dishonesty","purpose":"supervision","ids":["%s"]}' "$listed" >j400b.json
r=$(post j400b.json application/json)
expect_eq "13. an unknown kind: 400 naming kind" "$r:$(field out.body 'o.detail.startsWith("kind must be")')" "400:true"
{ echo "$listed"; head -c 300 /dev/zero | tr '\0' 9; echo; } >long_ids.txt
r=$(post long_ids.txt text/csv "?kind=membership&list=serious-dishonesty&purpose=supervision")
expect_eq "13. an id line over 256 bytes: 400 naming the line" \
  "$r:$(field out.body o.detail)" "400:ids:2: line longer than 256 bytes"
r=$(post job_ids.txt application/xml)
expect_eq "13. another media type: 415" "$r" 415
r=$(head -c $((64 * 1048576 + 4096)) /dev/zero | tr '\0' '1' | curl -s -o out.body -w '%{http_code}' --max-time 60 \
  -H "Authorization: Bearer $key" -H 'Content-Type: text/plain' -X POST -T - \
  "$base/v1/jobs?kind=count&list=serious-dishonesty&purpose=supervision")
expect_eq "13. an upload over 64 MiB (streamed, no length): 413" "$r" 413
expect_eq "13. ... and nothing of it is kept" "$(ls gw440100/data/jobs | grep -c '^upload-')" 0
r=$(get "/v1/jobs/$j1" "$other")
expect_eq "13. another application's job: 404" "${r%% *}" 404
r=$(get "/v1/jobs/$j1/results" "$other")
expect_eq "13. ... nor its results" "${r%% *}" 404
get /v1/jobs "$other" >/dev/null
expect_eq "13. ... nor in its list" "$(field out.body 'o.jobs.length')" 0
get /v1/jobs "$key" >/dev/null
expect_eq "13. the caller's list: its jobs, newest first" "$(field out.body 'o.jobs.map(j=>j.id).join()')" "$j2,$j1"

# A job in flight (Shenzhen stopped, so its peer hangs) holds up nothing else, and is
# cancelled: it ends once that peer's call returns.
kill -STOP "${pid[440300]}"
sed 's/"peers":\["440300"\]/"peers":["440300","440600"]/' job1.json >job3.json
post job3.json application/json >/dev/null
j3=$(field out.body o.id)
running() { get "/v1/jobs/$j3" "$key" >/dev/null && [[ $(field out.body o.state) == running ]]; }
wait_for 10 running
t0=$(date +%s%N)
r=$(get /v1/status "$key")
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq "13. a lookup of status while a job is in flight" "${r%% *}" 200
if ((ms < 2000)); then ok "13. ... at once (${ms} ms)"; else bad "13. ... at once" "${ms} ms"; fi
# Two run at once and 8 wait: then 503, and a queued job is cancelled at once.
more=()
for i in $(seq 12); do
  r=$(post job1.json application/json)
  [[ $r == 202 ]] || break
  more+=("$(field out.body o.id)")
done
expect_eq "13. with both workers busy, 9 more taken (1 runs, 8 wait), then 503 jobs-busy" \
  "${#more[@]} $r $(field out.body o.type)" "9 503 urn:baygate:problem:jobs-busy"
expect_eq "13. ... with Retry-After" "$(tr -d '\r' <out.hdr | grep -ci '^Retry-After: ')" 1
get "/v1/jobs/${more[8]}" "$key" -X DELETE >/dev/null
expect_eq "13. a queued job cancelled: at once" "$(field out.body o.state)" cancelled
for m in "${more[@]:0:8}"; do get "/v1/jobs/$m" "$key" -X DELETE >/dev/null; done
r=$(get "/v1/jobs/$j3" "$key" -X DELETE)
expect_eq "13. DELETE /v1/jobs/{id}: 200, the cancel noted" "${r%% *}:$(field out.body o.cancel_requested)" "200:true"
kill -CONT "${pid[440300]}"
wait_for 60 done_job "$j3"
expect_eq "13. ... it ends cancelled, before the next peer" \
  "$(field out.body 'o.state+" "+o.progress.peers_done')" "cancelled 1"
r=$(get "/v1/jobs/$j3/results" "$key")
expect_eq "13. ... without results: 409 naming its state" "${r%% *}:$(field out.body 'o.detail.includes("cancelled")')" "409:true"
r=$(get "/v1/jobs/$j3" "$key" -X DELETE)
expect_eq "13. ... cancelling it again: 409" "${r%% *}" 409

# A peer that is down: its rows say error, the other peer's are answered.
kill -TERM "${pid[440600]}"
wait "${pid[440600]}" 2>/dev/null
sed 's/"peers":\["440300"\]/"peers":"all"/' job1.json >job4.json
post job4.json application/json >/dev/null
j4=$(field out.body o.id)
wait_for 60 done_job "$j4"
cp out.body job4_state.json
expect_eq "13. peers all, Foshan down: done, 440300 answered, 440600 an error" \
  "$(field job4_state.json 'o.state+" "+o.progress.peers_done+"/"+o.progress.peers_total+" "+o.peers.map(p=>p.peer+"="+p.outcome).join()')" \
  "done 2/2 440300=answered,440600=error"
expect_eq "13. ... with its reason" "$(field job4_state.json 'o.peers[1].reason.length>0')" true
get "/v1/jobs/$j4/results" "$key" >/dev/null
expect_eq "13. ... rows: 440300 as before, 440600 error but for the invalid ids" "$(rows out.body)" \
  "$truth 440600/1:error 440600/2:error 440600/3:error 440600/4:error 440600/5:error 440600/6:error 440600/7:invalid 440600/8:invalid"

# A crash (kill -9) while a job runs (Shenzhen stopped again, so it hangs): after the
# restart the done job's results are still there, byte for byte, and the one that ran
# says it was lost.
kill -STOP "${pid[440300]}"
post job1.json application/json >/dev/null
j5=$(field out.body o.id)
running5() { get "/v1/jobs/$j5" "$key" >/dev/null && [[ $(field out.body o.state) == running ]]; }
wait_for 10 running5 || bad "13. a job running at the crash" "$(cat out.body)"
kill -KILL "${pid[440100]}"
wait "${pid[440100]}" 2>/dev/null
kill -CONT "${pid[440300]}"
start_gw 440100
api_up() { [[ $(get /healthz) == "200 application/json" ]]; }
wait_for "$READY_S" api_up || bad "13. the API comes back" "$(tail -5 gw440100.log)"
r=$(get "/v1/jobs/$j1/results?format=csv" "$key")
if [[ ${r%% *} == 200 ]] && cmp -s out.body job1.csv; then ok "13. after a restart: the done job's results, the same bytes"; else
  bad "13. after a restart: the done job's results" "$r $(head -3 out.body)"; fi
get "/v1/jobs/$j1" "$key" >/dev/null
expect_eq "13. ... and its state" "$(field out.body 'o.state+" "+o.application')" "done lender-a"
get "/v1/jobs/$j5" "$key" >/dev/null
expect_eq "13. the job that ran at the crash: lost, saying so" \
  "$(field out.body 'o.state+" "+o.error.includes("stopped while the job ran")')" "lost true"
r=$(get "/v1/jobs/$j5/results" "$key")
expect_eq "13. ... its results: 409 naming it lost" "${r%% *}:$(field out.body 'o.detail.includes("is lost")')" "409:true"
if grep -qF -e "$listed" gw440100.log; then bad "13. the log names no id a job asked about" "found"; else
  ok "13. the log names no id a job asked about"; fi
expect_in "13. the log names the job's application" gw440100.log "api.job_start job=$j1 app=lender-a"

# ------------------------------------------------------------- not ready
# Our certificate revoked: peers refuse us, so readyz says so (and healthz does not).
run "$bg" ca revoke --dir CA --city 440100
run "$bg" ca crl --dir CA --out crl2.pem
cp crl2.pem gw440100/crl.pem.tmp && mv -f gw440100/crl.pem.tmp gw440100/crl.pem
not_ready() { [[ $(get /readyz) == "503 application/problem+json" ]]; }
if wait_for "$READY_S" not_ready; then ok "14. revoked: readyz 503 problem"; else
  bad "14. revoked: readyz 503 problem" "$(cat out.body)"; fi
expect_eq "14. ... the standing check fails, the others hold" \
  "$(field out.body 'o.ready+" "+o.checks.map(c=>c.check+"="+c.ok).join(",")')" \
  "false gateway=true,standing=false,lists=true,evidence=true"
expect_in "14. ... the detail names our standing" out.body "our standing is 'revoked'"
r=$(get /healthz)
expect_eq "14. healthz still 200" "${r%% *}" 200

echo "$SUITE: $pass passed, $fail failed"
((fail == 0))
