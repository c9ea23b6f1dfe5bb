#!/usr/bin/env bash
# Install what building and testing pg_trickle needs on Debian 12.
# Idempotent: when everything is installed it does no apt work and needs no root.
set -euo pipefail

# libipc-run-perl and perl (prove, Test::More) are for the TAP tests;
# gcc/make/libc6-dev are the part of build-essential PGXS actually uses.
PACKAGES=(postgresql-15 postgresql-server-dev-15 libipc-run-perl perl gcc make libc6-dev)

missing=()
for pkg in "${PACKAGES[@]}"; do
    # dpkg -s alone also succeeds for removed packages that left config files.
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed$'; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "setup.sh: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "setup.sh: must run as root to install: ${missing[*]} (and sudo is not available)" >&2
    exit 1
fi

"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
