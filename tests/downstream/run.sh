#!/usr/bin/env bash
# Builds the downstream crate (tests/downstream, which depends on gopherdiscovery
# by path and has no [patch]) and runs its check: 900 clients started and dropped
# at once against a live server must leave no socket descriptor behind.
# Exits with the check's status. Build output goes to <repo>/target/downstream.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# A cmake installed by scripts/venv.sh is found after any system one.
export PATH="$PATH:$repo/.venv/bin"
export CARGO_TARGET_DIR="$repo/target/downstream"
# Not --locked: when the core's dependencies change, Cargo.lock here follows them
# (commit the update); a stale lock must not hide the check.
cargo build --release --manifest-path "$here/Cargo.toml"
exec "$CARGO_TARGET_DIR/release/gopherdiscovery-downstream" "$@"
