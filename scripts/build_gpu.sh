#!/usr/bin/env bash
# Builds iol and the GPU tests for one architecture (default sm_90a, the H100/H200) into
# build-gpu/, small enough to carry to the device machine.
set -euo pipefail
arch=${1:-90a}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DIOL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DIOL_FUZZ_TESTS=OFF >/dev/null
cmake --build build-gpu -j "$(nproc)" --target iol iol_gpu_tests
ls -la build-gpu/src/iol/cli/iol build-gpu/tests/iol_gpu_tests
