#!/usr/bin/env bash
# Makes DIR a directory of links to every command on PATH except the given ones
# (shell patterns), so that PATH=DIR shows a machine without them: no Rust toolchain,
# no cmake. Used by python/run-tests.sh and tests/packaging/run.sh.
#
# usage: bash scripts/path-without.sh DIR PATTERN...   e.g. 'cargo*' cmake
set -euo pipefail
dir=${1:?usage: bash scripts/path-without.sh DIR PATTERN...}
shift
rm -rf "$dir"
mkdir -p "$dir"
IFS=: read -r -a path_dirs <<< "$PATH"
for d in "${path_dirs[@]}"; do
  [ -d "$d" ] || continue
  for cmd in "$d"/*; do
    name=${cmd##*/}
    [ -x "$cmd" ] && [ ! -d "$cmd" ] && [ ! -e "$dir/$name" ] || continue
    skip=0
    for pattern in "$@"; do
      # shellcheck disable=SC2254
      case $name in $pattern) skip=1 ;; esac
    done
    [ $skip = 1 ] || ln -s "$cmd" "$dir/$name"
  done
done
