#!/usr/bin/env bash
# psi_federation_test.sh BAYGATE FED_ATTACK WORKDIR - private set intersection
# between three real gateways (Guangzhou 440100, Shenzhen 440300, Foshan
# 440600) on loopback, with generated data (`baygate gen --share`, `baygate
# import`). Every answer is checked against the ground truth computed here from
# the generated CSVs (awk, sort, comm): membership, grades, counts; then the
# refusals (count batch below min_count_batch, purpose not permitted, list not
# permitted, unknown list), a re-import that removes an entry (new epoch,
# refreshed by delta, the entry stops matching), a key rotation (new
# generation, fetched in full), a peer that is down, and the progress of a
# snapshot fetch shown while it runs.
#
# FED_ATTACK is only used for free ports. Deadlines are generous and polled
# (the same script runs the ASan build); every process started here is
# stopped on exit.
set -uo pipefail
export LC_ALL=C
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
SUITE=psi_federation
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2
t_start=$SECONDS

# expect_same NAME GOT-FILE WANT-FILE: equal files (sorted lists).
expect_same() {
  if cmp -s "$2" "$3"; then
    ok "$1 ($(wc -l <"$3") lines)"
  else
    bad "$1" "$(diff "$2" "$3" | head -10)"
  fi
}

READY_S=60
PUBLISH_S=60
COUNT=2500 # enterprises per city: small (shared machine), yet queries take 2 chunks

declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen [440600]=Foshan)
cities=(440100 440300 440600)

thr= # a throttle loop (section 12), if one runs
declare -A lrc=()
cleanup() {
  [[ -n $thr ]] && kill "$thr" 2>/dev/null
  kill -CONT "${pid[@]}" 2>/dev/null
  stop_procs "${pid[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ------------------------------------------------------------- PKI, roster

run "$bg" ca init --dir CA
for c in "${cities[@]}"; do
  setup_city "$c"
  # Tree heads and witness rounds every second, so the evidence sections see them soon.
  sed -i 's/^head_interval_s = .*/head_interval_s = 1/; s/^witness_interval_s = .*/witness_interval_s = 1/' \
    "gw$c/baygate.ini"
done
run "$bg" ca crl --dir CA --out crl.pem

# Everyone may ask everyone about both lists for supervision, except that
# Guangzhou may ask Foshan only about serious-dishonesty; "lending" needs the
# enterprise's written authorisation and only Guangzhou may ask Foshan for it,
# about serious-dishonesty. Small messages, so snapshots and queries
# take several chunks.
{
  roster_federation 1 65536
  roster_purpose supervision false
  roster_purpose lending true
  roster_members "${cities[@]}"
  for c in "${cities[@]}"; do
    for d in "${cities[@]}"; do
      [[ $c == "$d" ]] && continue
      lists="serious-dishonesty, abnormal-operation" purposes=supervision quota=1000000
      # 12000: enough for this script's four full queries of Guangzhou's 2500 ids, not five
      [[ $c == 440100 && $d == 440600 ]] && lists="serious-dishonesty" purposes="supervision, lending" quota=12000
      roster_permission "$c" "$d" "$purposes" "$lists" "$quota"
    done
  done
} >roster.ini
run "$bg" roster sign --ca CA --out roster.pb roster.ini
for c in "${cities[@]}"; do run cp crl.pem roster.pb "gw$c/"; done

# ------------------------------------------------------------------ data

run "$bg" gen --city 440100 --count "$COUNT" --seed 11 --out 440100.csv --quiet
run "$bg" gen --city 440300 --count "$COUNT" --seed 12 --share 440100.csv --share-rate 0.3 \
  --out 440300.csv --quiet
run "$bg" gen --city 440600 --count "$COUNT" --seed 13 --share 440100.csv --share-rate 0.3 \
  --out 440600.csv --quiet
for c in "${cities[@]}"; do
  run "$bg" import --data-dir "gw$c/data" --city "$c" --strict "$c.csv"
done

# cols FILE: "uscc grade evaluated_at valid_until sd ao" per row (sd/ao 1 if
# listed and in force: no expires_at, or one after today, UTC, as the gateways
# decide), from a CSV with quoted fields (RFC 4180, no embedded newlines).
cols() {
  awk -v today="$(date -u +%F)" '
    function split_csv(line, f,    n, i, c, q, cur) {
      n = 0; cur = ""; q = 0
      for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (q) {
          if (c == "\"") { if (substr(line, i + 1, 1) == "\"") { cur = cur c; i++ } else q = 0 }
          else cur = cur c
        } else if (c == "\"") q = 1
        else if (c == ",") { f[++n] = cur; cur = "" }
        else cur = cur c
      }
      f[++n] = cur
      return n
    }
    { sub(/\r$/, "") }
    NR == 1 { n = split_csv($0, h); for (i = 1; i <= n; i++) col[h[i]] = i; next }
    {
      split_csv($0, f)
      sx = f[col["serious-dishonesty:expires_at"]]; ax = f[col["abnormal-operation:expires_at"]]
      sd = f[col["serious-dishonesty:listed_at"]] != "" && (sx == "" || sx > today) ? 1 : 0
      ao = f[col["abnormal-operation:listed_at"]] != "" && (ax == "" || ax > today) ? 1 : 0
      g = f[col["grade"]]; if (g == "") g = "-"
      e = f[col["evaluated_at"]]; if (e == "") e = "-"
      v = f[col["valid_until"]]; if (v == "") v = "-"
      # listed once, expired by now: must not match (7 sd, 8 ao)
      sdx = f[col["serious-dishonesty:listed_at"]] != "" && !sd ? 1 : 0
      aox = f[col["abnormal-operation:listed_at"]] != "" && !ao ? 1 : 0
      print toupper(f[col["uscc"]]), g, e, v, sd, ao, sdx, aox
    }' "$1"
}
for c in "${cities[@]}"; do cols "$c.csv" >"$c.cols" || setup_fail "cols $c"; done
cut -d' ' -f1 440100.cols | sort -u >gz.ids
# truth CITY FIELD: sorted USCCs of CITY listed in column FIELD (5 sd, 6 ao) asked by Guangzhou.
truth() { awk -v k="$2" '$k == 1 { print $1 }' "$1.cols" | sort -u | comm -12 gz.ids -; }
for c in 440300 440600; do
  truth "$c" 5 >"truth.sd.$c"
  truth "$c" 6 >"truth.ao.$c"
  truth "$c" 8 >"expired.ao.$c"
  # grades: uscc grade evaluated_at valid_until of Guangzhou's enterprises graded by c.
  awk '$2 != "-" { print $1, $2, $3, $4 }' "$c.cols" | sort -u | join - gz.ids >"truth.gr.$c"
done
n_shared=$(comm -12 gz.ids <(cut -d' ' -f1 440300.cols | sort -u) | wc -l)
if ((n_shared > 100 && $(wc -l <truth.sd.440300) > 3)); then
  ok "setup: $n_shared of Guangzhou's enterprises are in Shenzhen's data, $(wc -l <truth.sd.440300) on its serious-dishonesty list"
