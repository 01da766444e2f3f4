#!/usr/bin/env bash
# The packages, checked as their users get them (`make test` runs this after
# python/run-tests.sh, whose wheel it reuses; `bash tests/packaging/run.sh` alone works):
#   - the wheel: abi3 + manylinux2014 tags, `auditwheel show` says manylinux_2_17,
#     < 2 MB, stripped, carries LICENSE (python/run-tests.sh installs it with no
#     cargo or cmake on PATH and runs the Python suite against it);
#   - the sdist: carries LICENSE, the core and the vendored NNG; `pip install` of it in a
#     fresh virtualenv builds, imports and runs a server; without cmake it fails with
#     the one-line message of vendor/nng-sys/build.rs;
#   - the crates: `cargo package --workspace` (with its verify build) passes, each
#     .crate carries LICENSE and stays < 10 MB (a crate registry's limit);
#   - `make install PREFIX=...`: CLI, libraries, headers, pkg-config, CMake package;
#     the CLI and the shared library are stripped; `pkg-config --static` links a fully
#     static program; `make uninstall` leaves the prefix exactly as it was.
# Ends with "N passed, M failed"; exits non-zero on any failure. Work files and build
# caches are in target/pkg-test.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
[ -x .venv/bin/python ] || bash scripts/venv.sh
export PATH="$PATH:$root/.venv/bin"
work=$root/target/pkg-test
mkdir -p "$work"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
arch=$(uname -m)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "not ok - $1"; }
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
# seconds_since START: wall time since START ($EPOCHREALTIME), one decimal.
seconds_since() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }'; }
# no_symtab FILE: neither a symbol table nor debug info.
# (grep without -q in pipelines: an early exit would SIGPIPE the writer under pipefail.)
no_symtab() { ! readelf -S "$1" | grep -E ' \.(symtab|debug_info) ' > /dev/null; }

# ------------------------------------------------------------------ wheel
echo "# the wheel (make wheel)"
wheel=$(bash scripts/wheel.sh)
wheel_name=gopherdiscovery-$version-cp39-abi3-manylinux_2_17_$arch.manylinux2014_$arch.whl
check "make wheel gives dist/$wheel_name" test "$wheel" = "dist/$wheel_name" -a -f "dist/$wheel_name"
wheel_tags() {
  local tags
  tags=$(unzip -p "$wheel" "gopherdiscovery-$version.dist-info/WHEEL" | sed -n 's/^Tag: //p' | sort | tr '\n' ' ')
  [ "$tags" = "cp39-abi3-manylinux2014_$arch cp39-abi3-manylinux_2_17_$arch " ] ||
    { echo "  WHEEL tags: $tags" >&2; return 1; }
}
check "the wheel's WHEEL file says abi3 (cp39) and manylinux2014 = manylinux_2_17" wheel_tags
auditwheel_says() {
  .venv/bin/auditwheel show "$wheel" > "$work/auditwheel.out" 2>&1 || { cat "$work/auditwheel.out" >&2; return 1; }
  grep -q "consistent with the following platform tag:" "$work/auditwheel.out" &&
    grep -q "\"manylinux_2_17_$arch\"" "$work/auditwheel.out" ||
    { cat "$work/auditwheel.out" >&2; return 1; }
}
check "auditwheel show: manylinux_2_17_$arch" auditwheel_says
wheel_bytes=$(stat -c %s "$wheel")
check "the wheel is under 2 MB ($wheel_bytes bytes)" test "$wheel_bytes" -lt 2000000
wheel_contents() {
  rm -rf "$work/wheel" && mkdir -p "$work/wheel" && unzip -q "$wheel" -d "$work/wheel" || return 1
  cmp LICENSE "$work/wheel/gopherdiscovery-$version.dist-info/licenses/LICENSE" &&
    no_symtab "$work/wheel/gopherdiscovery/_gopherdiscovery.abi3.so" &&
    [ -f "$work/wheel/gopherdiscovery/py.typed" ] && [ -f "$work/wheel/gopherdiscovery/_gopherdiscovery.pyi" ]
}
check "the wheel carries LICENSE, the stub and py.typed; its extension is stripped" wheel_contents

# ------------------------------------------------------------------ sdist
echo "# the sdist (make sdist)"
sdist=$(bash scripts/sdist.sh)
check "make sdist gives dist/gopherdiscovery-$version.tar.gz" test "$sdist" = "dist/gopherdiscovery-$version.tar.gz"
sdist_license() { tar xzf "$sdist" -O "gopherdiscovery-$version/LICENSE" | cmp - LICENSE; }
check "the sdist carries LICENSE (and, scripts/sdist.sh checked, the core and vendor/nng-sys)" sdist_license

