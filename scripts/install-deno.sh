#!/usr/bin/env bash
# Installs Deno (the runtime of Supabase Edge Functions) from the npm registry into .local/deno, for running
# supabase/functions/ locally and in the tests. Idempotent: nothing to do when the pinned version is there.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.9.6
prefix=.local/deno
deno="$prefix/node_modules/.bin/deno"
# The functions' own dependencies (npm:postgres for the webhook inbox) are fetched now, into the cache the
# tests run them with, so nothing is downloaded while a test waits.
cache_functions() {
    DENO_DIR=.local/deno-cache "$deno" cache --quiet supabase/functions/*/index.ts
}
if [[ -x "$deno" ]] && [[ "$("$deno" --version | head -1)" == "deno $version"* ]]; then
    cache_functions
    exit 0
fi
if ! command -v npm >/dev/null; then
    [ "$(id -u)" -ne 0 ] && sudo=sudo || sudo=
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
echo "Installing Deno $version (npm) into $prefix"
mkdir -p "$prefix"
npm install --silent --no-audit --no-fund --prefix "$prefix" "deno@$version" >/dev/null
"$deno" --version | head -1
cache_functions
