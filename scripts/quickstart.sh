#!/usr/bin/env bash
# Set-up + the main job on the embedded default: characterize the memcapacitive neuron.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
neurospice characterize memcap --quick --out runs
echo "artefact: runs/memcap/memcap_curve.json   plot: runs/memcap/memcap_curve.png"