# A fresh virtualenv and pip, the way a user installs it (build isolation: pip fetches
# maturin). The cargo build is cached in $work/sdist-cargo for the next run.
sdist_venv() {
  rm -rf "$1" && "$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" -m venv "$1"
}
sdist_install() {
  local venv=$work/sdist-venv start
  sdist_venv "$venv" || return 1
  start=$EPOCHREALTIME
  CARGO_TARGET_DIR=$work/sdist-cargo "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "$sdist" > "$work/sdist-install.log" 2>&1 || { tail -n 40 "$work/sdist-install.log" >&2; return 1; }
  echo "  pip install of the sdist took $(seconds_since "$start") s"
  (cd "$work" && "$venv/bin/python" -c '
import gopherdiscovery
with gopherdiscovery.Server(survey="tcp://127.0.0.1:0", publish="tcp://127.0.0.1:0", snapshot="tcp://127.0.0.1:0") as s:
    print("  sdist build runs: server at", s.urls.survey)
')
}
check "pip install of the sdist in a fresh virtualenv builds; the package imports and serves" sdist_install

# Without cmake, the build stops with the one line of vendor/nng-sys/build.rs.
sdist_without_cmake() {
  local venv=$work/nocmake-venv
  sdist_venv "$venv" || return 1
  # A PATH with cargo and everything else, but no cmake.
  bash scripts/path-without.sh "$work/nocmake-bin" cmake || return 1
  if PATH=$work/nocmake-bin CARGO_TARGET_DIR=$work/sdist-cargo "$venv/bin/python" -m pip install \
      --disable-pip-version-check "$sdist" > "$work/nocmake.log" 2>&1; then
    echo "  pip install succeeded without cmake?" >&2
    return 1
  fi
  grep -q "building NNG needs cmake 3.15 or newer, and \`cmake\` was not found: install it (Debian/Ubuntu: apt-get install cmake" \
    "$work/nocmake.log" || { tail -n 40 "$work/nocmake.log" >&2; return 1; }
  ! grep -Eq "panicked at|stack backtrace" "$work/nocmake.log" || { echo "  a panic or backtrace" >&2; return 1; }
}
check "without cmake, pip install of the sdist says: building NNG needs cmake ... apt-get install cmake" sdist_without_cmake

# ------------------------------------------------------------------ crates
echo "# the crates (cargo package --workspace)"
crates() {
  cargo package --workspace --locked --allow-dirty > "$work/cargo-package.log" 2>&1 ||
    { tail -n 40 "$work/cargo-package.log" >&2; return 1; }
  local crate name bytes
  for name in "gopherdiscovery-$version" "gopherdiscovery-nng-sys-$(sed -n 's/^version = "\(.*\)"$/\1/p' vendor/nng-sys/Cargo.toml)"; do
    crate=target/package/$name.crate
    bytes=$(stat -c %s "$crate") || return 1
    echo "  $crate: $bytes bytes"
    [ "$bytes" -lt 10000000 ] || { echo "  $crate is over 10 MB" >&2; return 1; }
    tar tzf "$crate" | grep -x "$name/LICENSE" > /dev/null || { echo "  $crate has no LICENSE" >&2; return 1; }
  done
  tar tzf "$crate" | grep -x "$name/nng/LICENSE.txt" > /dev/null || { echo "  $crate has no nng/LICENSE.txt" >&2; return 1; }
}
check "cargo package --workspace: both crates package and build from their .crate; each has LICENSE, < 10 MB" crates

# ------------------------------------------------------------------ make install / uninstall
echo "# make install / make uninstall"
prefix=$work/prefix
rm -rf "$prefix"
# Something of someone else's in the prefix, which must survive.
mkdir -p "$prefix/lib/pkgconfig" "$prefix/share/other"
echo keep > "$prefix/lib/pkgconfig/other.pc"
listing() { (cd "$prefix" && find . -printf '%p %y %m\n' | sort); }
listing > "$work/prefix-before.txt"
install_test() {
  make --no-print-directory install PREFIX="$prefix" > "$work/install.log" 2>&1 ||
    { tail -n 40 "$work/install.log" >&2; return 1; }
  local f
  for f in bin/gopherdiscovery lib/libgopherdiscovery.so lib/libgopherdiscovery.so.0 "lib/libgopherdiscovery.so.$version" \
      lib/libgopherdiscovery.a include/gopherdiscovery.h include/gopherdiscovery.hpp lib/pkgconfig/gopherdiscovery.pc \
      lib/cmake/gopherdiscovery/gopherdiscovery-config.cmake; do
    [ -e "$prefix/$f" ] || { echo "  missing $prefix/$f" >&2; return 1; }
  done
  echo "  sizes: $(cd "$prefix" && stat -c '%n %s' bin/gopherdiscovery "lib/libgopherdiscovery.so.$version" lib/libgopherdiscovery.a | tr '\n' ';')"
  no_symtab "$prefix/bin/gopherdiscovery" && no_symtab "$prefix/lib/libgopherdiscovery.so.$version" ||
    { echo "  not stripped" >&2; return 1; }
  "$prefix/bin/gopherdiscovery" --version | grep "^gopherdiscovery $version\b" > /dev/null ||
    { echo "  bin/gopherdiscovery --version: $("$prefix/bin/gopherdiscovery" --version)" >&2; return 1; }
}
check "make install PREFIX=...: CLI, libraries, headers, pkg-config, CMake; CLI and .so stripped" install_test
static_test() {
  local flags
  flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --static --cflags --libs gopherdiscovery) || return 1
  # shellcheck disable=SC2086
  gcc -std=c99 -static tests/c/outside/outside.c -o "$work/outside_static" $flags > "$work/static.log" 2>&1 ||
    { cat "$work/static.log" >&2; return 1; }
  ! readelf -d "$work/outside_static" 2>/dev/null | grep NEEDED >&2 || { echo "  not static" >&2; return 1; }
  timeout 120 "$work/outside_static" | grep '^outside c ok' > /dev/null
}
check "cc -static with pkg-config --static --libs gopherdiscovery links the archive; the program runs" static_test
uninstall_test() {
  make --no-print-directory uninstall PREFIX="$prefix" > "$work/uninstall.log" 2>&1 ||
    { cat "$work/uninstall.log" >&2; return 1; }
  listing > "$work/prefix-after.txt"
  diff "$work/prefix-before.txt" "$work/prefix-after.txt" >&2
}
check "make uninstall leaves the prefix as it was (find listing before install = after uninstall)" uninstall_test

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
