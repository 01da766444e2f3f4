#!/usr/bin/env bash
# Regenerates include/gopherdiscovery.h from src/ffi with cbindgen (`make header`).
#
#   bash scripts/header.sh            write include/gopherdiscovery.h
#   bash scripts/header.sh --check    exit 1 with the diff when the checked-in header is stale
#   bash scripts/header.sh --install  only make sure cbindgen is in .tools/bin
#
# cbindgen is pinned and installed into the ignored folder .tools/ (compiled once
# per checkout, about 2 minutes; nothing is cached outside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."

CBINDGEN_VERSION=0.29.4
bin=.tools/bin/cbindgen

have() { [ -x "$1" ] && [ "$("$1" --version 2>/dev/null)" = "cbindgen $CBINDGEN_VERSION" ]; }

install_cbindgen() {
  mkdir -p .tools/bin
  # One installer at a time (the C tests and `make header` may overlap).
  exec 9>.tools/.lock
  flock 9
  have "$bin" && return 0
  echo "header.sh: installing cbindgen $CBINDGEN_VERSION into .tools (once)" >&2
  cargo install --quiet --locked "cbindgen@$CBINDGEN_VERSION" --root .tools
  have "$bin" || { echo "header.sh: cbindgen $CBINDGEN_VERSION did not install" >&2; exit 1; }
}

generate() {
  "$bin" --quiet --config cbindgen.toml --crate gopherdiscovery --output "$1"
}

case "${1:-}" in
  --install)
    install_cbindgen
    ;;
  --check)
    install_cbindgen
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    generate "$tmp/gopherdiscovery.h"
    if ! diff -u include/gopherdiscovery.h "$tmp/gopherdiscovery.h"; then
      echo "header.sh: include/gopherdiscovery.h is stale: run 'make header' and commit it" >&2
      exit 1
    fi
    ;;
  "")
    install_cbindgen
    generate include/gopherdiscovery.h
    echo "wrote include/gopherdiscovery.h"
    ;;
  *)
    echo "usage: bash scripts/header.sh [--check|--install]" >&2
    exit 2
    ;;
esac
