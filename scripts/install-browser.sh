#!/usr/bin/env bash
# Installs what the dashboard's browser tests (crates/server/tests/browser.rs) need: Debian's
# headless-capable Chromium and its WebDriver, /usr/bin/chromium and /usr/bin/chromedriver
# (and DejaVu fonts, so that screenshots have the same text on every machine).
# Idempotent: does nothing when both are there. Runs apt-get as root, or through sudo.
# To skip the browser tests instead (not in CI), set ETS_SKIP_BROWSER=1.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  echo "install-browser: chromium and chromedriver are installed"
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-browser: need root or sudo to run apt-get install chromium chromium-driver" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core
/usr/bin/chromium --version
/usr/bin/chromedriver --version
