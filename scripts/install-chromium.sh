#!/usr/bin/env bash
# Installs Debian's Chromium for the end-to-end browser test, where it can.
# Never fails: without Chromium the browser test skips and says why.
set -u
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium not installed (needs root and apt-get); the browser test will skip" >&2
  exit 0
fi
echo "installing Debian's chromium for the browser test..." >&2
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
  || echo "chromium could not be installed; the browser test will skip" >&2
exit 0
