"""How long ``import nuwa_hf`` takes and which heavy packages it loads: fresh interpreters, median of N runs.

    python benchmarks/bench_import.py [--runs 5]

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
start = time.perf_counter()
import nuwa_hf
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "modules": len(sys.modules),
                  "loaded": [p for p in {PACKAGES!r} if p in sys.modules]}}))
"""


def measure(runs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    results = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"runs": runs, "seconds": [round(r["seconds"], 3) for r in results],
            "median_seconds": round(statistics.median(r["seconds"] for r in results), 3),
            "modules": results[-1]["modules"], "loaded": results[-1]["loaded"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    print(json.dumps(measure(parser.parse_args(argv).runs), indent=2))


if __name__ == "__main__":
    main()
