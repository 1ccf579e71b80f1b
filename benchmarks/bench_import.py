"""How long ``import nuwa_hf`` takes and which heavy packages it loads: fresh interpreters, median of N runs.

    python benchmarks/bench_import.py [--runs 5] [--src OTHER/src ...]

With several ``--src`` folders (another checkout's ``src/``, e.g. from ``git archive``) the runs alternate between
them, so a before/after comparison sees the same machine load. ``--src PATH:pkg1,pkg2`` runs as if those packages were
not installed (``sys.modules[pkg] = None`` before the import, which transformers' availability checks also see): a
plain ``pip install nuwa-hf`` has no accelerate, which transformers otherwise imports when it is installed.

Each run is a new ``python -c "import nuwa_hf"`` process (nothing cached in memory between runs; the OS file cache
is warm after the first), timed inside the process with ``time.perf_counter`` around the import alone. The heavy
packages are the optional dependencies the light core leaves out until first use (diffusers, datasets, evaluate,
gradio, accelerate) and the ones it needs (torch, transformers, safetensors, huggingface_hub).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGES = ("torch", "transformers", "safetensors", "huggingface_hub", "diffusers", "datasets", "evaluate", "gradio",
            "accelerate", "triton", "kernels", "scipy", "matplotlib", "av")
PROBE = f"""
import json, sys, time
for name in sys.argv[1:]:
    sys.modules[name] = None
start = time.perf_counter()
import nuwa_hf
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "modules": len(sys.modules),
                  "loaded": [p for p in {PACKAGES!r} if sys.modules.get(p) is not None]}}))
"""


def probe(source: str) -> dict:
    """One fresh interpreter importing nuwa_hf from ``source`` ("PATH" or "PATH:blocked,packages")."""
    src, _, blocked = str(source).partition(":")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE, *filter(None, blocked.split(","))], capture_output=True,
                          text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(runs: int, sources=(str(SRC),)) -> dict:
    """{source: {seconds, median_seconds, modules, loaded}}, the sources' runs interleaved."""
    results = {str(source): [] for source in sources}
    for _ in range(runs):
        for source in sources:
            results[str(source)].append(probe(source))
    return {source: {"runs": runs, "seconds": [round(r["seconds"], 3) for r in rows],
                     "median_seconds": round(statistics.median(r["seconds"] for r in rows), 3),
                     "modules": rows[-1]["modules"], "loaded": rows[-1]["loaded"]}
            for source, rows in results.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", action="append", help="a src/ folder to import nuwa_hf from, optionally "
                        "PATH:pkg1,pkg2 to run as if those were not installed (repeatable; default: this checkout's)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.runs, args.src or (str(SRC),)), indent=2))


if __name__ == "__main__":
    main()
