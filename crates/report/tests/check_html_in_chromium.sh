#!/usr/bin/env bash
# Renders a report.html in headless Chromium and checks that every figure made it into the
# rendered page, then takes a full-page screenshot to look at.
#
# usage: check_html_in_chromium.sh REPORT_HTML SCREENSHOT_PNG [EXPECTED_FIGURES]
#
# Manual check (after `cargo test -p report --test report_output`):
#   bash crates/report/tests/check_html_in_chromium.sh \
#     target/tmp/report_chromium/report.html /tmp/report.png 11
# then open /tmp/report.png.
set -euo pipefail
html=$(realpath "$1")
shot=$2
expected=${3:-}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "chromium not installed (apt-get install chromium)" >&2
  exit 1
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --disable-sync --no-first-run --user-data-dir="$profile" --hide-scrollbars)

# 1. The DOM after layout: count inline SVG figures and their text.
dom=$(timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$html" 2>/dev/null)
count() { { grep -o "$1" <<<"$dom" || true; } | wc -l; }
svgs=$(count '<svg')
figures=$(count '<figure')
imgs=$(count '<img')
echo "rendered DOM: $figures figures, $svgs inline SVGs, $imgs images"
if [ -n "$expected" ] && [ "$figures" -ne "$expected" ]; then
  echo "FAIL: expected $expected figures, found $figures" >&2
  exit 1
fi
if [ "$((svgs + imgs))" -lt "$figures" ]; then
  echo "FAIL: a figure has neither inline SVG nor image" >&2
  exit 1
fi

# 2. The screenshot: tall enough for the whole report (SCREENSHOT_HEIGHT overrides).
timeout 120 "$browser" "${flags[@]}" --screenshot="$shot" --window-size=1400,"${SCREENSHOT_HEIGHT:-10000}" "file://$html" >/dev/null 2>&1
size=$(stat -c %s "$shot")
echo "screenshot: $shot ($size bytes)"
if [ "$size" -lt 50000 ]; then
  echo "FAIL: screenshot is suspiciously small (blank page?)" >&2
  exit 1
fi
echo "ok"
