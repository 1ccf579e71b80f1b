"""benchmarks/bench_decoding.py runs as documented and prints the speed-ups and a same-tokens check per row (no timing
is asserted: the figures are for benchmarks/README.md)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_one_round_prints_every_row_with_the_same_tokens():
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_decoding.py", "--rounds", "1", "--skip-videos", "--skip-preset",
         "--threads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| T2")]
    assert len(rows) == 4  # T2I and T2V, batch 1 and 8
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[-1] == "yes", row  # the same tokens on every path
        assert cells[-2].endswith("x") and cells[-3].endswith("x"), row  # the ratios printed
        assert len(cells) == 10, row
