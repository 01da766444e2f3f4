#!/usr/bin/env bash
# Builds the Python wheel users install (`make wheel`):
#   dist/gopherdiscovery-VERSION-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
# abi3 (one wheel for CPython >= 3.9), manylinux2014 (glibc >= 2.17: the link runs
# under zig cc against an old glibc, and NNG's cmake build uses it too), stripped.
# Needs .venv (scripts/venv.sh: maturin, ziglang). The Rust build is cached in
# python/target, so a second run with no change takes seconds. Prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/maturin ] || bash scripts/venv.sh
export PATH="$PWD/.venv/bin:$PATH"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' python/Cargo.toml | head -n 1)
# zig's and cargo-zigbuild's caches (glibc stubs, compiler-rt) stay in target/ too.
export ZIG_GLOBAL_CACHE_DIR=$PWD/target/zig-cache XDG_CACHE_HOME=$PWD/target/xdg-cache
out=target/wheel-build
rm -rf "$out"
mkdir -p "$out" dist
# Quiet unless it fails: the cargo output of a clean build is long.
if ! maturin build --manifest-path python/Cargo.toml --release --strip --zig \
    --compatibility manylinux2014 --out "$out" > "$out.log" 2>&1; then
  tail -n 40 "$out.log" >&2
  echo "wheel.sh: maturin build failed (full log: $out.log)" >&2
  exit 1
fi
built=("$out"/gopherdiscovery-"$version"-cp39-abi3-*.whl)
[ ${#built[@]} = 1 ] && [ -f "${built[0]}" ] || { echo "wheel.sh: no abi3 wheel in $out" >&2; ls "$out" >&2; exit 1; }
# maturin names the tags manylinux2014_x86_64.manylinux_2_17_x86_64; pip and
# auditwheel say manylinux_2_17 first. The set of tags (and the WHEEL file) is the same.
arch=$(uname -m)
wheel=dist/gopherdiscovery-$version-cp39-abi3-manylinux_2_17_$arch.manylinux2014_$arch.whl
rm -f dist/gopherdiscovery-*.whl
mv "${built[0]}" "$wheel"
echo "$wheel"
