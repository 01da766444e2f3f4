#!/usr/bin/env bash
# Builds the Python source distribution (`make sdist`): dist/gopherdiscovery-VERSION.tar.gz.
# It carries the extension crate (python/), the core crate and the vendored NNG
# (vendor/nng-sys), so `pip install dist/gopherdiscovery-VERSION.tar.gz` builds on any
# machine with Rust and cmake. Needs .venv (scripts/venv.sh: maturin). Prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/maturin ] || bash scripts/venv.sh
export PATH="$PWD/.venv/bin:$PATH"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' python/Cargo.toml | head -n 1)
out=target/sdist-build
rm -rf "$out"
mkdir -p "$out" dist
if ! maturin sdist --manifest-path python/Cargo.toml --out "$out" > "$out.log" 2>&1; then
  tail -n 40 "$out.log" >&2
  echo "sdist.sh: maturin sdist failed (full log: $out.log)" >&2
  exit 1
fi
sdist=dist/gopherdiscovery-$version.tar.gz
[ -f "$out/${sdist#dist/}" ] || { echo "sdist.sh: no ${sdist#dist/} in $out" >&2; ls "$out" >&2; exit 1; }
# What a build from the sdist cannot do without.
listing=$(tar tzf "$out/${sdist#dist/}")
for f in pyproject.toml LICENSE python/Cargo.toml python/Cargo.lock Cargo.toml src/lib.rs \
    vendor/nng-sys/Cargo.toml vendor/nng-sys/build.rs vendor/nng-sys/LICENSE \
    vendor/nng-sys/nng/CMakeLists.txt vendor/nng-sys/nng/LICENSE.txt vendor/nng-sys/nng/src/core/socket.c; do
  grep -qx "gopherdiscovery-$version/$f" <<< "$listing" ||
    { echo "sdist.sh: the sdist lacks $f" >&2; exit 1; }
done
mv "$out/${sdist#dist/}" "$sdist"
echo "$sdist"
