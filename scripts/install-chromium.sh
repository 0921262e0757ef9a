#!/usr/bin/env bash
# Install Debian's chromium when no Chromium/Chrome is present. Quiet and fast when one is.
set -euo pipefail
for candidate in /usr/lib/chromium/chromium chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null 2>&1; then exit 0; fi
done
echo "Installing Debian chromium (no Chromium or Chrome found)..."
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium >/dev/null
echo "Installed $(/usr/lib/chromium/chromium --version)"
