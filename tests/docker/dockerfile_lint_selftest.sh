#!/usr/bin/env bash
# shellcheck disable=SC2016  # sed expressions, not shell
# The lint fails on each defect it claims to catch (a copy of docker/ mutated one way at a time).
set -uo pipefail
root=${1:?usage: dockerfile_lint_selftest.sh REPO_ROOT}
lint="$root/tests/docker/dockerfile_lint.sh"
status=0
try() {  # try DESCRIPTION FILE SED-EXPRESSION
  local tmp
  tmp=$(mktemp -d)
  cp -r "$root/docker" "$root/scripts" "$tmp/"
  sed -i "$3" "$tmp/docker/$2"
  if bash "$lint" "$tmp" >/dev/null 2>&1; then echo "FAIL: the lint passed with $1" >&2; status=1; fi
  rm -rf "$tmp"
}
try "an unpinned FROM" Dockerfile 's/^FROM \${BASE_IMAGE}$/FROM ubuntu:24.04/'
try "a tag without digest in the lock" base-images.lock 's/^cpu .*/cpu debian:12/'
try "a default differing from the lock" Dockerfile.cpu 's/^ARG BASE_IMAGE=.*/ARG BASE_IMAGE=debian:12@sha256:1111111111111111111111111111111111111111111111111111111111111111/'
try "a package installed by hand" Dockerfile 's/^COPY \. \.$/RUN apt-get install -y vim\nCOPY . ./'
try "no deps.sh" Dockerfile.cpu 's/RUN .\/scripts\/deps.sh/RUN true/'
try "another command" Dockerfile 's/^CMD .*/CMD ["bash"]/'
try "a missing COPY source" Dockerfile 's/^COPY scripts\/deps.sh/COPY scripts\/nope.sh/'
try "a RUN line that is not shell" Dockerfile.cpu 's/^RUN cmake/RUN if then cmake/'
try "no image digest variable" Dockerfile 's/IOL_IMAGE_DIGEST/IOL_SOMETHING/'
[[ $status -eq 0 ]] && echo "dockerfile-lint catches all 9 defects"
exit $status
