#!/usr/bin/env bash
# Installs the C/C++ library and the CLI into a prefix (`make install PREFIX=/any/dir`):
#
#   PREFIX/bin/gopherdiscovery (the CLI)
#   PREFIX/lib/libgopherdiscovery.so.VERSION, .so.0 (the SONAME), .so
#   PREFIX/lib/libgopherdiscovery.a
#   PREFIX/include/gopherdiscovery.h, gopherdiscovery.hpp
#   PREFIX/lib/pkgconfig/gopherdiscovery.pc
#   PREFIX/lib/cmake/gopherdiscovery/ (find_package -> gopherdiscovery::gopherdiscovery)
#
# The installed binaries are stripped (the archive keeps its symbols, only debug info
# goes). Every file and every directory it creates is listed in
# PREFIX/lib/cmake/gopherdiscovery/install-manifest.txt, which scripts/uninstall.sh
# (`make uninstall`) reads to remove exactly those.
#
# usage: bash scripts/install.sh PREFIX [BUILD_DIR]
# BUILD_DIR holds the built libraries and CLI (default target/release, which `make
# install` builds first; the C tests pass target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${1:?usage: bash scripts/install.sh PREFIX [BUILD_DIR]}
from=${2:-target/release}
# Must match ABI_MAJOR in build.rs (the SONAME).
abi_major=0
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
soname=libgopherdiscovery.so.$abi_major
shared=libgopherdiscovery.so.$version

for f in libgopherdiscovery.so libgopherdiscovery.a gopherdiscovery; do
  [ -f "$from/$f" ] || { echo "install.sh: $from/$f is missing: build first (cargo build --release)" >&2; exit 1; }
done
if command -v readelf >/dev/null && ! readelf -d "$from/libgopherdiscovery.so" | grep -q "SONAME.*\[$soname\]"; then
  echo "install.sh: $from/libgopherdiscovery.so has no SONAME $soname (see build.rs)" >&2
  exit 1
fi

strip=${STRIP:-strip}
command -v "$strip" > /dev/null || { echo "install.sh: $strip (binutils) is missing" >&2; exit 1; }

# The manifest: "d DIR" for each directory created here, "f FILE" for each file or link
# (relative to the prefix); one already there (an earlier install) is kept.
manifest_rel=lib/cmake/gopherdiscovery/install-manifest.txt
declare -A listed=()
entries=()
record() {
  [ -n "${listed[$1 $2]:-}" ] && return
  listed[$1 $2]=1
  entries+=("$1 $2")
}
[ -d "$prefix" ] || record d .
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
if [ -f "$prefix/$manifest_rel" ]; then
  while read -r kind path; do record "$kind" "$path"; done < "$prefix/$manifest_rel"
fi
dir() {
  local d=$1 parent=${1%/*}
  [ "$parent" != "$d" ] && dir "$parent"
  [ -d "$prefix/$d" ] && return
  mkdir "$prefix/$d"
  record d "$d"
}
# put MODE SOURCE DEST: one file; put_stripped STRIP_OPTION MODE SOURCE DEST: stripped.
put() {
  install -m "$1" "$2" "$prefix/$3"
  record f "$3"
}
put_stripped() {
  local how=$1
  shift
  put "$@"
  "$strip" "$how" "$prefix/$3"
}
link() {
  ln -sfn "$1" "$prefix/$2"
  record f "$2"
}

for d in bin include lib/pkgconfig lib/cmake/gopherdiscovery; do dir "$d"; done
put_stripped --strip-all 755 "$from/gopherdiscovery" bin/gopherdiscovery
put_stripped --strip-unneeded 755 "$from/libgopherdiscovery.so" "lib/$shared"
link "$shared" "lib/$soname"
link "$soname" lib/libgopherdiscovery.so
put_stripped --strip-debug 644 "$from/libgopherdiscovery.a" lib/libgopherdiscovery.a
put 644 include/gopherdiscovery.h include/gopherdiscovery.h
put 644 bindings/cpp/gopherdiscovery.hpp include/gopherdiscovery.hpp

# What a static link needs besides the archive (rustc --print native-static-libs, Linux).
libs_private="-lpthread -ldl -lm"
subst() {
  sed -e "s|@VERSION@|$version|g" -e "s|@SONAME@|$soname|g" -e "s|@SHARED_FILE@|$shared|g" \
      -e "s|@LIBS_PRIVATE@|$libs_private|g" "$1" > "$prefix/$2"
  chmod 644 "$prefix/$2"
  record f "$2"
}
subst cmake/gopherdiscovery.pc.in lib/pkgconfig/gopherdiscovery.pc
subst cmake/gopherdiscovery-config.cmake.in lib/cmake/gopherdiscovery/gopherdiscovery-config.cmake
subst cmake/gopherdiscovery-config-version.cmake.in lib/cmake/gopherdiscovery/gopherdiscovery-config-version.cmake
record f "$manifest_rel"
printf '%s\n' "${entries[@]}" > "$prefix/$manifest_rel"
chmod 644 "$prefix/$manifest_rel"
echo "installed gopherdiscovery $version into $prefix"
