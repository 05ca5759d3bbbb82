#!/usr/bin/env bash
# The English text corpus of the reference models (tests/fixtures/reference_models/README.md):
# the reStructuredText sources of the Python 3.11 documentation, as Debian packages them
# (python3.11-doc, pinned below), in a fixed file order, split by file into train and held-out
# text, with SHA-256 checksums. Deterministic: the same package version gives the same bytes.
#   scripts/make_corpus.sh [OUT_DIR]      (default: corpus/)
# Fetches the .deb through apt (apt-get download: no root, nothing installed) and unpacks it with
# dpkg-deb into a temporary directory. A pin that the mirror no longer carries fails here, naming
# it: update PACKAGE_VERSION and the checksums recorded in the fixtures' README together.
set -euo pipefail
PACKAGE=python3.11-doc
PACKAGE_VERSION=3.11.2-6+deb12u8   # Debian 12 (bookworm) main
out=${1:-corpus}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! (cd "$work" && apt-get download -q "$PACKAGE=$PACKAGE_VERSION" >/dev/null 2>"$work/apt.log"); then
  echo "make_corpus: apt-get download $PACKAGE=$PACKAGE_VERSION failed: $(grep -m1 -E '^E:' "$work/apt.log" || tail -1 "$work/apt.log")" >&2
  exit 1
fi
dpkg-deb -x "$work"/${PACKAGE}_*.deb "$work/root"
sources="$work/root/usr/share/doc/python3.11/html/_sources"
[[ -d $sources ]] || { echo "make_corpus: $PACKAGE $PACKAGE_VERSION has no html/_sources directory" >&2; exit 1; }

# Files in byte order of their paths (LC_ALL=C); every 20th file (index 0, 20, 40, ...) is held out.
# Each file: CRLF to LF, trailing whitespace stripped, then one blank line between files.
: > "$out/train.txt"
: > "$out/heldout.txt"
index=0
while IFS= read -r -d '' file; do
  target="$out/train.txt"
  (( index % 20 == 0 )) && target="$out/heldout.txt"
  sed -e 's/\r$//' -e 's/[[:space:]]*$//' "$file" >> "$target"
  printf '\n' >> "$target"
  index=$((index + 1))
done < <(cd "$sources" && find . -type f -name '*.txt' -print0 | LC_ALL=C sort -z | sed -z "s|^\./|$sources/|")

# The held-out sample the fixtures commit: its first 200,000 bytes, cut at a line end.
head -c 200000 "$out/heldout.txt" | sed '$d' > "$out/heldout-sample.txt"
(cd "$out" && sha256sum train.txt heldout.txt heldout-sample.txt > SHA256SUMS)
echo "make_corpus: $index files of $PACKAGE $PACKAGE_VERSION -> $out ($(wc -c < "$out/train.txt") train bytes, $(wc -c < "$out/heldout.txt") held out)" >&2
cat "$out/SHA256SUMS"
