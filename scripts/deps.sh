#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the build needs; does nothing when all are present.
# Idempotent: safe to run on every `make`. Uses sudo only when not root.
#   scripts/deps.sh          what building and `make bench` need
#   scripts/deps.sh --test   also what only tests need (`make test`): a headless browser for the
#                            HTML report's rendering test
set -euo pipefail

packages=(
  build-essential cmake git pkg-config
  nlohmann-json3-dev   # config.json, safetensors headers, results (header-only)
  libcli11-dev         # command line (header-only)
  libfmt-dev           # formatting (used header-only: no .so version skew between distros)
  libpcre2-dev         # tokenizer pre-tokenizer regexes (Unicode classes)
  libgtest-dev         # unit and integration tests (static)
  libbenchmark-dev     # micro-benchmarks
  clang libclang-rt-dev  # libFuzzer for the parser fuzz targets
  libyaml-cpp-dev      # bench scenario files (linked statically: sonames differ between Debian 12 and Ubuntu 24.04)
  libutf8proc-dev      # Unicode NFC normalization for tokenizers (linked statically)
  python3              # the CLI fuzzer (tests/fuzz/cli_fuzz.py) and the baseline's stdlib tests
  libboost-dev         # Boost.Asio/Beast for the HTTP server and the HTTP bench client (header-only)
)
if [[ ${1:-} == --test ]]; then
  packages+=(
    chromium             # tests/report/html_chromium_test.sh: the HTML report in headless Chromium
    shellcheck           # tests/docker/dockerfile_lint.sh: RUN lines and docker/*.sh
  )
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
