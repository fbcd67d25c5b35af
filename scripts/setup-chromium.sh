#!/usr/bin/env bash
# Debian's Chromium, for the test that renders `dispatcher report`'s page headless. Installed
# once (as root, from Debian's packages) when it is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "setup-chromium: chromium is missing; install Debian's package: sudo apt-get install chromium" >&2
    exit 1
fi
echo "setup-chromium: installing Debian's chromium" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