else
  bad "setup: enough overlap to test" "shared $n_shared, listed $(wc -l <truth.sd.440300)"
fi

# ------------------------------------------------------------- gateways

published() { (($(grep -c " psi.published " "gw$1.log") >= $2)); }
for c in "${cities[@]}"; do start_gw "$c"; done
for c in "${cities[@]}"; do
  if wait_for "$READY_S" "$bg" status --dir "gw$c" && wait_for "$PUBLISH_S" published "$c" 3; then
    ok "gateway $c (${name[$c]}) is up and has published 3 lists"
  else
    bad "gateway $c did not come up and publish" "$(tail -5 "gw$c.log")"
    echo "psi_federation: $pass passed, $fail failed"
    exit 1
  fi
done
if [[ "$(stat -c %a gw440300/data/psi-keys/serious-dishonesty.1.key)" == 600 ]]; then
  ok "PSI keys are files of mode 0600"
else
  bad "PSI key file mode" "$(ls -l gw440300/data/psi-keys/)"
fi
echo "# setup and start: $((SECONDS - t_start)) s"

# Guangzhou's ids, plus three invalid lines that must be reported, not sent.
{ cat gz.ids; echo "not-a-code"; echo "91440300MA5FXXXXXX"; echo "  $(head -1 gz.ids | tr A-Z a-z)  "; } >ask.txt

# query ARGS...: baygate query from Guangzhou, CSV to q.csv, exit code in $qrc.
query() {
  "$bg" query --dir gw440100 --purpose supervision --in ask.txt --timeout-ms 20000 "$@" \
    >q.out 2>q.err
  qrc=$?
}
# rows PEER: the uscc column of q.out (CSV) for PEER, sorted.
rows() { awk -F, -v p="$1" '$1 == p && $2 == "true" && $4 != "" { print $4 }' q.out | sort; }

# 1. Membership, both peers at once.
query --peer all --list serious-dishonesty --csv
expect_eq "1. membership on serious-dishonesty, all peers: exit" "$qrc" 0
for c in 440300 440600; do
  rows "$c" >"got.sd.$c"
  expect_same "1. $c: matches equal the ground truth" "got.sd.$c" "truth.sd.$c"
done
query --peer 440300 --list abnormal-operation --csv
rows 440300 >got.ao.440300
expect_same "1. 440300 abnormal-operation: matches equal the entries in force" got.ao.440300 truth.ao.440300
if [[ -s expired.ao.440300 ]] && [[ -z $(comm -12 got.ao.440300 expired.ao.440300) ]]; then
  ok "1. none of the $(wc -l <expired.ao.440300) expired abnormal-operation entries matches"
else
  bad "1. expired entries stop matching" "expired: $(wc -l <expired.ao.440300), matched: $(comm -12 got.ao.440300 expired.ao.440300 | head -3)"
fi
query --peer 440300 --list serious-dishonesty --json
if grep -q '"invalid_total":2,' q.out && grep -q '"line":' q.out; then
  ok "1. invalid ids reported with their line (2; the lower-case one is normalised)"
else
  bad "1. invalid ids reported" "$(head -c 600 q.out)"
fi
if grep -q '"snapshot":"cached"' q.out; then
  ok "1. the second query uses the cached snapshot"
else
  bad "1. the second query uses the cached snapshot" "$(head -c 400 q.out)"
fi
query --peer 440300 --list serious-dishonesty
if grep -q "^440300 Shenzhen   ok  epoch 1" q.out; then
  ok "1. table output: $(grep '^440300' q.out)"
else
  bad "1. table output" "$(head -5 q.out)"
fi

# 1b. One row per input line per peer, with its status, in every output mode: the CSV
# joins back to the input by line, and the invalid ids show in each mode.
# tsv: CSV (RFC 4180, no embedded newlines) to tab-separated fields.
tsv() {
  awk '{
    sub(/\r$/, ""); out = ""; cur = ""; q = 0
    for (i = 1; i <= length($0); i++) {
      c = substr($0, i, 1)
      if (q) {
        if (c == "\"") { if (substr($0, i + 1, 1) == "\"") { cur = cur c; i++ } else q = 0 }
        else cur = cur c
      } else if (c == "\"") q = 1
      else if (c == ",") { out = out cur "\t"; cur = "" }
      else cur = cur c
    }
    print out cur
  }' "$@"
}
n_in=$(wc -l <ask.txt)
query --peer 440300 --list serious-dishonesty --csv
tsv q.out >q.tsv
awk -F'\t' '$1 == 440300 { print $15 }' q.tsv | sort -n >got.lines
seq "$n_in" >want.lines
expect_same "1b. CSV: one row per input line (joined by line number)" got.lines want.lines
first=$(head -1 gz.ids)
dup=0
grep -qx "$first" truth.sd.440300 && dup=1
expect_eq "1b. CSV: rows by status" \
  "$(awk -F'\t' '$1 == 440300 { n[$14]++ } END { printf "%d %d %d", n["matched"], n["not matched"], n["invalid"] }' q.tsv)" \
  "$(($(wc -l <truth.sd.440300) + dup)) $((n_in - 2 - $(wc -l <truth.sd.440300) - dup)) 2"
if awk -F'\t' -v u="$first" -v n="$n_in" '$1 == 440300 && $15 == n && $17 == u { f = 1 } END { exit !f }' q.tsv &&
  awk -F'\t' -v n="$((n_in - 1))" '$15 == n && $14 == "invalid" && $16 == "91440300MA5FXXXXXX" && $11 ~ /position 18/ { f = 1 } END { exit !f }' q.tsv; then
  ok "1b. CSV: the lower-case line carries its canonical id; an invalid one its reason"
else
  bad "1b. CSV rows of the last lines" "$(tail -3 q.out)"
fi
query --peer 440300 --list serious-dishonesty --json
if [[ $(grep -o '"status":"[a-z ]*"' q.out | wc -l) == "$n_in" ]] && grep -q '"line":'"$n_in"',"input":' q.out; then
  ok "1b. JSON: one row per input line"
else
  bad "1b. JSON rows" "$(grep -o '"status":"[a-z ]*"' q.out | sort | uniq -c)"
fi
query --peer 440300 --list serious-dishonesty
if grep -q "line $((n_in - 2)): 'not-a-code'" q.out && grep -q "line 1 .* $first  " q.out; then
  ok "1b. table: every line's outcome, the invalid ids with their line"
else
  bad "1b. table rows" "$(grep -n "line" q.out | tail -4)"
fi

