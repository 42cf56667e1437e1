#!/usr/bin/env bash
# Installs the Debian packages the tests need (Chromium for the browser tests, nginx for the
# hosting snippet's test, R metafor/lme4 for the reference checks) when they are missing. As root
# it installs them; otherwise it says exactly what to run, and fails, because the tests would fail
# without them.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: $*"
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} (apt-get, --no-install-recommends)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "missing system packages: ${missing[*]}" >&2
echo "install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
exit 1
