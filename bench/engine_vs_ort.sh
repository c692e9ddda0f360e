#!/usr/bin/env bash
# lowbit's executor beside ONNX Runtime 1.30 (npm onnxruntime-node), same machine, same run:
# images/s of the float32 models at batch 1 and 32, 1 and 2 threads, and their ratio.
# Usage: bench/engine_vs_ort.sh [SECONDS per measurement, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-3}"
if [ ! -d bench/ort/node_modules/onnxruntime-node ]; then
  (cd bench/ort && npm install --ignore-scripts --no-audit --no-fund >/dev/null)
fi
models=(../shared/data/models/mobilenet_v1_0.75_224.onnx ../shared/data/models/resnet56_cifar10.onnx)
echo "| model | batch | threads | lowbit images/s | ONNX Runtime images/s | lowbit / ORT |"
echo "|---|---|---|---|---|---|"
for m in "${models[@]}"; do
  for batch in 1 32; do
    for threads in 1 2; do
      ours=$(build/bin/lowbit bench "$m" --batch "$batch" --threads "$threads" --seconds "$seconds" | awk '{print $2}')
      peer=$(node bench/ort/ort_bench.mjs "$m" "$batch" "$threads" "$seconds" | awk '{print $2}')
      ratio=$(awk -v a="$ours" -v b="$peer" 'BEGIN {printf "%.2f", a / b}')
      echo "| $(basename "$m" .onnx) | $batch | $threads | $ours | $peer | $ratio |"
    done
  done
done
