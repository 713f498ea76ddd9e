#!/usr/bin/env bash
# PSI benchmark: bench_psi at the sizes a city meets, then OpenMined PSI (psi.js 2.x,
# WASM, one thread) against baygate on the same sets. Prints the tables; exits non-zero
# if any intersection is wrong.
#
# usage: bench/psi.sh
# environment:
#   SIZES     bench_psi sizes (default 10x16,10x16g,16x20,20x20,16x22; AxL = 2^A asked
#             against a list of 2^L, g = graded list). The 2^22 build takes minutes.
#   OM_SIZES  sizes for the OpenMined comparison (default 10x16,12x16,16x16: its WASM
#             build does ~1.8k P-256 operations a second, so 16x16 takes ~3 minutes)
#   THREADS   bench_psi threads (default 0: all online CPUs)
#   BUILD_DIR build directory (default build-bench, RelWithDebInfo, no sanitizers)
#   OM_DIR    scratch folder for the npm install (default ${TMPDIR:-/tmp}/baygate-openmined)
#   SKIP_MAIN=1  only the OpenMined comparison;  SKIP_OM=1  only bench_psi
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
SIZES=${SIZES:-10x16,10x16g,16x20,20x20,16x22}
OM_SIZES=${OM_SIZES:-10x16,12x16,16x16}
THREADS=${THREADS:-0}
BUILD_DIR=${BUILD_DIR:-build-bench}
OM_DIR=${OM_DIR:-${TMPDIR:-/tmp}/baygate-openmined}
out=$(mktemp -d "${TMPDIR:-/tmp}/baygate-psi.XXXXXX")

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBG_SANITIZE=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target bench_psi >/dev/null
bench=$BUILD_DIR/bench/bench_psi

echo "psi: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "psi: load average before: $(cut -d' ' -f1-3 /proc/loadavg); results in $out"
echo

status=0
if [[ ${SKIP_MAIN:-0} != 1 ]]; then
    "$bench" --sizes "$SIZES" --threads "$THREADS" --tsv "$out/main.tsv" || status=1
    echo
fi
[[ ${SKIP_OM:-0} == 1 ]] && exit $status

# ---- OpenMined on the same sets ----
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "psi: node/npm not found: OpenMined comparison skipped" >&2
    exit $status
fi
mkdir -p "$OM_DIR"
cp bench/openmined/package.json "$OM_DIR/package.json"
# --ignore-scripts: the package ships its WASM prebuilt; nothing of it runs at install.
if ! (cd "$OM_DIR" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "psi: npm install @openmined/psi.js failed: OpenMined comparison skipped" >&2
    exit $status
fi
mkdir -p "$out/sets"

# baygate on the same sizes and the same USCCs (bench_psi writes the sets node reads),
# on all threads and on one (OpenMined's WASM build runs on one).
"$bench" --sizes "$OM_SIZES" --threads "$THREADS" --write-sets "$out/sets" \
    --tsv "$out/bg.tsv" >"$out/bg.txt" || status=1
"$bench" --sizes "$OM_SIZES" --threads 1 --tsv "$out/bg1.tsv" >"$out/bg1.txt" || status=1
node bench/openmined/run.js --sets "$out/sets" --sizes "$OM_SIZES" --module "$OM_DIR" \
    --tsv "$out/om.tsv" | tee "$out/om.txt" || status=1
echo

# One table: sizes in OM_SIZES order, times in seconds.
#   query: OpenMined request + response + intersection; baygate blind + evaluate + finalize
#   with setup: + OpenMined's server setup; + baygate's snapshot build and fetch/verify
#   per core: OpenMined (1 thread) / (baygate wall x its threads)
awk -F'\t' '
    FNR == 1 { file++; next }
    file == 1 { bt[$1] = $2; be2e[$1] = $10; bbuild[$1] = $5; bfetch[$1] = $6
                bbytes[$1] = $14 + $15; bsnap[$1] = $16 + $17; next }
    file == 2 { b1[$1] = $10; next }
    file == 3 { order[++n] = $1; ver = $2; oset[$1] = $5; oq[$1] = $9
                obytes[$1] = $11 + $12; osetb[$1] = $10; ok[$1] = ($13 == $14) }
    END {
        printf "OpenMined psi.js %s (WASM, 1 thread, Raw, reveal) vs baygate (%s threads), same USCC sets:\n\n", ver, bt[order[1]]
        printf "| asked x list | OM setup s | OM query s | bg build+fetch s | bg query s | bg query s (1 thr) | OM/bg query | per core | OM/bg (1 thr) | OM/bg incl setup | OM bytes query (+setup) | bg bytes query (+snapshot) |\n"
        printf "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for (i = 1; i <= n; i++) {
            s = order[i]
            printf "| 2^%s x 2^%s | %.2f | %.2f | %.2f | %.3f | %.3f | %.1f | %.1f | %.1f | %.1f | %d (%d) | %d (%d) |%s\n",
                substr(s, 1, index(s, "x") - 1), substr(s, index(s, "x") + 1),
                oset[s], oq[s], bbuild[s] + bfetch[s], be2e[s], b1[s],
                oq[s] / be2e[s], oq[s] / (be2e[s] * bt[s]), oq[s] / b1[s],
                (oset[s] + oq[s]) / (bbuild[s] + bfetch[s] + be2e[s]),
                obytes[s], obytes[s] + osetb[s], bbytes[s], bbytes[s] + bsnap[s],
                ok[s] ? "" : " OM WRONG"
        }
    }' "$out/bg.tsv" "$out/bg1.tsv" "$out/om.tsv"
exit $status
