#!/usr/bin/env bash
# Installs the Debian packages Trove needs (PostgreSQL 15 with pg_cron and pgTAP, psql, Python venv, and
# Redis for the optional shared API cache and its tests; curl and wrk, the benchmarks' baselines; Chromium and
# its driver for the web app's browser tests).
# Idempotent: installs only what is missing, and runs `apt-get update` only when it has to install.
set -euo pipefail

packages=(postgresql-15 postgresql-15-cron postgresql-15-pgtap postgresql-client-15 python3-venv redis-server curl wrk
  chromium chromium-driver fonts-dejavu-core)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
