#!/usr/bin/env bash
# Checks docker/Dockerfile (GPU) and docker/Dockerfile.cpu without a Docker daemon: base images
# pinned by digest and matching docker/base-images.lock, packages installed by scripts/deps.sh
# (the `make deps` list, nothing by hand), COPY sources present, the digest variable the records
# read, `make bench` as the command, and every RUN line valid shell (bash -n, shellcheck when
# installed). hadolint is not packaged for Debian 12, hence this script.
set -uo pipefail
root=${1:?usage: dockerfile_lint.sh REPO_ROOT}
status=0
fail() { echo "dockerfile-lint: $*" >&2; status=1; }
lock="$root/docker/base-images.lock"
[[ -f $lock ]] || fail "docker/base-images.lock is missing"
for kind in gpu cpu; do
  file="$root/docker/Dockerfile"
  [[ $kind == cpu ]] && file="$root/docker/Dockerfile.cpu"
  name=${file#"$root/"}
  [[ -f $file ]] || { fail "$name is missing"; continue; }
  pinned=$(awk -v k="$kind" '$1 == k { print $2 }' "$lock")
  [[ $pinned =~ ^[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$ ]] || fail "base-images.lock: '$kind' is not 'name:tag@sha256:<64 hex>' ($pinned)"
  default=$(sed -n 's/^ARG BASE_IMAGE=//p' "$file" | head -1)
  [[ $default == "$pinned" ]] || fail "$name: ARG BASE_IMAGE=$default differs from base-images.lock ($pinned)"
  grep -Eq '^FROM \$\{BASE_IMAGE\}$' "$file" || fail "$name: FROM must be \${BASE_IMAGE} (the pinned digest)"
  if grep -E '^FROM ' "$file" | grep -vq 'BASE_IMAGE'; then fail "$name: a FROM line bypasses BASE_IMAGE"; fi
  grep -q 'RUN ./scripts/deps.sh' "$file" || fail "$name: packages must come from scripts/deps.sh (make deps)"
  if grep -E '^RUN' "$file" | grep -Eq 'apt-get install|pip install|npm install|curl |wget '; then
    fail "$name: installs something outside scripts/deps.sh"
  fi
  grep -q 'IOL_IMAGE_DIGEST' "$file" || fail "$name: does not set IOL_IMAGE_DIGEST (environment.image_digest of the records)"
  grep -q '^CMD \["make", "bench"\]$' "$file" || fail "$name: the default command must be make bench"
  while read -r src; do
    [[ -e "$root/$src" ]] || fail "$name: COPY source '$src' does not exist"
  done < <(awk '/^COPY / { for (i = 2; i < NF; ++i) print $i }' "$file")
  # RUN lines (with continuations) as shell.
  script=$(mktemp)
  awk '/^RUN /{ sub(/^RUN /, ""); run = 1 } run { print; if ($0 !~ /\\$/) { run = 0; print "" } }' "$file" > "$script"
  [[ -s $script ]] || fail "$name: no RUN line"
  bash -n "$script" || fail "$name: a RUN line is not valid shell"
  if command -v shellcheck >/dev/null; then
    shellcheck -s bash -e SC2016 "$script" >&2 || fail "$name: shellcheck found problems in a RUN line"
  fi
  rm -f "$script"
done
if command -v shellcheck >/dev/null; then
  shellcheck "$root/docker/build.sh" "$root/docker/run.sh" >&2 || fail "docker/*.sh: shellcheck found problems"
else
  echo "dockerfile-lint: shellcheck not installed: RUN lines checked with bash -n only" >&2
fi
[[ $status -eq 0 ]] && echo "dockerfile-lint: docker/Dockerfile and docker/Dockerfile.cpu pass"
exit $status
