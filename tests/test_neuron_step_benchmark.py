"""``benchmarks/neuron_step.py`` runs on a fresh clone (synthetic tables) and prints the keys
the issue names as its last line; the times themselves are not asserted (machines are noisy)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_prints_its_ratios_as_json(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "neuron_step.py"), "--json", "--threads", "1",
                          "--batch", "4", "--neurons", "32", "--steps", "2", "--repeats", "1", "--device", "cpu"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    for key in ("diff_vs_lif", "table_vs_lif", "vs_snntorch", "diff_vs_lif_unfused", "compiled", "threads"):
        assert key in r, key
    assert r["diff_vs_lif"] > 0 and r["table_vs_lif"] > 0 and r["threads"] == 1
    assert r["compiled"] == "compiled"          # the C step is what was timed (CI has a compiler)
