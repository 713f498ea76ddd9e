#!/usr/bin/env bash
# psi_attack_test.sh BAYGATE FED_ATTACK WORKDIR - hostile PSI requests against
# a real answering gateway. Guangzhou (440100) and Shenzhen (440300) serve on
# loopback; Shenzhen has generated data imported and publishes its lists.
# fed_attack (tests/fed_attack.c, `psi`) plays a hostile asker with
# Guangzhou's key and certificate: it fetches the list's current epoch with a
# real SnapshotRequest, then sends one signed PsiQuery built per case
# (identity, non-canonical and undecodable elements, bad lengths, stale and
# future epochs, wrong generation, unknown list, purposes not allowed or
# without authorisation, count batches too small or split, inconsistent
# chunks, bad mode, garbage body, oversize and near-maximum batches, ...).
# Foshan (440600) is a member with a certificate but no gateway: its small
# quota is used up with fed_attack alone. Every case's exact outcome is
# asserted (the codes of gateway/daemon/gw.h, as psi_answer.c gives them), as
# is a psi.refused log line with that code for each PSI refusal. Afterwards
# Shenzhen is still up and answers a normal `baygate query` correctly, and its
# log holds no element that was sent.
#
# Deadlines are generous and polled (the same script runs the ASan build);
# every process started here is stopped on exit.
set -uo pipefail
export LC_ALL=C
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
SUITE=psi_attack
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2
t_start=$SECONDS

READY_S=60      # a gateway answering its local API
PUBLISH_S=60    # Shenzhen's first snapshots
LOG_S=15        # a refusal showing up in the log
ANSWER_MS=20000 # a call that should be answered (returns as soon as it is)
SILENT_MS=4000  # a call that should get no answer: waited in full
COUNT=500
AUTH=5d41402abc4b2a76b9719d911017c592e5b1b1b5e4d5d0c1f7a6e3e2d1c0b0a9 # a consent digest

declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen [440600]=Foshan)
cities=(440100 440300 440600) # Foshan: certificate and roster entry only, never started
served=(440100 440300)

