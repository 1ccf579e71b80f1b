"""Faults during writes (issue 30, item 3): 20 SIGKILLs at random moments and one full disk for each write site.

    PYTHONPATH=src python benchmarks/write_faults.py [--kills 20] [--cases save generate token_cache checkpoint]

For each case (``tests/support/write_faults.py``): a forked child writes over and over and is killed with SIGKILL after
a uniform random delay; the folder must then load completely (one of the saves written) or be refused with a clear
message, and the next run must resume or rebuild without a hand step. Then the same write runs under a file-size limit
below what it needs (``RLIMIT_FSIZE``, ``SIGXFSZ`` ignored, so the write fails with ``EFBIG``): the error must name
the folder and the space needed, and nothing half-written may be left. Prints a Markdown table (the one in
``docs/reliability.md``); exits 1 if any kill or disk-full case failed. CI keeps a few kills of each:
``tests/test_write_faults.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

from support.write_faults import CASES, kill_repeatedly  # noqa: E402

# Random delays span one save and more (setup of the write included), so kills land everywhere in it.
MAX_DELAY = {"save": 1.5, "generate": 3.0, "token_cache": 1.0, "checkpoint": 15.0}
TESTS = {
    "save": "tests/test_write_faults.py::test_save_pretrained_killed_or_out_of_space",
    "generate": "tests/test_write_faults.py::test_generate_outputs_killed_or_out_of_space",
    "token_cache": "tests/test_write_faults.py::test_token_cache_killed_or_out_of_space",
    "checkpoint": "tests/test_write_faults.py::test_training_checkpoints_killed_or_out_of_space (slow)",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    rows, failed = [], False
    for name in args.cases:
        with tempfile.TemporaryDirectory(prefix=f"write-faults-{name}-") as root:
            start = time.time()
            case = CASES[name](Path(root))
            print(f"{case.name}: {args.kills} kills (delays 0..{MAX_DELAY[name]} s)", flush=True)
            results = kill_repeatedly(case, args.kills, MAX_DELAY[name], seed=args.seed,
                                      log=lambda line: print(line, flush=True))
            space = case.fill_disk()
            print(f"  disk full: {'ok' if space.ok else 'FAILED'}: {space.message} {space.problems}", flush=True)
            counts = {outcome: sum(r.outcome == outcome for r in results) for outcome in ("loads", "absent", "refused", "BAD")}
            mid = sum(r.mid_write for r in results)
            recovered = sum(r.recovered for r in results)
            failed |= (not space.ok) or any(not r.ok for r in results)
            rows.append((case.name, len(results), counts, mid, recovered, space, time.time() - start, TESTS[name]))
    print()
    print("| write | kills | folder afterwards | kills that left a writer's temporary (mid-write) | next run resumed / rebuilt | disk full (file-size limit below the write) | kept by |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, kills, counts, mid, recovered, space, seconds, test in rows:
        after = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "-"
        disk = ("ok: " if space.ok else "FAILED: ") + space.message.replace("|", "/")
        print(f"| {name} | {kills} | {after} | {mid} | {recovered}/{kills} | {disk} | `{test}` |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