# 2. Grades of Guangzhou's enterprises.
query --peer all --grades --csv
expect_eq "2. graded query: exit" "$qrc" 0
for c in 440300 440600; do
  awk -F, -v p="$c" '$1 == p && $2 == "true" && $4 != "" { print $4, $5, $7, $8 }' q.out |
    sort >"got.gr.$c"
  expect_same "2. $c: grades and dates equal the ground truth" "got.gr.$c" "truth.gr.$c"
done

# 3. Counts on abnormal-operation (Shenzhen permits it). One message holds 1792
# items at 64 KiB: the first 1500 of Guangzhou's ids go as one batch, all of them
# as several sub-batches of near-equal size whose counts add up.
head -1500 gz.ids >count.txt
"$bg" query --dir gw440100 --purpose supervision --in count.txt --peer 440300 \
  --list abnormal-operation --count --csv >q.out 2>q.err
expect_eq "3. count: exit" "$?" 0
expect_eq "3. count from Shenzhen equals the ground truth" \
  "$(awk -F, '$1 == 440300 && $2 == "true" { print $10 }' q.out)" \
  "$(comm -12 count.txt truth.ao.440300 | wc -l)"
"$bg" query --dir gw440100 --purpose supervision --in gz.ids --peer 440300 \
  --list abnormal-operation --count --csv >q.out 2>q.err
expect_eq "3. count over $(wc -l <gz.ids) ids (several sub-batches): exit" "$?" 0
expect_eq "3. count over several sub-batches equals the ground truth" \
  "$(awk -F, '$1 == 440300 && $2 == "true" { print $10 }' q.out)" \
  "$(wc -l <truth.ao.440300)"

# 4. Refusals.
head -5 gz.ids >few.txt
"$bg" query --dir gw440100 --purpose supervision --in few.txt --peer 440300 \
  --list serious-dishonesty --count --json >q.out 2>&1
rc=$?
if [[ $rc == 1 ]] && grep -q '"error_code":112' q.out && grep -q "below the minimum of 16" q.out; then
  ok "4. count batch of 5 below min_count_batch 16: refused (112), exit 1"
else
  bad "4. count batch below the minimum" "exit $rc: $(head -c 400 q.out)"
fi
echo "Consent of the enterprises to a credit check for lending, signed." >consent.txt
query --peer 440300 --list serious-dishonesty --json --purpose lending --consent consent.txt
if [[ $qrc == 1 ]] && grep -q '"error_code":107' q.out && grep -q "lending" q.out; then
  ok "4. purpose lending toward Shenzhen (declared, not permitted): refused (107)"
else
  bad "4. purpose not permitted" "exit $qrc: $(head -c 400 q.out)"
fi
query --peer 440600 --list serious-dishonesty --csv --purpose lending
if [[ $qrc == 2 ]] && grep -q "needs the enterprise's written authorisation" q.err; then
  ok "4. lending without an authorisation reference: refused before anything is sent, exit 2"
else
  bad "4. lending without authorisation" "exit $qrc: $(cat q.err q.out | head -c 400)"
fi
query --peer 440600 --list serious-dishonesty --csv --purpose lending --auth-ref 0g
if [[ $qrc == 2 ]] && grep -q "auth-ref must be" q.err; then
  ok "4. a malformed --auth-ref is refused"
else
  bad "4. malformed --auth-ref" "exit $qrc: $(cat q.err | head -c 400)"
fi
query --peer 440600 --list serious-dishonesty --csv --purpose lending --consent consent.txt
expect_eq "4. lending with a consent digest: exit" "$qrc" 0
rows 440600 >got.lend
expect_same "4. lending with a consent digest: Foshan's matches equal the ground truth" got.lend truth.sd.440600
query --peer 440600 --list abnormal-operation --json
if [[ $qrc == 1 ]] && grep -q '"error_code":107' q.out; then
  ok "4. list not in Guangzhou's permission toward Foshan: refused (107)"
else
  bad "4. list not permitted" "exit $qrc: $(head -c 400 q.out)"
fi
query --peer 440300 --list no-such-list --json
if [[ $qrc == 2 ]] && grep -q "list must be" q.err; then
  ok "4. unknown list: refused by our own gateway, exit 2"
else
  bad "4. unknown list" "exit $qrc: $(cat q.err q.out | head -c 400)"
fi
if [[ $qrc == 2 ]] && grep -q "roster lets us ask about: serious-dishonesty, abnormal-operation, grades" q.err; then
  ok "4. unknown list: the refusal names what the roster allows"
else
  bad "4. unknown list names the roster's lists" "$(cat q.err | head -c 400)"
fi
refusals() { grep -c " psi.refused " gw440300.log; }
n_ref=$(refusals)
query --peer all --list serious-dishonesty --purpose supervison --csv
if [[ $qrc == 2 ]] && grep -q "purpose 'supervison' is not in the roster (it declares: supervision, lending)" q.err &&
  [[ $(refusals) == "$n_ref" ]]; then
  ok "4. misspelt purpose: refused by our own gateway (exit 2) naming the roster's purposes, nothing sent"
else
  bad "4. misspelt purpose" "exit $qrc: $(cat q.err | head -c 400)"
fi
query --peer 440300 --list serious-dishonesty --json --csv
if [[ $qrc == 2 ]] && grep -q -- "--json and --csv exclude each other" q.err && [[ ! -s q.out ]]; then
  ok "4. --json with --csv: refused, exit 2"
else
  bad "4. --json --csv refused" "exit $qrc: $(head -c 200 q.err)"
fi
query --peer 440300 --list serious-dishonesty --list abnormal-operation --csv
tsv q.out >q.tsv
awk -F'\t' '$1 == 440300 && $14 == "matched" && $18 == "serious-dishonesty" { print $4 }' q.tsv | sort -u >got.two.sd
awk -F'\t' '$1 == 440300 && $14 == "matched" && $18 == "abnormal-operation" { print $4 }' q.tsv | sort -u >got.two.ao
if [[ $qrc == 0 ]] && [[ $(grep -c '^peer,' q.out) == 1 ]] && cmp -s got.two.sd truth.sd.440300 &&
  cmp -s got.two.ao truth.ao.440300; then
  ok "4. --list A --list B: both lists asked, one CSV, each equal to its ground truth"
else
  bad "4. two lists in one query" "exit $qrc: $(wc -l <got.two.sd) sd, $(wc -l <got.two.ao) ao"
fi
if grep -q "psi.refused" gw440300.log && ! grep -qF "$(head -1 gz.ids)" gw440300.log; then
  ok "4. Shenzhen logged the refusals and never an asked id"
else
  bad "4. answerer's log" "$(grep psi gw440300.log | tail -3)"
fi