cleanup() { stop_procs "${pid[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- PKI, roster

run "$bg" ca init --dir CA
for c in "${cities[@]}"; do setup_city "$c"; done
run "$bg" ca crl --dir CA --out crl.pem

# Guangzhou may ask Shenzhen about both lists for supervision and for lending
# (which needs the enterprise's written authorisation); statistics is declared
# but not granted. Foshan may ask Shenzhen about serious-dishonesty only, 100
# items a day. 64 KiB messages: a chunk holds at most 1792 elements.
{
  roster_federation 1 65536
  roster_purpose supervision false
  roster_purpose lending true
  roster_purpose statistics false
  roster_members "${cities[@]}"
  roster_permission 440100 440300 "supervision, lending" \
    "serious-dishonesty, abnormal-operation" 100000
  roster_permission 440300 440100 supervision serious-dishonesty 100000
  roster_permission 440600 440300 supervision serious-dishonesty 100
} >roster.ini
run "$bg" roster sign --ca CA --out roster.pb roster.ini
for c in "${cities[@]}"; do run cp crl.pem roster.pb "gw$c/"; done

# ------------------------------------------------------------------ data

run "$bg" gen --city 440100 --count "$COUNT" --seed 21 --out 440100.csv --quiet
run "$bg" gen --city 440300 --count "$COUNT" --seed 22 --share 440100.csv --share-rate 0.4 \
  --out 440300.csv --quiet
run "$bg" import --data-dir gw440300/data --city 440300 --strict 440300.csv

# The ground truth: Guangzhou's ids, and Shenzhen's serious-dishonesty entries
# in force today (UTC, as the gateway decides: listed, and no expires_at or a
# later one) among them. Fields may be quoted (RFC 4180, no embedded newlines).
csv_cols() {
  awk -v today="$(date -u +%F)" '
    function fields(line, f,    n, i, ch, inq, cur) {
      n = 0; cur = ""; inq = 0
      for (i = 1; i <= length(line); i++) {
        ch = substr(line, i, 1)
        if (inq && ch == "\"" && substr(line, i + 1, 1) == "\"") { cur = cur ch; i++ }
        else if (ch == "\"") inq = !inq
        else if (!inq && ch == ",") { f[++n] = cur; cur = "" }
        else cur = cur ch
      }
      f[++n] = cur
      return n
    }
    { sub(/\r$/, "") }
    NR == 1 { n = fields($0, h); for (i = 1; i <= n; i++) col[h[i]] = i; next }
    {
      fields($0, f)
      l = f[col["serious-dishonesty:listed_at"]]; x = f[col["serious-dishonesty:expires_at"]]
      print toupper(f[col["uscc"]]), (l != "" && (x == "" || x > today)) ? 1 : 0
    }' "$1"
}
csv_cols 440100.csv | cut -d' ' -f1 | sort -u >gz.ids
csv_cols 440300.csv | awk '$2 == 1 { print $1 }' | sort -u | comm -12 gz.ids - >truth.sd
if (($(wc -l <truth.sd) >= 3)); then
  ok "setup: $(wc -l <truth.sd) of Guangzhou's $(wc -l <gz.ids) enterprises are on Shenzhen's serious-dishonesty list"
else
  bad "setup: enough overlap to test" "$(wc -l <truth.sd) matches"
fi

# ------------------------------------------------------------- gateways

for c in "${served[@]}"; do start_gw "$c"; done
published() { (($(grep -c " psi.published " gw440300.log) >= $1)); }
for c in "${served[@]}"; do
  if ! wait_for "$READY_S" "$bg" status --dir "gw$c"; then
    bad "gateway $c did not come up" "$(tail -5 "gw$c.log")"
    echo "$SUITE: $pass passed, $fail failed"
    exit 1
  fi
done
if wait_for "$PUBLISH_S" published 3; then
  ok "Guangzhou and Shenzhen are up; Shenzhen has published its 3 lists"
else
  bad "Shenzhen publishes its lists" "$(tail -5 gw440300.log)"
  echo "$SUITE: $pass passed, $fail failed"
  exit 1
fi
echo "# setup and start: $((SECONDS - t_start)) s"

# ------------------------------------------------------------- the attacks

# attack DIR FROM [fed_attack psi options]: one fed_attack psi with the key and
# certificate in DIR against Shenzhen (serious-dishonesty, supervision unless
# the options say otherwise); prints its result line.
attack() {
  local dir=$1 from=$2
  shift 2
  echo "### $*" >>attack.log
  fa_call psi "$dir" "$from" 440300 --list serious-dishonesty --purpose supervision \
    --timeout-ms "$ANSWER_MS" "$@"
}
refusals() { grep -c " psi.refused " gw440300.log; }
refusals_grew() { (($(refusals) > $1)); }
# hostile_as DIR FROM TITLE WANT [options]: the result line must be WANT; a
# refusal with a PSI code (101, 107..115) must also be in Shenzhen's log, once,
# with that code, naming the asker.
hostile_as() {
  local dir=$1 from=$2 title=$3 want=$4
  shift 4
  local before got code
  before=$(refusals)
  got=$(attack "$dir" "$from" "$@")
  expect_eq "$title" "$got" "$want"
  code=$(sed -nE 's/^(snapshot )?answer refused (10[1-9]|11[0-5])$/\2/p' <<<"$want")
  [[ -z $code ]] && return
  if wait_for "$LOG_S" refusals_grew "$before" &&
    grep " psi.refused " gw440300.log | tail -1 | grep -q "peer=$from .*code=$code "; then
    ok "  logged: $(grep " psi.refused " gw440300.log | tail -1 | grep -o "code=.*" | cut -c1-110)"
  else
    bad "  refusal $code logged by Shenzhen" "$(grep " psi.refused " gw440300.log | tail -2)"
  fi
  # one log line per refusal
  expect_eq "  one refusal line" "$(($(refusals) - before))" 1
}
hostile() { hostile_as gw440100 440100 "$@"; }

hostile "good: 4 random blinded elements" "answer ok 4" --case good
hostile "good, lending with an authorisation reference" "answer ok 4" --case good \
  --purpose lending --auth-ref "$AUTH"
# used_today CITY: the asker's items today in Shenzhen's quota file.
used_today() { awk -v c="$1" '$1 == c { print $3 }' gw440300/data/quota; }
used0=$(used_today 440100)
hostile "identity element" "answer refused 113" --case identity
hostile "non-canonical element (p + 1)" "answer refused 113" --case noncanonical
hostile "non-canonical element (bit 255 set)" "answer refused 113" --case top-bit
hostile "bytes that are not a point" "answer refused 113" --case not-a-point
# The quota is charged only once the elements proved valid: refused chunks cost nothing.
expect_eq "the 4 refused chunks of 4 bad elements are not charged to the quota" \
  "$(($(used_today 440100) - used0))" 0
hostile "elements not a multiple of 32 bytes" "answer refused 113" --case short
hostile "no elements" "answer refused 113" --case empty
hostile "stale epoch (epoch - 1)" "answer refused 110" --case stale-epoch
hostile "future epoch (epoch + 1)" "answer refused 110" --case future-epoch
hostile "wrong generation" "answer refused 110" --case wrong-generation
hostile "unknown list" "answer refused 108" --case unknown-list
hostile "purpose not declared (marketing)" "answer refused 107" --case purpose-not-allowed
hostile "purpose declared, not granted (statistics)" "answer refused 107" \
  --case purpose-not-allowed --query-purpose statistics
hostile "lending query without an authorisation reference" "answer refused 107" --case no-auth \
  --purpose lending --auth-ref "$AUTH"
hostile "lending snapshot without an authorisation reference" "snapshot answer refused 107" \
  --case good --purpose lending
hostile "count batch of min_count_batch (16)" "answer ok 16" --case count-good
hostile "count batch below min_count_batch (15)" "answer refused 112" --case count-small
hostile "count batch split in 2 chunks" "answer refused 112" --case count-multichunk
hostile "membership, batch_items 2^31 in one chunk" "answer refused 112" --case huge-batch-items
hostile "count, batch_items 2^31" "answer refused 112" --case huge-batch-items-count
hostile "chunk index 2 of 2" "answer refused 112" --case chunk-index-out-of-range
hostile "mode 7" "answer refused 114" --case bad-mode
hostile "graded mode on a list without payloads" "answer refused 114" --case graded-plain-list
hostile "batch_id of 15 bytes" "answer refused 101" --case bad-batch-id
hostile "PsiQuery body that does not parse" "answer refused 101" --case garbage-body
hostile "snapshot chunk out of range" "answer refused 101" --case snapshot-chunk-out-of-range
hostile "snapshot chunk of a future epoch" "answer refused 110" --case snapshot-stale
# Not a PSI refusal: body types nothing serves are answered 100 and logged.
hostile "body type 36 (not served)" "answer refused 100" --case answer-fetch
if grep -q "request.refused reason=unknown_body peer=440100 body_type=36" gw440300.log; then
  ok "  Shenzhen logs the unserved body type"
else
  bad "  Shenzhen logs the unserved body type" "$(tail -3 gw440300.log)"
fi

# Above max_message_bytes: the transport takes no more (the connection is
# dropped), the client hears nothing.
got=$(attack gw440100 440100 --case oversize-elements --timeout-ms "$SILENT_MS")
case "$got" in
timeout | "transport reset" | "transport failed")
  ok "elements 4 KiB beyond max_message_bytes: the client gets '$got'" ;;
