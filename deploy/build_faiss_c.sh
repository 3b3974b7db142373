#!/usr/bin/env bash
# Builds faiss's C API (libfaiss_c.a) from Debian's own faiss source, because Debian's
# libfaiss-dev ships the C API headers and libfaiss.a but not the C API library.
# Installs into the prefix /usr/local: lib/libfaiss_c.a, plus any C API header that Debian's
# /usr/include/faiss/c_api lacks under include/faiss/c_api. Idempotent: skips when the stamp
# share/tailor/faiss_c.version names the installed libfaiss-dev version. Called by setup.sh.
#   deploy/build_faiss_c.sh [PREFIX]
set -euo pipefail

prefix="${1:-/usr/local}"
stamp="$prefix/share/tailor/faiss_c.version"
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"

bin_version=$(dpkg-query -W -f='${Version}' libfaiss-dev)
src_version=$(dpkg-query -W -f='${source:Version}' libfaiss-dev)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$bin_version" && -f "$prefix/lib/libfaiss_c.a" ]]; then
  echo "build_faiss_c: libfaiss_c.a for faiss $bin_version already in $prefix"
  exit 0
fi

# deb-src entry for the same archive as the binary entries, in a separate deb822 file.
src_list=/etc/apt/sources.list.d/tailor-debian-src.sources
if [[ ! -f "$src_list" ]]; then
  main_list=/etc/apt/sources.list.d/debian.sources
  [[ -f "$main_list" ]] || { echo "build_faiss_c: $main_list not found" >&2; exit 1; }
  sed -e 's/^Types:.*/Types: deb-src/' "$main_list" | $SUDO tee "$src_list" >/dev/null
  $SUDO apt-get update -qq
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source -qq "faiss=$src_version" >/dev/null
src=$(find . -maxdepth 1 -type d -name 'faiss-*' | head -1)
[[ -n "$src" ]] || { echo "build_faiss_c: apt-get source faiss=$src_version unpacked nothing" >&2; exit 1; }

# The C API sources, without the GPU parts; compiled against Debian's installed C++ headers.
mapfile -t sources < <(cd "$src" && find c_api -name '*.cpp' -not -path 'c_api/gpu/*' | sort)
objs=()
for s in "${sources[@]}"; do
  o="obj/${s%.cpp}.o"
  mkdir -p "$(dirname "$o")"
  g++ -std=c++17 -O2 -fPIC -fopenmp -I"$src" -I/usr/include -c "$src/$s" -o "$o"
  objs+=("$o")
done
ar rcs libfaiss_c.a "${objs[@]}"

$SUDO install -D -m 644 libfaiss_c.a "$prefix/lib/libfaiss_c.a"
(cd "$src" && find c_api -name '*.h' -not -path 'c_api/gpu/*') | while read -r h; do
  [[ -f "/usr/include/faiss/$h" ]] || $SUDO install -D -m 644 "$src/$h" "$prefix/include/faiss/$h"
done
echo "$bin_version" | $SUDO install -D -m 644 /dev/stdin "$stamp"
echo "build_faiss_c: installed $prefix/lib/libfaiss_c.a (faiss $bin_version)"
