#!/usr/bin/env bash
# Debian packages the test suite uses: ripser (reference for Vietoris–Rips persistence),
# chromium (headless browser for the dashboard test) and redis-server (the queue tests start a
# private one on loopback, on a free port, and stop it). Skips what is already installed.
set -euo pipefail
need=()
command -v ripser >/dev/null 2>&1 || need+=(ripser)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "lmdyn: cannot install ${need[*]} (no apt-get); the tests that need them will be skipped" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
