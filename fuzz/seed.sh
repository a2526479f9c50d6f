#!/usr/bin/env bash
# Seeds the decoder's fuzz corpus with the golden wire vectors.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/decode
for f in ../tests/vectors/*.hex; do
    name=$(basename "$f" .hex)
    case "$name" in signed-bytes-* | derived-*) continue ;; esac
    tr -d ' \n' < "$f" | xxd -r -p > "corpus/decode/$name"
done
ls corpus/decode | wc -l