# 4b. One enterprise in every city (baygate lookup): our store for Guangzhou itself,
# private queries for the others. Guangzhou may not ask Foshan about abnormal-operation,
# so that one answer is missing (exit 1) and said so.
u=$(head -1 truth.sd.440300)
own_name=$(awk -F, -v u="$u" 'toupper($1) == u { print $2 }' 440100.csv | tr -d '"')
read -r _ own_g _ own_v own_sd own_ao _ _ < <(awk -v u="$u" '$1 == u' 440100.cols)
"$bg" lookup --dir gw440100 --purpose supervision --timeout-ms 20000 "$u" >l.out 2>l.err
lrc=$?
sz_grade=$(awk -v u="$u" '$1 == u { print $2 }' truth.gr.440300)
sz_common=$(awk -v g="$sz_grade" 'BEGIN { print index("ABCD", g) }')
want_own_sd=$([[ $own_sd == 1 ]] && echo "It is on serious-dishonesty since" || echo "It is not on serious-dishonesty.")
if [[ $lrc == 1 ]] && grep -q "^440100 Guangzhou (our city): $own_name\.$" l.out &&
  grep -qF "  $want_own_sd" l.out &&
  grep -A3 "^440300 Shenzhen:" l.out | grep -q "^  It is on serious-dishonesty\.$" &&
  grep -A4 "^440600 Foshan:" l.out | grep -q "Not answered about abnormal-operation: .*(107)" &&
  { [[ -z $sz_grade ]] || grep -A4 "^440300 Shenzhen:" l.out | grep -q "Its grade is $sz_grade on scale ABCD ($sz_common on the common scale)"; }; then
  ok "4b. lookup $u: our store's name and lists, Shenzhen's listing${sz_grade:+ and grade $sz_grade}, Foshan's refusal named, exit 1"
else
  bad "4b. lookup in sentences" "exit $lrc: $(cat l.out l.err | head -20)"
fi
if [[ -n $sz_grade ]]; then
  # a grade is never shown without its standing, in the query table's words
  gl=$(grep -A4 "^440300 Shenzhen:" l.out | grep "Its grade is")
  if grep -qE ': (current and attested|expired, so not a current evaluation|unattested(: .+)?)\.$' <<<"$gl"; then
    ok "4b. lookup: Shenzhen's grade with its standing: ${gl##*: }"
  else
    bad "4b. lookup: the grade's standing" "$gl"
  fi
fi
[[ $own_g != - ]] && ! grep -q "Its grade is $own_g on scale ABCD" l.out && bad "4b. lookup: our own grade" "$(grep -A4 'our city' l.out)"
"$bg" lookup --dir gw440100 --purpose supervision --json --timeout-ms 20000 "$u" >l.json 2>l.err
if grep -q '"city":"440300","name":"Shenzhen","own":false,"lists":\[{"list":"serious-dishonesty","status":"listed",' l.json &&
  grep -q '"city":"440100","name":"Guangzhou","own":true,"found":true' l.json; then
  ok "4b. lookup --json: one object, every city"
else
  bad "4b. lookup --json" "$(head -c 600 l.json)"
fi
if [[ -n $sz_grade ]]; then
  if grep -qE '"grade":\{"grade":"'"$sz_grade"'"[^}]*"status":"(attested|unattested|expired)"\}' l.json; then
    ok "4b. lookup --json: Shenzhen's grade carries its status"
  else
    bad "4b. lookup --json: the grade's status" "$(grep -o '"grade":{[^}]*}' l.json | head -3)"
  fi
fi
"$bg" lookup --dir gw440100 --purpose lending "$u" >l.out 2>l.err
lrc=$?
"$bg" lookup --dir gw440100 --purpose lending --consent consent.txt --timeout-ms 20000 "$u" >l2.out 2>&1
if [[ $lrc == 2 ]] && grep -q "written authorisation" l.err &&
  grep -A3 "^440600 Foshan:" l2.out | grep -q "^  It is .*on serious-dishonesty\.$" &&
  grep -A3 "^440300 Shenzhen:" l2.out | grep -q "Not answered about serious-dishonesty: .*(107)"; then
  ok "4b. lookup for lending: refused without consent (exit 2); with --consent Foshan answers, Shenzhen refuses"
else
  bad "4b. lookup for lending" "exit $lrc: $(cat l.err l2.out | head -12)"
fi
"$bg" lookup --dir gw440100 --purpose supervision "${u:0:17}X" >l.out 2>l.err
expect_eq "4b. lookup of an invalid USCC: exit" "$?" 2

# 5. Shenzhen re-imports its full file with one listed enterprise repaired (its
# list and grade cells empty; --replace all: the file is the full state, so the
# empty cells remove): a new epoch, fetched as a delta, and the enterprise no
# longer matches.
gone=$(head -1 truth.sd.440300)
{
  head -1 440300.csv
  tail -n +2 440300.csv | grep -v "^$gone,"
  echo "$gone,已整改企业,,,,,,,,,"
} >sz-fix.csv
run "$bg" import --data-dir gw440300/data --replace all sz-fix.csv
if wait_for "$PUBLISH_S" published 440300 6; then
  ok "5. Shenzhen published epoch 2 after the import"
else
  bad "5. Shenzhen publishes after the import" "$(grep psi gw440300.log | tail -3)"
fi
query --peer 440300 --list serious-dishonesty --json
if [[ $qrc == 0 ]] && grep -q '"epoch":2' q.out && grep -q '"snapshot":"delta"' q.out; then
  ok "5. Guangzhou refreshed to epoch 2 by delta"
else
  bad "5. refresh by delta" "exit $qrc: $(head -c 600 q.out)"
fi
query --peer 440300 --list serious-dishonesty --csv
rows 440300 >got.sd2
grep -vx "$gone" truth.sd.440300 >truth.sd2
expect_same "5. matches equal the ground truth without $gone" got.sd2 truth.sd2

# 5b. Shenzhen rotates the key of serious-dishonesty: generation 2, fetched in full.
run "$bg" psi-rotate --dir gw440300 --list serious-dishonesty
if wait_for "$PUBLISH_S" published 440300 7 && [[ -s gw440300/data/psi-keys/serious-dishonesty.2.key ]]; then
  ok "5b. Shenzhen published generation 2 of serious-dishonesty"
else
  bad "5b. key rotation" "$(grep psi gw440300.log | tail -3)"
fi
query --peer 440300 --list serious-dishonesty --json
if [[ $qrc == 0 ]] && grep -q '"generation":2' q.out && grep -q '"snapshot":"full"' q.out; then
  ok "5b. Guangzhou fetched generation 2 in full"
else
  bad "5b. refresh after rotation" "exit $qrc: $(head -c 600 q.out)"
fi
query --peer 440300 --list serious-dishonesty --csv
rows 440300 >got.sd4
expect_same "5b. matches under the new key equal the ground truth" got.sd4 truth.sd2

# 6. Foshan down: reported for Foshan, Shenzhen still answers.
kill -TERM "${pid[440600]}"
wait "${pid[440600]}" 2>/dev/null
unset 'pid[440600]'
query --peer all --list serious-dishonesty --csv --timeout-ms 3000
rows 440300 >got.sd3
if [[ $qrc == 1 ]] && grep -q "^440600,false" q.out && cmp -s got.sd3 truth.sd2; then
  ok "6. Foshan down: its row reports the failure, Shenzhen's matches are right, exit 1"
