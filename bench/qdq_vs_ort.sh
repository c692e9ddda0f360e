#!/usr/bin/env bash
# Checks an ONNX QDQ export against ONNX Runtime: quantizes MODEL with RECIPE (`lowbit quantize`),
# evaluates the QDQ model with lowbit and, on the very same preprocessed inputs, with ONNX Runtime
# 1.30 (npm onnxruntime-node); fails unless the two top-1 agree within 0.1 point.
# Usage: bench/qdq_vs_ort.sh MODEL RECIPE.json [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
model="$1" recipe="$2" work="${3:-$(mktemp -d)}"
mkdir -p "$work"
if [ ! -d bench/ort/node_modules/onnxruntime-node ]; then
  (cd bench/ort && npm install --ignore-scripts --no-audit --no-fund >/dev/null)
fi
stem="$work/$(basename "$model" .onnx)_$(basename "$recipe" .json)"
build/bin/lowbit quantize "$model" --recipe "$recipe" -o "$stem" --threads 2 >"$stem.log"
[ -f "$stem.qdq.onnx" ] || { grep "QDQ" "$stem.log"; exit 1; }
ours=$(build/bin/lowbit eval "$stem.qdq.onnx" --exclude-calibration --threads 2 --dump-inputs "$work/inputs" | awk '/^top-1/ {print $2}')
peer=$(node bench/ort/ort_eval.mjs "$stem.qdq.onnx" "$work/inputs" 2 | awk '/^top-1/ {print $2}')
rm -rf "$work/inputs"
diff=$(awk -v a="$ours" -v b="$peer" 'BEGIN {d = a - b; if (d < 0) d = -d; printf "%.2f", d}')
echo "$(basename "$model") $(basename "$recipe"): lowbit top-1 $ours %, ONNX Runtime top-1 $peer %, difference $diff"
awk -v d="$diff" 'BEGIN {exit !(d <= 0.1)}'
