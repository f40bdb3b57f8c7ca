#!/usr/bin/env bash
# Node tools vam's development stack needs, installed from the npm registry under .venv/node:
# Azurite (the Azure Blob emulator; vam.devstack.azurite runs .venv/node/node_modules/.bin/azurite-blob).
# Needs node + npm (Debian's nodejs/npm packages, or any node >= 18). Idempotent: does nothing when
# the pinned version is already there.
set -euo pipefail
AZURITE_VERSION=3.35.0  # keep in step with vam.devstack.azurite.AZURITE_VERSION
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/.venv/node"
installed="$(node -p "require('$prefix/node_modules/azurite/package.json').version" 2>/dev/null || true)"
if [ "$installed" = "$AZURITE_VERSION" ]; then exit 0; fi
if ! command -v npm >/dev/null; then
  echo "npm not found: install node and npm (e.g. apt-get install nodejs npm), then re-run make install" >&2
  exit 1
fi
echo "installing azurite@$AZURITE_VERSION under $prefix"
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
