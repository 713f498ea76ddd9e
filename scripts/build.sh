#!/usr/bin/env bash
# Configures and builds one variant, warnings as errors: scripts/build.sh VARIANT
#   plain -> build/, asan -> build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer):
#     RelWithDebInfo with gcc, everything (tests, benchmarks, man pages).
#   COMPILER-TYPE, COMPILER gcc|clang, TYPE release|debug|relwithdebinfo|dpkg
#     -> build-COMPILER-TYPE/: the baygate binary and its libraries only, to show
#     that it builds clean that way; dpkg = Debian's dpkg-buildflags (hardening).
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-plain}
target=()
case "$variant" in
  plain) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBG_SANITIZE=OFF) ;;
  asan)  dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBG_SANITIZE=ON) ;;
  gcc-* | clang-*)
    cc=${variant%%-*}
    case ${variant#*-} in
      release) type=Release ;;
      debug) type=Debug ;;
      relwithdebinfo) type=RelWithDebInfo ;;
      dpkg)
        # As a Debian package build gets them; CMake reads CFLAGS and LDFLAGS
        # but not CPPFLAGS (-D_FORTIFY_SOURCE), hence the join.
        type=None
        export DEB_BUILD_MAINT_OPTIONS=hardening=+all
        CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
        LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
        export CFLAGS LDFLAGS
        ;;
      *) echo "build: unknown variant '$variant'" >&2; exit 2 ;;
    esac
    dir=build-$variant
    flags=(-DCMAKE_BUILD_TYPE=$type -DCMAKE_C_COMPILER=$cc -DBUILD_TESTING=OFF -DBG_BENCH=OFF
           -DBG_MANPAGES=OFF)
    target=(--target baygate)
    ;;
  *) echo "build: unknown variant '$variant' (plain|asan|{gcc,clang}-{release,debug,relwithdebinfo,dpkg})" >&2
     exit 2 ;;
esac
cmake -S . -B "$dir" -DBG_WERROR=ON "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" "${target[@]}" >/dev/null
echo "build: $variant ready in $dir/"
