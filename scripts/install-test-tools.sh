#!/usr/bin/env bash
# What the tests need beside Chromium: a D-Bus session daemon and GNOME Keyring, on which the
# secrets tests run a real system keyring (tests/conftest.py, keyring_session). Quiet and fast
# when both are there.
set -euo pipefail
missing=()
command -v dbus-daemon >/dev/null 2>&1 || missing+=(dbus-daemon)
command -v gnome-keyring-daemon >/dev/null 2>&1 || missing+=(gnome-keyring)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "Installing ${missing[*]} for the secrets tests..."
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
