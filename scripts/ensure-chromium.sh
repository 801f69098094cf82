#!/usr/bin/env bash
# Make sure a headless browser is available for the HTML report tests: install Debian's chromium if needed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (headless browser for the report tests) with apt-get"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  command -v chromium >/dev/null 2>&1 && echo "chromium is installed" && exit 0
  echo "error: apt-get installed chromium but no 'chromium' command is on PATH" >&2
  exit 1
fi
echo "error: no chromium; install it (Debian: sudo apt-get install -y chromium)" >&2
exit 1
