#!/usr/bin/env bash
# Installs what palaver needs to build, run and test, from Debian 12's
# packages. Safe to run again. Uses sudo when not run as root.
set -euo pipefail

packages=(
  # toolchain (dpkg-dev, in build-essential, unpacks the CivetWeb source)
  build-essential cmake pkg-config patch
  # the .deb: dpkg-shlibdeps (dpkg-dev, in build-essential) and file, which CPack uses to find ELF files
  file
  # palaverd's libraries (see docs/design.md, "Dependencies")
  liburcu-dev libjansson-dev libsystemd-dev libsqlite3-dev libicu-dev libsodium-dev libmagic-dev
  # tests: unit-test framework, SHA-1 for the handshake check, sanitizer runtimes
  libcmocka-dev libssl-dev
  # fuzzing (clang + libFuzzer runtime) and static analysis
  clang libclang-rt-14-dev clang-tidy clang-format-14 cppcheck
  # browser tests: Debian's Chromium (driven by playwright-core from npm);
  # certutil (libnss3-tools) puts the TLS tests' CA into its trust store
  chromium libnss3-tools
  # the TLS terminator in front of palaverd (docs/tls.md), run by the TLS tests
  haproxy
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

# CivetWeb: Debian 12's own source package, unpacked where CMake looks for
# it (cmake/PalaverCivetWeb.cmake); palaver's patch is applied at build
# time. apt needs the deb-src entries of the existing Debian sources.
civetweb_root=/usr/local/src/palaver
if [ ! -f "$civetweb_root/civetweb-1.15+dfsg/src/civetweb.c" ]; then
  echo "install-deps: fetching Debian's civetweb source package"
  if [ -f /etc/apt/sources.list.d/debian.sources ] &&
     ! grep -q '^Types:.*deb-src' /etc/apt/sources.list.d/debian.sources; then
    as_root sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
  elif [ -f /etc/apt/sources.list ] && ! grep -q '^deb-src ' /etc/apt/sources.list; then
    sed -n 's/^deb \(.*\)/deb-src \1/p' /etc/apt/sources.list | as_root tee -a /etc/apt/sources.list >/dev/null
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root mkdir -p "$civetweb_root"
  (cd "$civetweb_root" && as_root apt-get source -qq civetweb 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  [ -f "$civetweb_root/civetweb-1.15+dfsg/src/civetweb.c" ] || {
    echo "install-deps: apt-get source civetweb did not unpack civetweb-1.15+dfsg" >&2; exit 1; }
fi

# Node.js for the browser tests: Debian's, unless a node is already there.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: installing nodejs npm"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
# playwright-core (pinned by tests/browser/package-lock.json); it drives
# /usr/bin/chromium and downloads no browser.
(cd "$(dirname "$0")/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
