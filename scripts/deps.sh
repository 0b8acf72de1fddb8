#!/usr/bin/env bash
# Installs the Debian 12 packages agenthost needs to build, run and test, if any are
# missing. Needs root (or sudo) only when something must be installed.
set -euo pipefail

packages=(
  cmake make gcc pkg-config            # build
  libwebsockets-dev libwebsockets-evlib-ev libev-dev   # HTTP/WS/SSE + event loop
  libjansson-dev libsqlite3-dev libseccomp-dev libssl-dev
  python3 python3-websockets python3-jsonschema curl   # test clients
  bubblewrap util-linux                # benchmark peers (bwrap, unshare)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
