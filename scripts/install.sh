#!/usr/bin/env bash
# Installs the C/C++ library into a prefix (`make install PREFIX=/any/dir`):
#
#   PREFIX/lib/libgopherdiscovery.so.VERSION, .so.0 (the SONAME), .so
#   PREFIX/lib/libgopherdiscovery.a
#   PREFIX/include/gopherdiscovery.h, gopherdiscovery.hpp
#   PREFIX/lib/pkgconfig/gopherdiscovery.pc
#   PREFIX/lib/cmake/gopherdiscovery/ (find_package -> gopherdiscovery::gopherdiscovery)
#
# usage: bash scripts/install.sh PREFIX [BUILD_DIR]
# BUILD_DIR holds the built libraries (default target/release, which `make
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

for f in libgopherdiscovery.so libgopherdiscovery.a; do
  [ -f "$from/$f" ] || { echo "install.sh: $from/$f is missing: build first (cargo build --release)" >&2; exit 1; }
done
if command -v readelf >/dev/null && ! readelf -d "$from/libgopherdiscovery.so" | grep -q "SONAME.*\[$soname\]"; then
  echo "install.sh: $from/libgopherdiscovery.so has no SONAME $soname (see build.rs)" >&2
  exit 1
fi

mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
lib=$prefix/lib
install -d "$lib/pkgconfig" "$lib/cmake/gopherdiscovery" "$prefix/include"
install -m 755 "$from/libgopherdiscovery.so" "$lib/$shared"
ln -sfn "$shared" "$lib/$soname"
ln -sfn "$soname" "$lib/libgopherdiscovery.so"
install -m 644 "$from/libgopherdiscovery.a" "$lib/libgopherdiscovery.a"
install -m 644 include/gopherdiscovery.h bindings/cpp/gopherdiscovery.hpp "$prefix/include/"

# What a static link needs besides the archive (rustc --print native-static-libs, Linux).
libs_private="-lpthread -ldl -lm"
subst() {
  sed -e "s|@VERSION@|$version|g" -e "s|@SONAME@|$soname|g" -e "s|@SHARED_FILE@|$shared|g" \
      -e "s|@LIBS_PRIVATE@|$libs_private|g" "$1" > "$2"
  chmod 644 "$2"
}
subst cmake/gopherdiscovery.pc.in "$lib/pkgconfig/gopherdiscovery.pc"
subst cmake/gopherdiscovery-config.cmake.in "$lib/cmake/gopherdiscovery/gopherdiscovery-config.cmake"
subst cmake/gopherdiscovery-config-version.cmake.in "$lib/cmake/gopherdiscovery/gopherdiscovery-config-version.cmake"
echo "installed gopherdiscovery $version into $prefix"
