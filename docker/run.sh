#!/usr/bin/env bash
# Runs `make bench` in the locked image with its digest in every record:
#   docker/run.sh iol:gpu [command...]   (results in ./reports)
set -euo pipefail
image=${1:?usage: docker/run.sh IMAGE [command...]}
shift
digest=$(docker image inspect --format '{{if .RepoDigests}}{{index .RepoDigests 0}}{{else}}{{.Id}}{{end}}' "$image")
gpus=()
docker image inspect --format '{{.Config.Env}}' "$image" | grep -q 'nvidia/cuda' && gpus=(--gpus all)
mkdir -p reports
exec docker run --rm "${gpus[@]}" -e IOL_IMAGE_DIGEST="$digest" -v "$PWD/reports:/opt/iol/reports" "$image" "$@"