else
  bad "6. one peer down" "exit $qrc: $(grep 440600 q.out | head -2)"
fi
# The dead peer must not hold the others up: with a 10 s request timeout the answer
# comes back far sooner (bounds generous: a loaded machine, the ASan build), twice
# (the second time Foshan is remembered as down).
for k in 1 2; do
  t0=$(date +%s%N)
  query --peer all --list serious-dishonesty --csv --timeout-ms 10000
  ms=$((($(date +%s%N) - t0) / 1000000))
  echo "# Foshan down, try $k: the query of Shenzhen (and Foshan) took $ms ms"
  rows 440300 >got.sd3
  if [[ $qrc == 1 ]] && ((ms < 5000)) && cmp -s got.sd3 truth.sd2 &&
    grep -q '^440600,false.*440600.*refused' q.out; then
    ok "6. Foshan down, try $k: answered in well under the 10 s timeout, Foshan named as refused"
  else
    bad "6. one peer down does not wait for the timeout (try $k)" "exit $qrc, $ms ms: $(grep 440600 q.out | head -2)"
  fi
done

t0=$(date +%s%N)
query --peer 440300 --list serious-dishonesty --csv --timeout-ms 10000
echo "# for comparison, Shenzhen alone: $((($(date +%s%N) - t0) / 1000000)) ms"

# 7. Foshan restarts: Guangzhou's items asked today are still counted.
used_of() { awk -v c=440100 '$1 == c { print $3 }' gw440600/data/quota 2>/dev/null; }
before=$(used_of)
start_gw 440600
if wait_for "$READY_S" "$bg" status --dir gw440600 && wait_for "$PUBLISH_S" published 440600 6; then
  query --peer 440600 --list serious-dishonesty --csv
  expect_eq "7. Foshan answers after its restart: exit" "$qrc" 0
  expect_eq "7. the day's quota use survives the restart ($before before, + $(wc -l <gz.ids) asked)" \
    "$(used_of)" "$((before + $(wc -l <gz.ids)))"
  query --peer 440600 --list serious-dishonesty --json
  if [[ $qrc == 1 ]] && grep -q '"error_code":111' q.out && grep -q "of its 12000 items today" q.out; then
    ok "7. a fifth query runs into the day's quota of 12000 (charged per chunk): refused (111)"
  else
    bad "7. quota exhausted" "exit $qrc: $(head -c 400 q.out)"
  fi
else
  bad "7. Foshan restarts" "$(tail -3 gw440600.log)"
fi

# 7b. Progress on a terminal: Foshan is frozen (SIGSTOP), so a query of it takes its
# whole 2.5 s timeout; on a terminal (script(1) gives one) a line on stderr says what
# is being asked and for how long; never with --quiet or --json.
kill -STOP "${pid[440600]}"
slow() {
  script -qec "$bg query --dir gw440100 --purpose supervision --in ask.txt --peer 440600 --list serious-dishonesty --timeout-ms 2500 $*" /dev/null >tty.out 2>&1
}
slow --csv
grep -q "asking 440600 about $n_in ids on serious-dishonesty: 1 s" tty.out && p1=1 || p1=0
slow --csv --quiet
grep -q "asking 440600" tty.out && p2=1 || p2=0
slow --json
grep -q "asking 440600" tty.out && p3=1 || p3=0
# Each peer's part of a table is printed as its answer comes: Shenzhen's while the
# query still waits on the frozen Foshan; the header once, Foshan's failure after.
"$bg" query --dir gw440100 --purpose supervision --in ask.txt --peer all \
  --list serious-dishonesty --timeout-ms 6000 >stream.out 2>stream.err &
qpid=$!
sz_shown() { grep -q '^440300 Shenzhen   ok' stream.out; }
if wait_for 30 sz_shown && kill -0 "$qpid" 2>/dev/null && ! grep -q '^440600' stream.out; then
  ok "7b. Shenzhen's answer is printed while Foshan's is still awaited"
else
  bad "7b. answers as they arrive" "running: $(kill -0 "$qpid" 2>/dev/null && echo yes || echo no): $(head -5 stream.out)"
fi
wait "$qpid"
qrc=$?
if [[ $qrc == 1 ]] && [[ $(grep -c '^membership on serious-dishonesty' stream.out) == 1 ]] &&
  grep -q '^440600 Foshan     FAILED' stream.out && grep -q '^Invalid ids' stream.out; then
  ok "7b. then Foshan's failure; one header, one list of invalid ids, exit 1"
else
  bad "7b. the streamed table" "exit $qrc: $(grep -v '^    line' stream.out | head -12)"
fi
kill -CONT "${pid[440600]}"
if ((p1 == 1 && p2 == 0 && p3 == 0)); then
  ok "7b. progress on a terminal while a peer is slow; none with --quiet or --json"
else
  bad "7b. progress on a terminal" "shown: plain $p1, --quiet $p2, --json $p3"
fi

# 8. Recognition: Shenzhen's grades come with attestations that verify at
# Guangzhou's gateway and offline; repairing one revokes the old attestation.
query --peer 440300 --grades --csv --attest-dir att1
expect_eq "8. graded query with attestations: exit" "$qrc" 0
today=$(date -u +%F)
grep -v "^$gone " truth.gr.440300 >truth.gr2.440300
awk -F, '$1 == 440300 && $13 == "true" { print $4 }' q.out | sort >got.attested
awk -v t="$today" '$4 >= t { print $1 }' truth.gr2.440300 | sort >want.attested
expect_same "8. exactly the grades still valid are attested" got.attested want.attested
bad_map=$(awk -F, '$1 == 440300 && $4 != "" && $12 != index("ABCD", $5)' q.out | wc -l)
expect_eq "8. every common grade follows the roster's grade_map (A:1 .. D:4)" "$bad_map" 0
# Each graded row has its grade status, never a bare grade: the CSV's last column.
expect_eq "8. the CSV's last columns are grade_status, request_id" \
  "$(head -1 q.out | awk -F, '{ print $(NF - 1), $NF }')" "grade_status request_id"
awk -F, 'NR > 1 && $1 == 440300 && $5 != "" { print $(NF - 1) }' q.out | sort | uniq -c | awk '{ print $2 }' >got.gstatus
expect_eq "8. every graded row says attested (all of Shenzhen's are current)" "$(paste -sd' ' got.gstatus)" attested
bare=$(awk -F, 'NR > 1 && ($5 != "") != ($(NF - 1) != "")' q.out | wc -l)
expect_eq "8. no grade without a grade status, no status without a grade" "$bare" 0
u=$(head -1 got.attested)
v=$(sed -n 2p got.attested)
"$bg" attest verify "att1/440300-$u.att" --ca CA --roster roster.pb --status att1/440300.status \
  >v.out 2>&1
