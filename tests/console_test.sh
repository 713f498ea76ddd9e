#!/usr/bin/env bash
# console_test.sh BAYGATE FED_ATTACK WORKDIR SRCDIR - the web console in a real browser
# (Debian's chromium, headless, driven by puppeteer-core pinned by tests/console/), with
# two gateways (广州 440100, 深圳 440300) on loopback; Guangzhou serves the API and the
# console:
#  - the console's files: their types, ETags (304 when unchanged), the security headers
#    (a strict Content-Security-Policy, nosniff, no-referrer, no framing), 404 problems;
#  - in the browser: a wrong key shows the API's problem; the right key shows the status
#    page (both cities, the peer reachable, lists and epochs as the API has them); a lookup
#    of an enterprise the peer lists shows it listed there and the grades, validity and
#    attestation in words; an invalid USCC shows the API's error beside the field; with
#    the peer stopped its card says it did not answer and the answer is incomplete;
#  - no request leaves the gateway's origin, no script error nor CSP violation.
# Exits 77 (ctest SKIP_RETURN_CODE) only when chromium is not installed.
set -uo pipefail
export LC_ALL=C
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
src=$(realpath "$4") || exit 2
SUITE=console
# shellcheck source=lib.sh
source "$src/tests/lib.sh" || exit 2
chromium=$(command -v chromium || true)
if [[ -z $chromium ]]; then
  echo "$SUITE: SKIPPED: chromium is not installed (scripts/deps.sh installs it)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work/shots" || exit 2
cd "$work" || exit 2

READY_S=60
declare -A pid=() port=() url=() name=([440100]="广州市 Guangzhou" [440300]="深圳市 Shenzhen")
cities=(440100 440300)
cleanup() {
  [[ -n ${drive:-} ]] && kill "$drive" 2>/dev/null
  stop_procs "${pid[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- set-up
# puppeteer-core, as tests/console/package-lock.json pins it, installed once beside the
# test's directory (never into the source tree), while the gateways are made.
tools=$work/../console-tools
if [[ ! -d $tools/node_modules/puppeteer-core ]] ||
  ! cmp -s "$src/tests/console/package-lock.json" "$tools/package-lock.json"; then
  mkdir -p "$tools" && cp "$src/tests/console/package.json" "$src/tests/console/package-lock.json" "$tools/" &&
    (cd "$tools" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) >npm.log 2>&1 &
  npm_pid=$!
fi
run "$bg" ca init --dir CA
for c in "${cities[@]}"; do setup_city "$c"; done
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

# Both cities hold the same 20 enterprises; Shenzhen lists the first 3 as seriously
# dishonest and grades the first 5 B, Guangzhou grades the first 5 A.
run "$bg" gen --city 440100 --count 20 --seed 7 --dirty 0 --out base.csv --quiet
tail -n +2 base.csv | cut -d, -f1 >ids.txt
since=$(date -u -d '-30 days' +%F)
until=$(date -u -d '+300 days' +%F)
hdr="uscc,name,grade,evaluated_at,valid_until,serious-dishonesty:reason,serious-dishonesty:listed_at"
{ echo "$hdr"; awk -v s="$since" -v u="$until" '{ g = NR <= 5 ? "A," s "," u : ",,"
    print $1 ",Enterprise " NR "," g ",," }' ids.txt; } >gz.csv
{ echo "$hdr"; awk -v s="$since" -v u="$until" '{ l = NR <= 3 ? "court ruling," s : ","
    g = NR <= 5 ? "B," s "," u : ",,"
    print $1 ",Enterprise " NR "," g "," l }' ids.txt; } >sz.csv
run "$bg" import --dir gw440100 --strict gz.csv
run "$bg" import --dir gw440300 --strict sz.csv
listed=$(sed -n 1p ids.txt)
bad_code="${listed:0:17}$([[ ${listed:17:1} == 0 ]] && echo 1 || echo 0)"
bad_detail=$("$bg" uscc check "$bad_code" 2>&1 | sed 's/^ERR [^:]*: //')

for c in "${cities[@]}"; do start_gw "$c"; done
for c in "${cities[@]}"; do
  wait_for "$READY_S" "$bg" status --dir "gw$c" || setup_fail "gateway $c did not come up: $(tail -5 "gw$c.log")"
done
published() { (($(grep -c " psi.published " "gw$1.log") >= 3)); }
for c in "${cities[@]}"; do
  wait_for "$READY_S" published "$c" || setup_fail "$c did not publish: $(tail -5 "gw$c.log")"
done
key=$("$bg" apikey create --dir gw440100 --name lender-a --purposes supervision,lending 2>>setup.log) ||
  setup_fail "apikey create"
if [[ -n ${npm_pid:-} ]]; then
  wait "$npm_pid" || setup_fail "npm ci of tests/console: $(tail -5 npm.log)"
fi
base="http://127.0.0.1:$api_port"

# ------------------------------------------------------------- the files, with curl
# head PATH [curl options]: the answer's headers into out.h (lower-cased names), the
# body into out.body, the status code printed.
head_of() {
  local p=$1
  shift
  rm -f out.body
  curl -s -D out.raw -o out.body -w '%{http_code}' --max-time 30 "$@" "$base$p"
  tr -d '\r' <out.raw | sed 's/^\([^:]*\):/\L\1:/' >out.h
}
hdr_of() { sed -n "s/^$1: //p" out.h | head -1; }
r=$(head_of /console/)
expect_eq "1. GET /console/ (no key)" "$r $(hdr_of content-type)" "200 text/html; charset=utf-8"
csp=$(hdr_of content-security-policy)
if [[ $csp == *"default-src 'self'"* && $csp != *unsafe-* && $csp == *"frame-ancestors 'none'"* ]]; then
  ok "1. a strict Content-Security-Policy: $csp"; else bad "1. a strict Content-Security-Policy" "got '$csp'"; fi
expect_eq "1. X-Content-Type-Options" "$(hdr_of x-content-type-options)" nosniff
expect_eq "1. Referrer-Policy" "$(hdr_of referrer-policy)" no-referrer
expect_eq "1. X-Frame-Options" "$(hdr_of x-frame-options)" DENY
if cmp -s out.body "$src/gateway/api/console/index.html"; then ok "1. index.html as in the source tree"; else
  bad "1. index.html as in the source tree" "differs"; fi
if grep -qiE '<script>|<script [^>]*>[^<]|<style|\sstyle=|\son[a-z]+=|https?://' out.body; then
  bad "1. index.html has no inline script or style, no external address" "$(grep -niE '<script>|<style|\sstyle=|\son[a-z]+=|https?://' out.body | head -3)"
else ok "1. index.html has no inline script or style, no external address"; fi
etag=$(hdr_of etag)
if [[ $etag =~ ^\"[0-9a-f]{32}\"$ ]]; then ok "1. an ETag: $etag"; else bad "1. an ETag" "got '$etag'"; fi
r=$(head_of /console/index.html -H "If-None-Match: $etag")
expect_eq "1. unchanged: 304 with If-None-Match" "$r $(cat out.body 2>/dev/null | wc -c)" "304 0"
r=$(head_of /console/console.js)
expect_eq "1. console.js" "$r $(hdr_of content-type)" "200 text/javascript; charset=utf-8"
if grep -q 'innerHTML\|outerHTML\|insertAdjacentHTML\|document.write\|eval(' out.body; then
  bad "1. console.js writes no markup" "$(grep -n 'innerHTML\|outerHTML\|insertAdjacentHTML\|document.write\|eval(' out.body | head -3)"
else ok "1. console.js writes no markup (textContent only)"; fi
r=$(head_of /console/console.css)
expect_eq "1. console.css" "$r $(hdr_of content-type)" "200 text/css; charset=utf-8"
[[ $(hdr_of etag) != "$etag" ]] && ok "1. each file its own ETag" || bad "1. each file its own ETag" "same as index.html's"
r=$(head_of /console/icon.svg)
expect_eq "1. icon.svg" "$r $(hdr_of content-type)" "200 image/svg+xml"
r=$(head_of /console/nothing.js)
expect_eq "1. an unknown file: 404 problem" "$r $(hdr_of content-type)" "404 application/problem+json"
r=$(head_of /console/a/b)
expect_eq "1. a deeper path: 404 problem" "$r $(hdr_of content-type)" "404 application/problem+json"
r=$(head_of /console)
expect_eq "1. /console: 308 to /console/" "$r $(hdr_of location)" "308 /console/"
r=$(head_of /v1/key -H "Authorization: Bearer $key")
expect_eq "1. GET /v1/key: the key's scope" "$r $(cat out.body)" \
  '200 {"application":"lender-a","purposes":["supervision","lending"],"lists":["serious-dishonesty","abnormal-operation","grades"],"quota_per_day":0}'
r=$(head_of /v1/key)
expect_eq "1. GET /v1/key without a key: 401" "$r" 401
expect_eq "1. the API's answers carry the policy too" "$(hdr_of content-security-policy)" "$csp"

# ------------------------------------------------------------- in the browser
node -e 'const [o,...a]=process.argv.slice(1); const n=(s)=>s; console.log(JSON.stringify({
  chromium:a[0], base:a[1], key:a[2], wrong_key:a[3], listed:a[4], bad:a[5], bad_detail:a[6],
  own:{city:"440100",name:a[7]}, peer:{city:"440300",name:a[8]}, purposes:["supervision","lending"],
  stop_file:a[9]+"/stop-peer", stopped_file:a[9]+"/peer-stopped", shots:a[9]+"/shots"}))' _ \
  "$chromium" "$base" "$key" "bgk_$(printf '0%.0s' $(seq 64))" "$listed" "$bad_code" "$bad_detail" \
  "${name[440100]}" "${name[440300]}" "$work" >drive.json
