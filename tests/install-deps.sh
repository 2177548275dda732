#!/usr/bin/env bash
# Installs what palaver needs to build, run and test, from Debian 12's
# packages. Safe to run again. Uses sudo when not run as root.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config
  # palaverd's libraries (see README, "Dependencies")
  libcivetweb-dev civetweb liburcu-dev libjansson-dev libsystemd-dev libsqlite3-dev
  # tests: unit-test framework, SHA-1 for the handshake check, sanitizer runtimes
  libcmocka-dev libssl-dev
  # fuzzing (clang + libFuzzer runtime) and static analysis
  clang libclang-rt-14-dev clang-tidy cppcheck
  # browser tests: Debian's Chromium (driven by playwright-core from npm)
  chromium
  # service tests: systemd-analyze verify/security (and man, which verify runs)
  systemd man-db
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: everything is installed"
fi

# Node.js for the browser tests: Debian's, unless a node is already there.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: installing nodejs npm"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
# playwright-core (pinned by tests/browser/package-lock.json); it drives
# /usr/bin/chromium and downloads no browser.
(cd "$(dirname "$0")/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