if [[ $? == 0 ]] && grep -q "^OK: 440300 (Shenzhen) evaluated $u: grade" v.out; then
  ok "8. the attestation of $u verifies offline: $(cut -c1-90 v.out)"
else
  bad "8. offline verification" "$(cat v.out)"
fi
cp "att1/440300-$u.att" forged.att
size=$(stat -c %s forged.att)
printf 'X' | dd of=forged.att bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
"$bg" attest verify forged.att --ca CA --roster roster.pb --status att1/440300.status >v.out 2>&1
if [[ $? == 1 ]] && grep -q "^FAIL" v.out; then
  ok "8. a byte changed in it: $(head -1 v.out | cut -c1-100)"
else
  bad "8. a forged attestation is refused" "$(cat v.out)"
fi
# Repair: Shenzhen re-evaluates $u; its old attestation is revoked.
old_grade=$(awk -F, -v u="$u" '$1 == 440300 && $4 == u { print $5 }' q.out)
new_grade=A
[[ $old_grade == A ]] && new_grade=B
{
  echo "uscc,name,grade,evaluated_at,valid_until"
  echo "$u,整改后重新评价企业,$new_grade,$today,$(date -u -d '+1 year' +%F)"
  # and v's evaluation now ended yesterday: never published as current
  echo "$v,评价已过期企业,B,$(date -u -d '-2 years' +%F),$(date -u -d '-1 day' +%F)"
} >sz-regrade.csv
statuses() { grep -c " attest.status_published " gw440300.log; }
n_status=$(statuses)
run "$bg" import --data-dir gw440300/data sz-regrade.csv
status_grew() { (($(statuses) > n_status)); }
if wait_for "$PUBLISH_S" status_grew; then
  ok "8. Shenzhen published a new status list after the repair"
else
  bad "8. status list after the repair" "$(grep attest gw440300.log | tail -2)"
fi
echo "$u" >one.txt
for asker in 440100 440600; do
  "$bg" query --dir "gw$asker" --peer 440300 --grades --purpose supervision --in one.txt \
    --csv --attest-dir "att.$asker" >q2.out 2>&1
  expect_eq "8. $asker sees the new grade of $u, attested" \
    "$(awk -F, -v u="$u" '$4 == u { print $5, $13 }' q2.out)" "$new_grade true"
  "$bg" attest verify "att1/440300-$u.att" --ca CA --roster roster.pb \
    --status "att.$asker/440300.status" >v.out 2>&1
  if [[ $? == 1 ]] && grep -qi "revoked" v.out; then
    ok "8. at $asker, the old attestation of $u no longer verifies: $(head -1 v.out | cut -c1-80)"
  else
    bad "8. the old attestation is revoked at $asker" "$(cat v.out)"
  fi
done

# An evaluation past its valid_until at the answering city is not published: the
# asker shows v as not matched, with no grade and no grade status.
echo "$v" >one.txt
"$bg" query --dir gw440100 --peer 440300 --grades --purpose supervision --in one.txt --csv >q2.out 2>&1
expect_eq "8. an expired evaluation is not shown as current (status, grade, grade_status)" \
  "$(awk -F, -v v="$v" '$16 == v { print $14 "|" $5 "|" $(NF - 1) }' q2.out)" "not matched||"
# The table puts each grade's standing before it.
printf '%s\n%s\n' "$u" "$v" >two.txt
"$bg" query --dir gw440100 --peer 440300 --grades --purpose supervision --in two.txt >q2.out 2>&1
if grep -q "1 graded (status list [0-9]*): 1 attested, 0 unattested, 0 expired" q2.out &&
  grep -Eq "$u  matched  attested +$new_grade " q2.out && grep -q "$v  not matched$" q2.out; then
  ok "8. the table says each grade's standing: $(grep "$u" q2.out | cut -c1-70)"
else
  bad "8. the table says each grade's standing" "$(cat q2.out)"
fi

# 9. Evidence: every gateway's log verifies, holds no identifier, and records
# the lending query's authorisation reference on both sides.
for c in "${cities[@]}"; do
  "$bg" audit verify --dir "gw$c" >v.out 2>&1
  if [[ $? == 0 ]] && grep -q "^ok: every leaf hash recomputed" v.out; then
    ok "9. $c's evidence log verifies ($(head -1 v.out | grep -o '[0-9]* leaves'))"
  else
    bad "9. $c's evidence log verifies" "$(tail -3 v.out)"
  fi
  if ! grep -a -q -F -f gz.ids "gw$c/data/audit/leaves.log"; then
    ok "9. no asked USCC in $c's evidence log"
  else
    bad "9. no asked USCC in $c's evidence log" "found one"
  fi
done
ref=$(sha256sum consent.txt | cut -c1-64)
for c in 440100 440600; do
  # (grep reads all its input: with pipefail, an early exit would fail the pipeline)
  if [[ $(od -An -v -tx1 "gw$c/data/audit/leaves.log" | tr -d ' \n') == *"$ref"* ]]; then
    ok "9. the consent digest is in $c's evidence log"
  else
    bad "9. the consent digest is in $c's evidence log" "not found"
  fi
done
# Witnessing: each gateway cosigns the others' heads; a proof from Shenzhen's
# log verifies against the root Guangzhou cosigned.
cosigned() {
  [[ $("$bg" audit witness --dir "gw$1" --json) == *"\"peer\":\"$2\",\"size\":"[1-9]* ]]
}
if wait_for 30 cosigned 440100 440300 && wait_for 30 cosigned 440600 440300; then
  ok "9. Guangzhou and Foshan have cosigned Shenzhen's tree heads"
else
  bad "9. witnessing" "$("$bg" audit witness --dir gw440100 2>&1 | head -5)"
fi
w=$("$bg" audit witness --dir gw440100 --json)
wsize=$(grep -o '"peer":"440300","size":[0-9]*' <<<"$w" | grep -o '[0-9]*$')
wroot=$(grep -o '"peer":"440300","size":[0-9]*,"root":"[0-9a-f]*"' <<<"$w" | grep -o '[0-9a-f]\{64\}')
"$bg" audit proof --dir gw440300 --leaf 0 --size "$wsize" --json >p.out 2>&1
if grep -q "\"root\":\"$wroot\"" p.out && grep -q '"verified":true' p.out; then
  ok "9. Shenzhen's inclusion proof of leaf 0 verifies against the root Guangzhou cosigned (size $wsize)"
else
  bad "9. cross-city inclusion proof" "size $wsize root $wroot: $(head -c 300 p.out)"
fi
if [[ $("$bg" audit witness --dir gw440300) == *"cosigned by 440100"* ]]; then
  ok "9. Shenzhen keeps Guangzhou's cosignatures of its heads"
else
  bad "9. cosignatures kept" "$("$bg" audit witness --dir gw440300 | tail -3)"
fi

