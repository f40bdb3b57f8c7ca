#!/usr/bin/env bash
# Node tools vam's development stack needs, installed from the npm registry under .venv/node:
# Azurite (the Azure Blob emulator; vam.devstack.azurite runs .venv/node/node_modules/.bin/azurite-blob),
# and hls.js, dashjs and tus-js-client for the player and upload pages.
# Needs node + npm (Debian's nodejs/npm packages, or any node >= 18). Idempotent: does nothing when
# the pinned version is already there.
set -euo pipefail
AZURITE_VERSION=3.35.0  # keep in step with vam.devstack.azurite.AZURITE_VERSION
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/.venv/node"
# the player and upload pages of `vam serve` (served as static files by vam.api.pages; no CDN)
HLSJS_VERSION=1.7.4
DASHJS_VERSION=5.2.1
TUS_JS_CLIENT_VERSION=4.3.1
version_of() { node -p "require('$prefix/node_modules/$1/package.json').version" 2>/dev/null || true; }
want=()
[ "$(version_of azurite)" = "$AZURITE_VERSION" ] || want+=("azurite@$AZURITE_VERSION")
[ "$(version_of hls.js)" = "$HLSJS_VERSION" ] || want+=("hls.js@$HLSJS_VERSION")
[ "$(version_of dashjs)" = "$DASHJS_VERSION" ] || want+=("dashjs@$DASHJS_VERSION")
[ "$(version_of tus-js-client)" = "$TUS_JS_CLIENT_VERSION" ] || want+=("tus-js-client@$TUS_JS_CLIENT_VERSION")
if [ ${#want[@]} -eq 0 ]; then exit 0; fi
if ! command -v npm >/dev/null; then
  echo "npm not found: install node and npm (e.g. apt-get install nodejs npm), then re-run make install" >&2
  exit 1
fi
echo "installing ${want[*]} under $prefix"
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "${want[@]}"