cp "$src/tests/console/drive.js" "$tools/"
(cd "$tools" && timeout 120 node drive.js "$work/drive.json") >drive.out 2>drive.err &
drive=$!
# The page asks for the peer to be stopped half-way; stop it, and say it is down.
while kill -0 "$drive" 2>/dev/null && [[ ! -e stop-peer ]]; do sleep 0.1; done
# (Not stop_procs: its wait would wait for the browser too.)
if [[ -e stop-peer ]]; then
  kill -TERM "${pid[440300]}" 2>/dev/null
  for _ in $(seq 50); do kill -0 "${pid[440300]}" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "${pid[440300]}" 2>/dev/null
  wait "${pid[440300]}" 2>/dev/null
  unset 'pid[440300]'
  touch peer-stopped
  stopped_at=$SECONDS
fi
wait "$drive"
drive_rc=$?
drive=
[[ -n ${stopped_at:-} ]] && echo "(the browser finished $((SECONDS - stopped_at)) s after the peer stopped)"
while IFS='|' read -r verdict what detail; do
  case $verdict in
  PASS) ok "$what" ;;
  FAIL) bad "$what" "$detail" ;;
  esac
done <drive.out
if ((drive_rc != 0)) && ! grep -q '^FAIL' drive.out; then
  bad "the browser run" "node exited $drive_rc: $(tail -5 drive.err)"
fi
n=$(ls shots/*.png 2>/dev/null | wc -l)
((n == 5)) && ok "11. screenshots saved in $work/shots" || bad "11. screenshots saved" "$n of 5"

echo "$SUITE: $pass passed, $fail failed"
((fail == 0))
