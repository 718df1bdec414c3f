#!/usr/bin/env bash
# Makes sure headless Chromium is installed, for `make test`: the /ws/demo
# page's browser test (adapters/ws/demo_browser_test.go) drives it with
# chromedp and fails, rather than skipping, when it is missing.
#   - /usr/bin/chromium (or CHROMIUM_PATH) runs already: nothing to do;
#   - missing: install Debian's chromium and chromium-driver (needs root and
#     apt-get; `apt-get update` runs once);
#   - otherwise: stop and say what to do.
#
# Set SKIP_CHROMIUM=1 to manage the browser yourself (then set CHROMIUM_PATH
# for the test, or have `chromium` on PATH).
set -euo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

log() { printf 'chromium: %s\n' "$*" >&2; }
die() { printf 'chromium: %s\n' "$*" >&2; exit 1; }

[ "${SKIP_CHROMIUM:-}" = 1 ] && { log "SKIP_CHROMIUM=1: not managing Chromium"; exit 0; }

works() { "$CHROMIUM" --version >/dev/null 2>&1; }

if [ -x "$CHROMIUM" ] && works; then exit 0; fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  die "$CHROMIUM not found, and this script can only install it as root with apt-get.
  Install it yourself (Debian/Ubuntu: sudo apt-get install chromium chromium-driver),
  or point CHROMIUM_PATH at a Chromium or Chrome binary."
fi

log "installing chromium and chromium-driver from Debian packages (a few minutes)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || die "apt-get update failed: is a Debian mirror reachable?"
apt-get install -y -qq chromium chromium-driver >/dev/null ||
  die "apt-get install chromium chromium-driver failed (run it by hand to see why)"

[ -x "$CHROMIUM" ] || die "installed chromium, yet $CHROMIUM is missing (set CHROMIUM_PATH)"
works || die "$CHROMIUM is installed but \`$CHROMIUM --version\` fails"
log "installed $("$CHROMIUM" --version 2>/dev/null)"
