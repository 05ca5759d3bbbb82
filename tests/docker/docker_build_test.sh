#!/usr/bin/env bash
# Builds the CPU image and runs the tiny bench in it, where a Docker daemon is reachable and the
# base image is pinned (docker/base-images.lock) or imported locally (docker load of a saved
# debian image whose digest the lock names). Otherwise: skipped (77) with the reason.
set -uo pipefail
root=${1:?usage: docker_build_test.sh REPO_ROOT}
if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "SKIP: no Docker daemon reachable (docker info fails)"
  exit 77
fi
if grep -Eq '^cpu .*@sha256:0{64}$' "$root/docker/base-images.lock"; then
  echo "SKIP: the CPU base image digest is a placeholder in docker/base-images.lock (pin it: see the file's header)"
  exit 77
fi
set -e
"$root/docker/build.sh" cpu iol:cpu-test
out=$(mktemp -d)
cd "$out"
"$root/docker/run.sh" iol:cpu-test
grep -q '"image_digest":"' reports/results.jsonl
echo "docker: the CPU image ran make bench; its records carry the image digest"
