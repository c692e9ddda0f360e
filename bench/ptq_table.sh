#!/usr/bin/env bash
# Top-1 of a model under integer and minifloat formats at several widths, round-to-nearest and
# (optionally) with PTQ passes: the table in docs/ptq-results.md.
# Usage: bench/ptq_table.sh MODEL [PASSES...]   PASSES: rtn gptq adaround cle_bc (default: rtn)
# Weights per channel (symmetric, min-max), activations per tensor (percentile 99.99; asymmetric
# for integers), calibration and evaluation data from the model card.
set -euo pipefail
cd "$(dirname "$0")/.."
model="$1"; shift
passes=("${@:-rtn}")
# width pairs: W A
pairs=("8 8" "6 6" "4 8" "4 4" "3 8")
declare -A minifloats=([8]="e4m3 e4m3:specials=none e5m2 e3m4" [6]="e2m3 e3m2 e3m2:specials=none" [4]="e2m1 e3m0 e1m2" [3]="e1m1 e2m0")
work=$(mktemp -d)
recipe() {  # W_FORMAT A_FORMAT PASS
  local pass_json=""
  case "$3" in
    gptq) pass_json=', "passes": [{"name": "gptq"}]' ;;
    adaround) pass_json=', "passes": [{"name": "adaround"}]' ;;
    cle_bc) pass_json=', "passes": [{"name": "cross_layer_equalization"}, {"name": "bias_correction"}]' ;;
  esac
  echo "{\"weights\": {\"format\": \"$1\"}, \"activations\": {\"format\": \"$2\", \"observer\": \"percentile\"}$pass_json}"
}
fp32=$(build/bin/lowbit eval "$model" --exclude-calibration --threads 2 | awk '/^top-1/ {print $2}')
echo "fp32 top-1 $fp32 % ($(basename "$model"), calibration images excluded)"
echo
echo "| W/A | weights | activations | pass | top-1 % | drop |"
echo "|---|---|---|---|---|---|"
for pair in "${pairs[@]}"; do
  read -r wb ab <<<"$pair"
  wfmts=("int$wb" ${minifloats[$wb]})
  for wf in "${wfmts[@]}"; do
    if [[ $wf == int* ]]; then af="int$ab"; else
      # the activation minifloat: the same split when the widths match, else the width's first split
      if [ "$wb" = "$ab" ]; then af="$wf"; else read -r af _ <<<"${minifloats[$ab]}"; fi
    fi
    for pass in "${passes[@]}"; do
      recipe "$wf" "$af" "$pass" >"$work/r.json"
      top1=$(build/bin/lowbit eval "$model" --recipe "$work/r.json" --threads 2 | awk '/^top-1/ {print $2}')
      drop=$(awk -v a="$fp32" -v b="$top1" 'BEGIN {printf "%.2f", a - b}')
      echo "| W${wb}A${ab} | $wf | $af | $pass | $top1 | $drop |"
    done
  done
done
rm -rf "$work"
