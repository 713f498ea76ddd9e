#!/usr/bin/env bash
# hostile_test.sh BAYGATE FED_ATTACK WORKDIR - two real gateways (Guangzhou
# 440100, Shenzhen 440300) on loopback; Guangzhou runs under a descriptor
# limit of 512 while fed_attack holds 1,100 TCP connections to it from 100
# source addresses that never start TLS (issue 16: ~1,100 such connections
# used to exhaust a gateway under the usual 1,024 limit). The transport's
# guard must close them (handshake bound, per-source bound, descriptor
# reserve); meanwhile Guangzhou's local API and its peers are served, and
# afterwards it is back to normal by itself.
#
# Then a member (Foshan 440600, in the roster, its gateway not needed) floods
# Guangzhou with good pings over 8 connections (issue 16: cheap requests were
# unlimited): Shenzhen's pings keep being answered, Foshan is refused with the
# rate code (117) and Guangzhou's status counts it.
#
# Then Guangzhou's operator lowers [rate] ping_per_s and ping_burst in
# baygate.ini and sends SIGHUP: the same flood is refused sooner, without a
# restart; a [rate] value out of range at a later SIGHUP is logged and leaves
# the limits in use.
#
# Deadlines are generous (the same script runs the ASan build); nothing
# asserts how fast, only what happens.
set -uo pipefail
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
SUITE=hostile
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2

READY_S=60
ANSWER_MS=15000

declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen [440600]=Foshan)
stall_pid=""
cities=(440100 440300)
cleanup() { stop_procs ${stall_pid:+"$stall_pid"} "${pid[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

run "$bg" ca init --dir CA
for c in "${cities[@]}" 440600; do setup_city "$c"; done
run "$bg" ca crl --dir CA --out crl.pem
{
  roster_federation 1 4194304
  roster_purpose supervision false
  roster_members "${cities[@]}" 440600
  roster_permission 440100 440300 supervision "serious-dishonesty" 1000
  roster_permission 440300 440100 supervision "serious-dishonesty" 1000
} >roster.ini
run "$bg" roster sign --ca CA --out roster.pb roster.ini
for c in "${cities[@]}"; do run cp crl.pem roster.pb "gw$c/"; done

# Guangzhou with 512 descriptors, Shenzhen as usual.
(
  ulimit -n 512
  exec "$bg" serve --dir gw440100 2>>gw440100.log
) &
pid[440100]=$!
start_gw 440300
for c in "${cities[@]}"; do
  if ! wait_for "$READY_S" "$bg" status --dir "gw$c"; then
    bad "gateway $c did not come up within ${READY_S}s" "$(tail -5 "gw$c.log")"
    # Lower ping limits by SIGHUP: at 1/s with a burst of 2, a 3-second flood has at
# most about 5 answered (the defaults, 20/s, answered dozens above).
reloads() { grep -c "$1" gw440100.log; }
logged_since() { (($(reloads "$1") > $2)); }
n0=$(reloads config.reloaded)
sed -i 's/^ping_per_s = .*/ping_per_s = 1/; s/^ping_burst = .*/ping_burst = 2/' gw440100/baygate.ini
kill -HUP "${pid[440100]}"
if wait_for 10 logged_since config.reloaded "$n0"; then ok "SIGHUP: baygate.ini's [rate] reloaded"; else
  bad "SIGHUP: baygate.ini's [rate] reloaded" "$(tail -3 gw440100.log)"
fi
fa_call flood gw440600 440600 440100 --conns 2 --seconds 3 >flood2.out
read -r _ _ sent _ answered _ limited _ other <flood2.out
if [[ "${answered:-x}" =~ ^[0-9]+$ ]] && ((answered >= 1 && answered <= 8 && limited > 0)); then
  ok "at ping_per_s = 1, ping_burst = 2: $answered of $sent pings answered, $limited refused"
else
  bad "a lower ping limit refuses sooner" "$(cat flood2.out)"
fi
n1=$(reloads config.reload_failed)
sed -i 's/^ping_burst = .*/ping_burst = 0/' gw440100/baygate.ini
kill -HUP "${pid[440100]}"
if wait_for 10 logged_since config.reload_failed "$n1" &&
  grep 'config.reload_failed' gw440100.log | grep -q 'ping_burst: 0 is out of range'; then
  ok "SIGHUP with ping_burst = 0: refused, naming the key and value"
else
  bad "SIGHUP with ping_burst = 0: refused, naming the key and value" "$(tail -3 gw440100.log)"
fi
if kill -0 "${pid[440100]}" 2>/dev/null; then ok "after the refused reload: Guangzhou still running"; else
  bad "after the refused reload: Guangzhou still running"
fi
echo "hostile: $pass passed, $fail failed"
    exit 1
  fi
done
ok "both gateways up (Guangzhou with ulimit -n 512)"

# ping FROM TO: the daemon path, exit 0 and "ok".
ping_ok() {
  "$bg" ping --dir "gw$1" --peer "$2" --timeout-ms "$ANSWER_MS" >ping.out 2>&1 && grep -q " ok " ping.out
}
if ping_ok 440300 440100; then ok "Shenzhen pings Guangzhou"; else bad "Shenzhen pings Guangzhou" "$(cat ping.out)"; fi

"$fa" stall --host 127.0.0.1 --port "${port[440100]}" --seconds 600 --conns 1100 --sources 100 \
  >stall.out 2>&1 &
stall_pid=$!
if wait_for 300 grep -q "^connected" stall.out; then
  ok "the flood: $(head -1 stall.out) (silent TCP connections to Guangzhou)"
else
  bad "the flood did not finish connecting" "$(cat stall.out)"
fi
# While the flood is held: the local API answers, peers are served.
for i in 1 2 3; do
  if "$bg" status --dir gw440100 >status.out 2>&1; then ok "during the flood: status $i answers"; else
    bad "during the flood: status $i answers" "$(cat status.out)"
  fi
done
if ping_ok 440300 440100; then ok "during the flood: Shenzhen pings Guangzhou"; else
  bad "during the flood: Shenzhen pings Guangzhou" "$(cat ping.out)"
fi
if ping_ok 440100 440300; then ok "during the flood: Guangzhou pings Shenzhen"; else
  bad "during the flood: Guangzhou pings Shenzhen" "$(cat ping.out)"
fi
open_fds() { ls "/proc/${pid[440100]}/fd" 2>/dev/null | wc -l; }
# The handshake bound (10 s) closes every one of them: the gateway's
# descriptors come down to what it needs by itself, the attacker still there.
if wait_for 120 bash -c "(( \$(ls /proc/${pid[440100]}/fd | wc -l) < 128 ))"; then
  ok "Guangzhou's descriptors back under 128 with the flood still held ($(open_fds) open)"
else
  bad "Guangzhou's descriptors back under 128" "$(open_fds) open"
fi
kill -TERM "$stall_pid"
wait "$stall_pid" 2>/dev/null
stall_pid=""
cut=$(grep -o '^closed [0-9]*' stall.out | cut -d' ' -f2)
if [[ -n "$cut" ]] && ((cut > 0)); then ok "the gateway closed $cut of the attacker's connections"; else
  bad "the gateway closed the attacker's connections" "$(cat stall.out)"
fi
if ping_ok 440300 440100; then ok "afterwards: Shenzhen pings Guangzhou"; else
  bad "afterwards: Shenzhen pings Guangzhou" "$(cat ping.out)"
fi
if "$bg" status --dir gw440100 >status.out 2>&1; then ok "afterwards: status answers"; else
  bad "afterwards: status answers" "$(cat status.out)"
fi
if grep -qE '^ +cut:(handshake-timeout|descriptor-reserve) +[1-9]' status.out; then
  ok "Guangzhou's status counts the cut connections: $(grep -oE 'cut:[a-z-]+ +[0-9]+' status.out | tr -s ' ' | paste -sd, -)"
else
  bad "Guangzhou's status counts the cut connections (cut:...)" "$(cat status.out)"
fi
if kill -0 "${pid[440100]}" 2>/dev/null; then ok "Guangzhou still running"; else bad "Guangzhou still running"; fi

# A member's flood of pings: refused by rate, others still answered.
fa_call flood gw440600 440600 440100 --conns 8 --seconds 8 >flood.out &
flood_pid=$!
sleep 1
for i in 1 2 3; do
  if ping_ok 440300 440100; then ok "during Foshan's ping flood: Shenzhen's ping $i answered"; else
    bad "during Foshan's ping flood: Shenzhen's ping $i answered" "$(cat ping.out)"
  fi
done
wait "$flood_pid"
read -r _ _ sent _ answered _ limited _ other <flood.out
if [[ "${limited:-0}" =~ ^[0-9]+$ ]] && ((limited > 0 && answered > 0 && other == 0)); then
  ok "Foshan's flood: $sent pings, $answered answered, $limited refused by rate (117)"
else
  bad "Foshan's flood is refused by rate" "$(cat flood.out) $(tail -3 attack.log)"
fi
if "$bg" status --dir gw440100 >status.out 2>&1 && grep -q 'rate-limited:ping' status.out; then
  ok "Guangzhou's status counts rate-limited:ping"
else
  bad "Guangzhou's status counts rate-limited:ping" "$(cat status.out)"
fi
n=$(grep -c 'request.rate_limited' gw440100.log)
if ((n >= 1 && n <= 3)); then ok "the refusals logged $n time(s), not once per ping"; else
  bad "the refusals logged once per interval" "$n lines"
fi
if ping_ok 440300 440100; then ok "after the flood: Shenzhen pings Guangzhou"; else
  bad "after the flood: Shenzhen pings Guangzhou" "$(cat ping.out)"
fi
# Lower ping limits by SIGHUP: at 1/s with a burst of 2, a 3-second flood has at
# most about 5 answered (the defaults, 20/s, answered dozens above).
reloads() { grep -c "$1" gw440100.log; }
logged_since() { (($(reloads "$1") > $2)); }
n0=$(reloads config.reloaded)
sed -i 's/^ping_per_s = .*/ping_per_s = 1/; s/^ping_burst = .*/ping_burst = 2/' gw440100/baygate.ini
kill -HUP "${pid[440100]}"
if wait_for 10 logged_since config.reloaded "$n0"; then ok "SIGHUP: baygate.ini's [rate] reloaded"; else
  bad "SIGHUP: baygate.ini's [rate] reloaded" "$(tail -3 gw440100.log)"
fi
fa_call flood gw440600 440600 440100 --conns 2 --seconds 3 >flood2.out
read -r _ _ sent _ answered _ limited _ other <flood2.out
if [[ "${answered:-x}" =~ ^[0-9]+$ ]] && ((answered >= 1 && answered <= 8 && limited > 0)); then
  ok "at ping_per_s = 1, ping_burst = 2: $answered of $sent pings answered, $limited refused"
else
  bad "a lower ping limit refuses sooner" "$(cat flood2.out)"
fi
n1=$(reloads config.reload_failed)
sed -i 's/^ping_burst = .*/ping_burst = 0/' gw440100/baygate.ini
kill -HUP "${pid[440100]}"
if wait_for 10 logged_since config.reload_failed "$n1" &&
  grep 'config.reload_failed' gw440100.log | grep -q 'ping_burst: 0 is out of range'; then
  ok "SIGHUP with ping_burst = 0: refused, naming the key and value"
else
  bad "SIGHUP with ping_burst = 0: refused, naming the key and value" "$(tail -3 gw440100.log)"
fi
if kill -0 "${pid[440100]}" 2>/dev/null; then ok "after the refused reload: Guangzhou still running"; else
  bad "after the refused reload: Guangzhou still running"
fi
echo "hostile: $pass passed, $fail failed"
((fail == 0))
