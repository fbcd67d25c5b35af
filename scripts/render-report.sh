#!/usr/bin/env bash
# Renders a `dispatcher report` page in headless Chromium: prints the DOM after the page's
# script ran (its <body data-rendered="N"> counts the timelines drawn) and, with a second
# argument, saves a screenshot there. Usage: scripts/render-report.sh report.html [shot.png]
set -euo pipefail
page=$(realpath "$1")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$profile")
if [ $# -ge 2 ]; then
    chromium "${flags[@]}" --window-size=1000,1400 --screenshot="$(realpath -m "$2")" "file://$page" 2>/dev/null
fi
chromium "${flags[@]}" --dump-dom "file://$page" 2>/dev/null
