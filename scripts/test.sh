#!/usr/bin/env bash
# Installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
set +e
# one compute thread per test process: two test processes, each with torch's default thread
# pool, oversubscribe two cores (the figures: README, Status, CI)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# two test processes (pytest-xdist), a test file whole on one of them (its module fixtures made
# once), the longest files first (tests/conftest.py: LONGEST_FILES_FIRST); the session fixtures
# are shared between them (tests/conftest.py: shared).
# NEUROSPICE_TEST_WORKERS=0 runs everything in this one process.
python3 -m pytest -q -p no:cacheprovider --durations=25 -n "${NEUROSPICE_TEST_WORKERS:-2}" \
  --dist loadfile --no-loadscope-reorder tests "$@"
rc=$?
[ $rc -eq 5 ] && { echo "no tests collected"; exit 1; }
exit $rc
