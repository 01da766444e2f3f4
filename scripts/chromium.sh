#!/usr/bin/env bash
# Makes sure a headless browser exists for the status-page test (Debian's chromium).
# As root with apt-get, installs it when missing; otherwise says why the test will skip.
set -euo pipefail
for b in chromium chromium-browser google-chrome; do
  command -v "$b" >/dev/null && exit 0
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "chromium.sh: installing Debian's chromium for the status-page test" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium.sh: no chromium and no apt-get as root: the status-page test will skip" >&2
fi
