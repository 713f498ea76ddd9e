#!/usr/bin/env bash
# Builds the Debian package from the committed tree plus local changes:
#   scripts/package.sh   -> build-deb/baygate_<version>_<arch>.deb
# The sources are copied to build-deb/src first, because dpkg-buildpackage
# writes its results next to the source directory. BG_WERROR=ON (the project's
# CI) makes warnings errors in this dpkg-buildflags build too.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-deb
rm -rf "$out"
mkdir -p "$out/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -P -t "$out/src"
cd "$out/src"
BG_WERROR=${BG_WERROR:-OFF} DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$(nproc)" \
  dpkg-buildpackage -b -uc -us >../build.log 2>&1 || {
  tail -n 40 ../build.log >&2
  echo "package: dpkg-buildpackage failed (build-deb/build.log)" >&2
  exit 1
}
cd ..
ls ./*.deb
