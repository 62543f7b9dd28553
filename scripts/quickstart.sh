#!/usr/bin/env bash
# Set-up + the main job on the embedded default (scikit-learn digits): characterize the
# memcapacitive neuron, then train a circuit-aware SNN with its tables and re-simulate it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
neurospice characterize memcap --quick --out runs
neurospice characterize memcap-diff --layer-fan-in 64 --layer-fan-in 256 --out runs
neurospice train memcap --dataset digits --mode aware --out runs/train/digits-aware
neurospice verify runs/train/digits-aware/checkpoint.pt --samples 20
echo "curve: runs/memcap/memcap_curve.png   training: runs/train/digits-aware/ (checkpoint, metrics.json, training.png)"