*) bad "elements 4 KiB beyond max_message_bytes" "got '$got', expected a timeout or transport error" ;;
esac
# Within max_message_bytes, but more elements than an answer has room for (the
# answer is the query plus a few bytes): refused before any work or charge.
used1=$(used_today 440100)
hostile "elements filling max_message_bytes (no room for the answer)" "answer refused 112" \
  --case near-max-elements
hostile "elements filling exactly max_message_bytes" "answer refused 112" \
  --case exact-max-elements
expect_eq "  neither is charged to the quota" "$(($(used_today 440100) - used1))" 0
if ! grep -q " answer.seal_failed " gw440300.log; then
  ok "  Shenzhen never made an answer too large to send"
else
  bad "  Shenzhen made an answer too large to send" "$(grep " answer.seal_failed " gw440300.log | tail -1)"
fi

# Foshan: lists and quota of its own permission.
hostile_as gw440600 440600 "Foshan: list not in its permission" "answer refused 107" --case good \
  --query-list abnormal-operation
hostile_as gw440600 440600 "Foshan: 101 items against a quota of 100" "answer refused 111" \
  --case over-quota
hostile_as gw440600 440600 "Foshan: exactly its 100 items" "answer ok 100" --case good --items 100
hostile_as gw440600 440600 "Foshan: one item more the same day" "answer refused 111" --case good \
  --items 1
expect_eq "Foshan's use today in Shenzhen's quota file" \
  "$(awk '$1 == 440600 { print $3 }' gw440300/data/quota)" 100

# ------------------------------------------------------------- afterwards

if kill -0 "${pid[440300]}" 2>/dev/null && "$bg" status --dir gw440300 >/dev/null 2>&1; then
  ok "Shenzhen is still running and answers its local API"
else
  bad "Shenzhen survived the attacks" "$(tail -5 gw440300.log)"
fi
"$bg" query --dir gw440100 --peer 440300 --list serious-dishonesty --purpose supervision \
  --in gz.ids --csv --timeout-ms "$ANSWER_MS" >q.out 2>q.err
expect_eq "a normal query from Guangzhou: exit" "$?" 0
awk -F, '$1 == 440300 && $2 == "true" && $4 != "" { print $4 }' q.out | sort >got.sd
if cmp -s got.sd truth.sd; then
  ok "its matches equal the ground truth ($(wc -l <truth.sd))"
else
  bad "its matches equal the ground truth" "$(diff got.sd truth.sd | head -5)"
fi

sed -nE 's/^fed_attack: sent element ([0-9a-f]{64})$/\1/p' attack.log | sort -u |
  grep -vx '0\{64\}' >sent.hex
n_hex=$(wc -l <sent.hex)
if ((n_hex >= 20)) && ! grep -qiF -f sent.hex gw440300.log; then
  ok "Shenzhen's log holds none of the $n_hex elements sent (hex)"
else
  bad "no element in Shenzhen's log" "$n_hex elements; $(grep -iF -f sent.hex gw440300.log | head -2)"
fi
if ! grep -qE "AddressSanitizer|LeakSanitizer|runtime error" gw440300.log; then
  ok "no sanitizer report in Shenzhen's log"
else
  bad "sanitizer report in Shenzhen's log" "$(grep -m3 -E "Sanitizer|runtime error" gw440300.log)"
fi

echo "# total: $((SECONDS - t_start)) s"
echo "$SUITE: $pass passed, $fail failed"
((fail == 0))