# 10. Shenzhen rewrites its history (leaf 0 edited, checksum recomputed, its
# own signed heads deleted) and restarts: the witnesses detect the fork.
kill -TERM "${pid[440300]}"
wait "${pid[440300]}" 2>/dev/null
unset 'pid[440300]'
log=gw440300/data/audit/leaves.log
len=$(od -An -tu1 -j8 -N4 "$log" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
b=$(od -An -tu1 -j17 -N1 "$log" | tr -d ' ')
printf "\\x$(printf %02x $((b ^ 1)))" | dd of="$log" bs=1 seek=17 conv=notrunc 2>/dev/null
h=$({ printf '\0'; dd if="$log" bs=1 skip=12 count="$len" 2>/dev/null; } | sha256sum | cut -c1-64)
printf "$(sed 's/../\\x&/g' <<<"$h")" | dd of="$log" bs=1 seek=$((12 + len)) conv=notrunc 2>/dev/null
rm -f gw440300/data/audit/heads.log
start_gw 440300
forked() { grep -q "audit.fork_detected peer=440300" "gw$1.log"; }
if wait_for "$READY_S" "$bg" status --dir gw440300 && wait_for 30 forked 440100 &&
  wait_for 30 forked 440600; then
  ok "10. Guangzhou and Foshan detect the rewritten history: $(grep -o 'verdict=[a-z_-]*' gw440100.log | tail -1)"
else
  bad "10. fork detected" "$(grep audit gw440100.log | tail -3)"
fi
if [[ $("$bg" audit witness --dir gw440100) == *"CONFLICTS seen"* ]]; then
  ok "10. Guangzhou's witness store keeps the conflict: $("$bg" audit witness --dir gw440100 | grep -A1 CONFLICTS | tail -1 | cut -c1-90)"
else
  bad "10. conflict kept" "$("$bg" audit witness --dir gw440100 | tail -3)"
fi

# 11. Guangzhou keeps its peers' verified snapshots on disk: after a restart it
# asks with what it holds and is told it is current, instead of fetching again; a
# kept snapshot damaged on disk is refused by the same checks and fetched again.
restart_gz() {
  kill -TERM "${pid[440100]}"
  wait "${pid[440100]}" 2>/dev/null
  start_gw 440100
  wait_for "$READY_S" "$bg" status --dir gw440100
}
kept=gw440100/data/snapshots/440300-serious-dishonesty
query --peer 440300 --list serious-dishonesty --csv
rows 440300 >got.before.440300
query --peer 440300 --list serious-dishonesty --json
if [[ -s $kept.snap && -s $kept.sig && $(stat -c %a "$kept.snap") == 600 ]]; then
  ok "11. Shenzhen's snapshot is kept on disk ($(stat -c %s "$kept.snap") bytes, mode 600)"
else
  bad "11. snapshot kept on disk" "$(ls -l gw440100/data/snapshots 2>&1 | head -5)"
fi
restart_gz
query --peer 440300 --list serious-dishonesty --json
if [[ $qrc == 0 ]] && grep -q '"snapshot":"cached"' q.out &&
  grep -q 'psi.snapshot_restored peer=440300 list=serious-dishonesty' gw440100.log; then
  ok "11. after a restart the kept snapshot is used: $(grep -o 'psi.snapshot_restored peer=440300 [^"]*' gw440100.log | tail -1)"
else
  bad "11. kept snapshot used after a restart" "exit $qrc $(head -c 300 q.out) $(grep -c snapshot_restored gw440100.log)"
fi
query --peer 440300 --list serious-dishonesty --csv
rows 440300 >got.kept.440300
expect_same "11. answers from the kept snapshot equal those before the restart" got.kept.440300 got.before.440300
size=$(stat -c %s "$kept.snap")
printf '\xff' | dd of="$kept.snap" bs=1 seek=$((size - 40)) conv=notrunc 2>/dev/null
restart_gz
query --peer 440300 --list serious-dishonesty --json
if [[ $qrc == 0 ]] && grep -q '"snapshot":"full"' q.out &&
  grep -q 'psi.snapshot_discarded peer=440300 list=serious-dishonesty' gw440100.log; then
  ok "11. a kept snapshot changed on disk is refused and fetched again: $(grep -o 'psi.snapshot_discarded peer=440300 [^"]*"[^"]*' gw440100.log | tail -1 | cut -c1-120)"
else
  bad "11. damaged kept snapshot refused" "exit $qrc $(head -c 300 q.out) $(grep snapshot_ gw440100.log | tail -2)"
fi
query --peer 440300 --list serious-dishonesty --csv
rows 440300 >got.refetched.440300
expect_same "11. answers after the fetch again equal those before" got.refetched.440300 got.before.440300

