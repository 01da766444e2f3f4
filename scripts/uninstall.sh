#!/usr/bin/env bash
# Removes what scripts/install.sh (`make install`) put into a prefix, and nothing else:
# the files and links listed in PREFIX/lib/cmake/gopherdiscovery/install-manifest.txt,
# then the directories that install created, when they are empty.
#
# usage: bash scripts/uninstall.sh PREFIX      (`make uninstall PREFIX=...`)
set -euo pipefail

prefix=${1:?usage: bash scripts/uninstall.sh PREFIX}
manifest=$prefix/lib/cmake/gopherdiscovery/install-manifest.txt
if [ ! -f "$manifest" ]; then
  echo "uninstall.sh: $manifest not found: nothing installed by make install in $prefix" >&2
  exit 1
fi
prefix=$(cd "$prefix" && pwd)
mapfile -t entries < "$manifest"
for entry in "${entries[@]}"; do
  kind=${entry%% *} path=${entry#* }
  if [ "$kind" = f ] && { [ -f "$prefix/$path" ] || [ -L "$prefix/$path" ]; }; then
    rm -f "$prefix/$path"
  fi
done
# Deepest first; a directory that still holds something not ours stays.
for entry in "${entries[@]}"; do
  kind=${entry%% *} path=${entry#* }
  if [ "$kind" = d ]; then printf '%s\t%s\n' "$(tr -cd / <<< "$path" | wc -c)" "$path"; fi
done | sort -rn | while IFS=$'\t' read -r _ path; do
  if [ "$path" = . ]; then
    rmdir "$prefix" 2>/dev/null || true
  else
    rmdir "$prefix/$path" 2>/dev/null || true
  fi
done
echo "uninstalled gopherdiscovery from $prefix"
