#!/usr/bin/env bash
# The layers hold: no include and no call runs from a lower layer to a higher
# one, and no two files of one folder call each other in a circle.
#
#   tests/layers_test.sh SOURCE_DIR BUILD_DIR
#
# Includes are read from the sources; calls from the symbols the compiled
# objects define and use (nm), so a call through a header declared by hand is
# caught too. Tests, benchmarks and fuzz harnesses sit above everything and are
# not checked.
set -uo pipefail
src=${1:?source dir}
build=${2:?build dir}

# Height of each folder, lowest first. Folders of one height may not use each
# other (peers/ and mpc/ know nothing of one another). A new folder must be
# placed here, or this test fails naming it.
declare -A rank=(
  [common]=0
  [domain]=1
  [proto]=2
  [certs]=3
  [peers]=4 [mpc]=4
  [gateway/record]=5 [gateway/config]=5 [gateway/audit]=5 [gateway/attest]=5
  [gateway/store]=6 [gateway/gen]=6
  [gateway/daemon]=7 [gateway/backup]=7
  [gateway/cmdline]=8 [gateway/api]=8
  [gateway/demo]=9
  [gateway/cli]=10
)

fail=0
bad() {
  echo "layers: $*" >&2
  fail=1
}

# 1. Includes: every quoted include names its folder and points down (or into
# its own folder).
cd "$src" || exit 2
while IFS= read -r f; do
  dir=${f%/*}
  own=${rank[$dir]:-}
  if [[ -z $own ]]; then
    bad "$f: folder '$dir' has no height in tests/layers_test.sh"
    continue
  fi
  while IFS= read -r inc; do
    tdir=.
    [[ $inc == */* ]] && tdir=${inc%/*}
    [[ $tdir == "$dir" ]] && continue
    if [[ $tdir == . ]]; then
      bad "$f: #include \"$inc\" does not name its folder"
      continue
    fi
    t=${rank[$tdir]:-}
    if [[ -z $t ]]; then
      bad "$f: includes '$inc' from a folder with no height"
    elif ((t >= own)); then
      bad "$f (height $own) includes $inc (height $t): not downward"
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done < <({ git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' ! -path './build*' | sed 's|^\./||'; } |
  grep -v -E '^(tests|bench|fuzz)/')

# 2. Calls, from the objects of the project's libraries. An object's source is
# its path under CMakeFiles/<target>.dir/, relative to the CMakeLists folder.
declare -A defined_in=()
declare -a objs=() srcs=()
while IFS= read -r o; do
  rel=${o#"$build"/}
  cmdir=${rel%%/CMakeFiles/*}
  inner=${rel#*/CMakeFiles/*.dir/}
  [[ $rel == CMakeFiles/* ]] && cmdir=.
  s=${inner%.o}
  [[ $cmdir != . ]] && s=$cmdir/$s
  case $s in tests/* | bench/* | fuzz/*) continue ;; esac
  [[ -f $src/$s ]] || continue
  objs+=("$o")
  srcs+=("$s")
  while read -r sym; do
    defined_in[$sym]=$s
  done < <(nm --defined-only -g "$o" 2>/dev/null | awk '$2 ~ /[TDBRC]/ {print $3}')
done < <(find "$build" \( -path '*/CMakeFiles/bg_*.dir/*' -o -path '*/CMakeFiles/baygate.dir/*' \) \
  -name '*.c.o' | sort)

if ((${#objs[@]} == 0)); then
  bad "no library objects under $build (build first)"
  exit 1
fi

edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for i in "${!objs[@]}"; do
  from=${srcs[$i]}
  fdir=${from%/*}
  fr=${rank[$fdir]:-}
  while read -r sym; do
    to=${defined_in[$sym]:-}
    [[ -z $to || $to == "$from" ]] && continue
    tdir=${to%/*}
    if [[ $tdir == "$fdir" ]]; then
      echo "$from $to" >>"$edges"
      continue
    fi
    tr=${rank[$tdir]:-}
    if [[ -n $fr && -n $tr ]] && ((tr >= fr)); then
      bad "$from (height $fr) calls $sym of $to (height $tr): not downward"
    fi
  done < <(nm --undefined-only "${objs[$i]}" 2>/dev/null | awk '{print $2}')
done

# Within a folder the call graph between files must have an order: tsort
# fails on a loop and names its members.
if [[ -s $edges ]]; then
  if ! out=$(sort -u "$edges" | tsort 2>&1 >/dev/null); then
    bad "files of one folder call each other in a circle:"
    echo "$out" | sed 's/^/  /' >&2
  fi
fi

if ((fail)); then
  echo "layers: FAILED" >&2
  exit 1
fi
echo "layers: ${#objs[@]} objects, includes and calls all point down, no circle in a folder"
