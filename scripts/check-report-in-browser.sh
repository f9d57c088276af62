#!/usr/bin/env bash
# Loads a report page in headless Chromium (file URL, no network) and checks
# that it renders and that every chart image loads. Installs Debian's
# chromium when it is missing.
#
#   bash scripts/check-report-in-browser.sh target-reports/index.html
set -euo pipefail

page="$(realpath "${1:?usage: check-report-in-browser.sh INDEX.html}")"
browser=""
for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null 2>&1; then browser="$candidate"; break; fi
done
if [ -z "$browser" ]; then
    echo "installing chromium" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    ($sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium) >/dev/null
    browser=chromium
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"; rm -f "$probe"' EXIT
# A copy of the page beside it (so relative links resolve) that records, once
# loaded, how many images it has and which failed to load.
probe="$(dirname "$page")/.browser-check.html"
sed 's|</body>|<script>addEventListener("load", () => { const imgs = [...document.images]; document.body.dataset.images = imgs.length; document.body.dataset.broken = imgs.filter(i => !i.complete \|\| i.naturalWidth === 0).map(i => i.getAttribute("src")).join(" "); });</script></body>|' "$page" > "$probe"
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$work/profile" --virtual-time-budget=10000)
dom="$("$browser" "${flags[@]}" --dump-dom "file://$probe" 2>/dev/null)"
images="$(grep -o 'data-images="[0-9]*"' <<<"$dom" | grep -o '[0-9]*' || true)"
broken="$(grep -o 'data-broken="[^"]*"' <<<"$dom" | sed 's/data-broken="\(.*\)"/\1/' || true)"
"$browser" "${flags[@]}" --window-size=1400,2400 --screenshot="$work/page.png" "file://$page" >/dev/null 2>&1
# SCREENSHOT=path keeps the picture, for a look at the page.
if [ -n "${SCREENSHOT:-}" ]; then cp "$work/page.png" "$SCREENSHOT"; fi
size=$(stat -c %s "$work/page.png" 2>/dev/null || echo 0)
if [ -z "$images" ] || [ "$images" -eq 0 ]; then
    echo "browser check: the page did not render any image" >&2; exit 1
fi
if [ -n "$broken" ]; then
    echo "browser check: images that did not load: $broken" >&2; exit 1
fi
if [ "$size" -lt 30000 ]; then
    echo "browser check: the screenshot is blank or nearly ($size bytes)" >&2; exit 1
fi
echo "browser check: $images images loaded, screenshot $size bytes"