# 12. Snapshot fetches shown while they run. Guangzhou imports 16000 more enterprises
# (a graded snapshot of some 2.2 MiB: 40 chunks of at most the roster's 64 KiB);
# Shenzhen's first graded query of it fetches that in full while Guangzhou is slowed
# (bounded SIGSTOP/SIGCONT cycles): Shenzhen's status shows the fetch in flight (peer,
# list, full, a total that fits the list, a received count that grows) and nothing once
# it is built; the query, on a terminal (script(1)), shows it on stderr. Foshan's first
# graded query, not on a terminal, never does.
# Each `baygate status` that leaves costs the local listener a revival (the ipc watch,
# peers/transport_server.c), and the eighth revival after it closes the connection a
# query waits on: hence a few status samples per query, spaced, not a tight poll.
# throttle PID SECONDS: PID stopped $stop_s s, running 0.02 s (a few chunks' worth),
# over and over, for at most SECONDS; left running.
stop_s=0.45
throttle() {
  local end=$((SECONDS + $2))
  while ((SECONDS < end)) && kill -0 "$1" 2>/dev/null; do
    kill -STOP "$1"
    sleep "$stop_s"
    kill -CONT "$1"
    sleep 0.02
  done
  kill -CONT "$1" 2>/dev/null
}
# slowed_query LOG OUT ERR DIR CMD...: CMD (stdout to OUT, stderr to ERR) in the
# background while Guangzhou is throttled; DIR's status --json fetches array appended
# to LOG every 0.4 s (4 times at most), its status text to LOG.txt once it shows one of
# Guangzhou's. Exit code in $qrc.
slowed_query() {
  local log=$1 out=$2 err=$3 dir=$4 k=0
  shift 4
  : >"$log"
  rm -f "$log.txt"
  throttle "${pid[440100]}" 40 &
  thr=$!
  "$@" >"$out" 2>"$err" &
  local q=$!
  while kill -0 "$q" 2>/dev/null; do
    sleep 0.4
    if ((k < 4)); then
      "$bg" status --dir "$dir" --json 2>/dev/null | grep -o '"fetches":\[[^]]*\]' >>"$log"
      k=$((k + 1))
      if [[ ! -e $log.txt ]] && grep -q '"peer":"440100"' "$log"; then
        "$bg" status --dir "$dir" >"$log.txt" 2>&1
      fi
    fi
  done
  wait "$q"
  qrc=$?
  kill "$thr" 2>/dev/null
  wait "$thr" 2>/dev/null
  thr=
  kill -CONT "${pid[440100]}"
}
# field NAME: the values of NAME in the fetches of Guangzhou's graded snapshot in stdin.
field() { grep -o '{"peer":"440100","list":"grades","kind":"full"[^}]*}' | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
gz_graded() { "$bg" status --dir gw440100 --json | grep -o '"list":"grades","generation":[0-9]*,"epoch":[0-9]*,"entries":[0-9]*' | grep -o '[0-9]*$'; }
t12=$SECONDS
before=$(gz_graded)
run "$bg" gen --city 440100 --count 16000 --seed 21 --out 440100.big.csv --quiet
run "$bg" import --dir gw440100 --strict 440100.big.csv
grown() { (($(gz_graded) > before + 10000)); }
wait_for "$PUBLISH_S" grown || bad "12. Guangzhou publishes its bigger graded list" "$(gz_graded) entries"
entries=$(gz_graded)
echo "# 12. Guangzhou's graded list: $before -> $entries entries ($((SECONDS - t12)) s)"
# A few ids: the snapshot is the same whatever is asked, and the PSI after it is short.
head -20 gz.ids >few12.txt
t12=$SECONDS
slowed_query fetch12.log tty12.out tty12.err gw440300 script -qefc \
  "stty cols 200; $bg query --dir gw440300 --purpose supervision --in few12.txt --peer 440100 --grades --csv --timeout-ms 20000" /dev/null
echo "# 12. Shenzhen's graded query of the slowed Guangzhou: $((SECONDS - t12)) s; $(grep -o 'snapshot=full ok=1 code=0 snapshot_ms=[0-9]*' gw440300.log | tail -1)"
expect_eq "12. Shenzhen's first graded query of Guangzhou (on a terminal): exit" "$qrc" 0
total=$(field bytes <fetch12.log | sort -u)
chunks=$(field chunks <fetch12.log | sort -u)
got=$(field bytes_received <fetch12.log | sort -n | uniq)
# The stream: a header of under 256 bytes, then 147 bytes per graded entry, in chunks
# of at most 64 KiB (and more than half of it: the envelope around one is small).
if [[ -n $total && $(wc -l <<<"$total") == 1 && $(wc -l <<<"$chunks") == 1 ]] &&
  ((total > entries * 147 && total < entries * 147 + 256)) &&
  ((chunks >= (total + 65535) / 65536 && chunks <= (total + 32767) / 32768)); then
  ok "12. status --json shows the fetch in flight: 440100 grades, full, $total bytes ($entries entries) in $chunks chunks"
else
  bad "12. the fetch in status --json" "total '$total' chunks '$chunks' for $entries entries: $(head -3 fetch12.log)"
fi
if (($(wc -l <<<"$got") >= 2)) && (($(tail -1 <<<"$got") <= total && $(head -1 <<<"$got") < $(tail -1 <<<"$got"))); then
  ok "12. its received count grows: $(paste -sd' ' <<<"$got") of $total"
else
  bad "12. the received count grows" "$(paste -sd' ' <<<"$got") of $total"
fi
if grep -q "^  fetching 440100 grades: [0-9.]* of [0-9.]* MiB (chunk [0-9]* of $chunks), full, [0-9]* s$" fetch12.log.txt; then
  ok "12. status text: $(grep '^  fetching' fetch12.log.txt | head -1 | sed 's/^ *//')"
else
  bad "12. status text names the fetch" "$(grep -i fetch fetch12.log.txt | head -3)"
fi
expect_eq "12. once built, status --json shows no fetch" \
  "$("$bg" status --dir gw440300 --json | grep -o '"fetches":\[[^]]*\]')" '"fetches":[]'
# The terminal's bytes: the progress line rewritten in place (\r).
tr '\r' '\n' <tty12.out >tty12.lines
if grep -aq "^asking 440100 about 20 ids on grades: [0-9]* s; fetching 440100 grades: [0-9.]* of [0-9.]* MiB (chunk [0-9]* of $chunks), full, [0-9]* s" tty12.lines; then
  ok "12. on a terminal the query shows it: $(grep -a -m1 -o 'fetching 440100 grades: [^;]*, full, [0-9]* s' tty12.lines)"
else
  bad "12. the progress line on a terminal" "$(grep -a asking tty12.lines | tail -3 | cut -c1-160)"
fi
t12=$SECONDS
slowed_query fetch12b.log q12b.out q12b.err gw440600 \
  "$bg" query --dir gw440600 --purpose supervision --in few12.txt --peer 440100 --grades --csv --timeout-ms 20000
if [[ $qrc == 0 ]] && grep -q '"peer":"440100","list":"grades","kind":"full"' fetch12b.log &&
  [[ ! -s q12b.err ]] && grep -q '^440100,' q12b.out; then
  ok "12. not on a terminal: nothing on stderr while Foshan fetches ($(field chunks_received <fetch12b.log | paste -sd' ') chunks seen received)"
else
  bad "12. no progress off a terminal" "exit $qrc, fetch seen: $(grep -c 440100 fetch12b.log), stderr: $(head -c 300 q12b.err)"
fi
echo "# 12. Foshan's: $((SECONDS - t12)) s"
# baygate lookup keeps the same line on a terminal, and none with --quiet: Guangzhou
# slowed more, so that its three lists take seconds.
t12=$SECONDS
stop_s=1.2
code=$(head -1 gz.ids)
for v in plain quiet; do
  o=()
  [[ $v == quiet ]] && o=(--quiet)
  slowed_query "lookup12.$v.log" "lookup12.$v.out" "lookup12.$v.err" gw440300 script -qefc \
    "stty cols 200; $bg lookup --dir gw440300 --purpose supervision ${o[*]} $code" /dev/null
  tr '\r' '\n' <"lookup12.$v.out" >"lookup12.$v.lines"
  lrc[$v]=$qrc
done
if [[ ${lrc[plain]} == 0 && ${lrc[quiet]} == 0 ]] &&
  grep -aq "^looking up $code in every city: [1-9][0-9]* s" lookup12.plain.lines &&
  ! grep -aq "looking up" lookup12.quiet.lines && grep -aq "^440100 Guangzhou" lookup12.quiet.lines; then
  ok "12. lookup on a terminal: '$(grep -a -m1 -o "^looking up $code in every city: [0-9]* s" lookup12.plain.lines)'; none with --quiet"
else
  bad "12. lookup's progress line" "exit ${lrc[plain]}/${lrc[quiet]}: $(grep -a 'looking up' lookup12.*.lines | tail -2)"
fi
echo "# 12. the lookups: $((SECONDS - t12)) s"

echo "# total: $((SECONDS - t_start)) s"
echo "psi_federation: $pass passed, $fail failed"
((fail == 0))
