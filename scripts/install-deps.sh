#!/usr/bin/env bash
# Installs the Debian packages blindcast needs, and only those that are missing.
# Usage: scripts/install-deps.sh build|test|bench
# Idempotent: when everything is present it only runs dpkg-query and exits.
set -euo pipefail

build_pkgs=(
  cmake ninja-build g++ pkg-config ccache make
  libicu-dev libidn2-dev libpsl-dev publicsuffix libsqlite3-dev libssl-dev
  libfmt-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libgtest-dev libasio-dev libc-ares-dev libcurl4-openssl-dev
  libcpp-httplib-dev libgmime-3.0-dev libpq-dev libmimalloc-dev
)
# Test peers and independent parsers/verifiers (run with Debian's /usr/bin/python3).
test_pkgs=(python3 python3-aiosmtpd python3-dkim python3-nacl clang postfix openssl dpkg-dev groff-base zsh dnsmasq-base python3-flufl.bounce chromium firefox-esr postgresql)
bench_pkgs=(python3 wrk libsisimai-perl)

want=("${build_pkgs[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
# The dashboard's browser tests drive chromium (playwright-core) and Firefox
# ESR (puppeteer-core, WebDriver BiDi), both from the
# npm registry: Debian's node and npm, unless a node with npm is already here.
if [[ "${1:-build}" != build ]] && ! command -v npm >/dev/null; then
  want+=(nodejs npm)
fi

# The browser drivers, pinned by tests/browser/package-lock.json, into
# tests/browser/node_modules (nothing when those versions are there already).
browser_driver() {
  [[ "${1:-build}" == build ]] && return 0
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
  # npm ci records what it installed in node_modules/.package-lock.json.
  cmp -s <(grep -v '"lockfileVersion"\|"requires"' "$dir/package-lock.json" | grep '"version"\|"node_modules/') \
         <(grep -v '"lockfileVersion"\|"requires"' "$dir/node_modules/.package-lock.json" 2>/dev/null |
           grep '"version"\|"node_modules/') && return 0
  echo "blindcast: installing the browser test driver (npm ci in tests/browser)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  browser_driver "${1:-build}"
  exit 0
fi

echo "blindcast: installing missing Debian packages: ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix is installed only for its test tools (smtp-sink, smtp-source); keep
# its daemon unconfigured so nothing listens or starts.
if [[ " ${missing[*]} " == *" postfix "* ]]; then
  echo "postfix postfix/main_mailer_type select No configuration" | "${sudo_cmd[@]}" debconf-set-selections
fi
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "blindcast: installed ${#missing[@]} package(s)"
browser_driver "${1:-build}"
