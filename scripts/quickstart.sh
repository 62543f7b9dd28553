#!/usr/bin/env bash
# Set-up + the main job on the embedded default (scikit-learn digits): every neuron family
# characterized in ngspice (quick), trained, re-simulated and compared in one report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
neurospice demo --out runs/demo
