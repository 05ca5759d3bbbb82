#!/usr/bin/env bash
# Builds the locked image: docker/build.sh gpu|cpu [TAG]. The base image comes pinned by digest
# from docker/base-images.lock; a placeholder digest is refused.
set -euo pipefail
kind=${1:?usage: docker/build.sh gpu|cpu [tag]}
tag=${2:-iol:$kind}
here=$(cd "$(dirname "$0")" && pwd)
base=$(awk -v k="$kind" '$1 == k { print $2 }' "$here/base-images.lock")
[[ -n $base ]] || { echo "docker/build.sh: no '$kind' line in docker/base-images.lock" >&2; exit 2; }
if [[ $base =~ @sha256:0{64}$ ]]; then
  echo "docker/build.sh: the $kind base image is not pinned yet (placeholder digest in docker/base-images.lock; see its header)" >&2
  exit 2
fi
[[ $base =~ @sha256:[0-9a-f]{64}$ ]] || { echo "docker/build.sh: '$base' is not pinned by a sha256 digest" >&2; exit 2; }
file="$here/Dockerfile"
[[ $kind == cpu ]] && file="$here/Dockerfile.cpu"
docker build -f "$file" --build-arg BASE_IMAGE="$base" -t "$tag" "$here/.."
