#!/usr/bin/env bash
# Installs the official OpenAI Node SDK (tests/openai_sdk/package.json, pinned by its lockfile)
# into DIR/node_modules with `npm ci`, for the server's SDK integration test. Cached: does nothing
# when DIR/node_modules/openai matches the lockfile. Never fails: without node/npm or the
# registry it says so, and the test skips with that message — or fails, when the environment
# variable CI is set (tests/integration/server_sdk_test.cpp).
set -uo pipefail
src=${1:?usage: install_openai_sdk.sh SOURCE_DIR DIR}
dir=${2:?usage: install_openai_sdk.sh SOURCE_DIR DIR}
mkdir -p "$dir"
if [[ -f $dir/node_modules/openai/package.json ]] && cmp -s "$src/tests/openai_sdk/package-lock.json" "$dir/package-lock.json"; then
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "install_openai_sdk: node/npm not found; the OpenAI SDK test will be skipped (fail under CI)" >&2
  exit 0
fi
cp "$src/tests/openai_sdk/package.json" "$src/tests/openai_sdk/package-lock.json" "$dir/"
if ! (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --silent >/dev/null 2>&1); then
  echo "install_openai_sdk: npm ci failed; the OpenAI SDK test will be skipped (fail under CI)" >&2
  rm -rf "$dir/node_modules"
fi
exit 0
