"""The one timing harness of the GPU timers (benchmarks/time_*.py): warm-up, repeats, median, CUDA synchronisation,
same-process baseline ratios, and raw JSON with the date and the device under benchmarks/results/.

A timer script is tens of lines over this module::

    args = harness.parse_args(__doc__)                 # --tiny, --out, --warmup, --repeats, --budget
    run = harness.Run("attention", args)               # device, environment, deadline; results/<date>_<device>/
    row = run.add(impl="sdpa", **run.time(fn))         # written to <out>/attention.json at once (partial runs count)
    harness.ratios(rows, baseline=row)                 # speedup_vs_<impl> for every row, from the same process

Without a CUDA device every timer runs its tiny mode (Triton's interpreter for the kernel), which is how
tests/benchmarks/test_gpu_check.py runs them on a CPU. ``python benchmarks/harness.py summarize DIR`` merges the
JSON files of one GPU check into ``DIR/gpu_check.json`` and a markdown table per file (``DIR/gpu_check.md``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
for _path in (str(ROOT / "src"), str(HERE)):  # nuwa_hf from this checkout; the bench_* modules beside this file
    if _path not in sys.path:
        sys.path.insert(0, _path)

# NVIDIA H200 SXM data-sheet figures (spec, not measured): dense (no sparsity) bf16 tensor-core throughput, fp32 on
# CUDA cores (the kernel's fp32 path multiplies in IEEE fp32, not TF32), HBM3e bandwidth.
H200_SPEC = {"bf16_dense_tflops": 989.0, "fp32_tflops": 67.0, "hbm_tb_per_s": 4.8,
             "source": "NVIDIA H200 SXM data sheet (spec figures, not measured)"}
DTYPES = ("fp32", "bf16", "fp16")


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def device_name() -> str:
    """The GPU's name (nvidia-smi; no torch import), else 'cpu'."""
    if shutil.which("nvidia-smi") and os.environ.get("CUDA_VISIBLE_DEVICES", "x") != "":
        answer = run_command(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])
        if answer.get("rc") == 0 and answer["stdout"]:
            return answer["stdout"].splitlines()[0].strip()
    return "cpu"


def device_slug(name: str | None = None) -> str:
    name = device_name() if name is None else name
    return "".join(c if c.isalnum() else "-" for c in name.replace("NVIDIA ", "")).strip("-").lower() or "cpu"


def default_out() -> Path:
    return RESULTS / f"{time.strftime('%Y-%m-%dT%H%MZ', time.gmtime())}_{device_slug()}"


def parse_args(doc: str, extra=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (also GPU_CHECK_TINY=1, or no CUDA device)")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="results folder (default benchmarks/results/"
                                                                     "<date>_<device>)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 10 GPU, 1 CPU)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls; the median is kept (default 50 / 3)")
    parser.add_argument("--budget", type=float, default=float(os.environ.get("GPU_CHECK_BUDGET") or 0) or None,
                        help="seconds; no new case starts past it (default GPU_CHECK_BUDGET, set by gpu_check.sh)")
    if extra:
        extra(parser)
    return parser.parse_args()


def run_command(args, timeout=30) -> dict:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        return {"rc": done.returncode, "stdout": done.stdout.strip()[-2000:], "stderr": done.stderr.strip()[-1000:]}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def environment() -> dict:
    """nvidia-smi, versions, the device (what the old gpu_check's environment section recorded)."""
    import torch

    record = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
              "triton_interpret": os.environ.get("TRITON_INTERPRET", "0"),
              "wheels_installed": os.environ.get("GPU_CHECK_INSTALLED", ""),
              "pythonpath": os.environ.get("PYTHONPATH", "")}
    if shutil.which("nvidia-smi"):
        record["nvidia_smi"] = run_command([
            "nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit",
            "--format=csv,noheader"])
        record["nvidia_smi_L"] = run_command(["nvidia-smi", "-L"])
    versions = {}
    for name in ("torch", "triton", "transformers", "diffusers", "datasets", "huggingface_hub", "accelerate",
                 "safetensors", "tokenizers", "numpy", "torchvision"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    record.update(versions=versions, torch=torch.__version__, torch_cuda=torch.version.cuda,
                  cuda_available=torch.cuda.is_available(), allow_tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        record["device"] = {"name": props.name, "capability": f"{props.major}.{props.minor}",
                            "sms": props.multi_processor_count, "memory_gib": round(props.total_memory / 2**30, 1)}
    else:
        record["device"] = {"name": "cpu", "threads": torch.get_num_threads()}
    return record


def import_nuwa_hf() -> dict:
    """``import nuwa_hf`` as a user would: where from, and which optional packages it loaded (the light core loads
    none, so a GPU image with torch, triton and transformers runs every timer without carried wheels)."""
    import nuwa_hf

    return {"ok": True, "from": str(Path(nuwa_hf.__file__).parent),
            "optional_loaded": [n for n in ("diffusers", "datasets", "evaluate", "gradio") if n in sys.modules]}


def write_json(path: Path, data) -> None:
    """Atomic: a reader (or a kill mid-write) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def error_text(exc: BaseException, limit: int = 1500) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-limit:]


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_call(fn, *, warmup: int, repeats: int, graph: bool = False) -> dict:
    """Median milliseconds of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones, each call bracketed by a
    CUDA synchronisation (on a GPU). ``graph=True`` also times the call replayed from a CUDA graph (the GPU time
    without launch overhead, triton.testing.do_bench_cudagraph, median) and records the peak memory of one call."""
    import torch

    on_gpu = torch.cuda.is_available()
    for _ in range(warmup):
        fn()
    sync()
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    samples = []
    for _ in range(max(1, repeats)):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        samples.append((time.perf_counter() - start) * 1e3)
    result = {"ms": statistics.median(samples), "ms_min": min(samples), "repeats": len(samples), "warmup": warmup,
              "timer": "perf_counter around synchronised calls, median" if on_gpu else "perf_counter (CPU), median"}
    if on_gpu:
        result["peak_mem_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if graph:
        result["graph_ms"] = None
        if on_gpu:
            try:
                import triton.testing

                result["graph_ms"] = triton.testing.do_bench_cudagraph(fn, rep=50, return_mode="median")
            except Exception as exc:  # noqa: BLE001 (capture can fail; the eager time still stands)
                result["graph_error"] = error_text(exc, 600)
    return result


def ratios(rows, baseline: dict, keys=("ms", "graph_ms")) -> None:
    """``speedup_vs_<baseline impl>[_graph]``: baseline time / this time, for rows measured in the same process."""
    for row in rows:
        for key in keys:
            if row.get(key) and baseline.get(key):
                suffix = "" if key == "ms" else "_" + key.replace("_ms", "")
                row[f"speedup_vs_{baseline.get('impl', 'baseline')}{suffix}"] = baseline[key] / row[key]


class Run:
    """One timer's results: ``<out>/<name>.json`` with the date, the device, the environment and the rows, rewritten
    after every row so a timeout keeps what was measured."""

    def __init__(self, name: str, args: argparse.Namespace, **meta):
        import torch

        self.cuda = torch.cuda.is_available()
        self.tiny = bool(args.tiny or os.environ.get("GPU_CHECK_TINY") == "1" or not self.cuda)
        if not self.cuda:
            torch.set_num_threads(1)  # the CPU run is a smoke test on a shared machine
        self.warmup = args.warmup if args.warmup is not None else (10 if self.cuda else 1)
        self.repeats = args.repeats if args.repeats is not None else (50 if self.cuda else 3)
        self.started = time.time()
        self.deadline = self.started + args.budget if args.budget else float("inf")
        out = Path(args.out) if args.out else default_out()
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / f"{name}.json"
        self.rows: list = []
        self.data = {"name": name, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "device": torch.cuda.get_device_name(0) if self.cuda else "cpu",
                     "mode": "tiny" if self.tiny else "full", "triton_interpreter": os.environ.get(
                         "TRITON_INTERPRET") == "1", "warmup": self.warmup, "repeats": self.repeats,
                     "environment": environment(), "nuwa_hf_import": import_nuwa_hf(), **meta, "rows": self.rows}
        self.save()

    def time_left(self, needed: float = 0.0) -> bool:
        return time.time() + needed < self.deadline

    def time(self, fn, graph: bool = False) -> dict:
        return time_call(fn, warmup=self.warmup, repeats=self.repeats, graph=graph)

    def add(self, **row) -> dict:
        self.rows.append(row)
        self.save()
        print(f"[{self.data['name']}] " + json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)},
                                                    default=str)[:400], flush=True)
        return row

    def save(self) -> None:
        self.data["wall_s"] = round(time.time() - self.started, 1)
        write_json(self.path, self.data)

    def done(self) -> None:
        self.data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.save()
        print(f"[{self.data['name']}] wrote {self.path}", flush=True)


# ---- summarize: one GPU check's folder -> gpu_check.json + gpu_check.md -------------------------------------------

def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value, default=str)[:80].replace("|", "/") if isinstance(value, (dict, list)) else str(value)


def _table(rows, leave_out=("timer", "warmup", "repeats", "ms_min", "tflops_from")) -> list:
    columns = []
    for row in rows:
        columns += [k for k, v in row.items() if k not in columns and k not in leave_out
                    and not isinstance(v, (dict, list))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return lines


def summarize(folder: Path) -> dict:
    """Merge every ``<stage>.json`` of one GPU check with the stage statuses (``stages.tsv``: name, exit status or
    "skipped", seconds) into ``gpu_check.json`` and render ``gpu_check.md``."""
    report = {"schema": 2, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": device_name(), "stages": {},
              "results": {}}
    stages = folder / "stages.tsv"
    for line in stages.read_text().splitlines() if stages.exists() else []:
        name, rc, seconds = line.split("\t")[:3]
        status = {"0": "ok", "124": "timeout", "137": "timeout", "skipped": "skipped (time budget)"}.get(rc, "failed")
        report["stages"][name] = {"status": status, "exit_status": int(rc) if rc.lstrip("-").isdigit() else None,
                                  "wall_s": float(seconds)}
    for path in sorted(folder.glob("*.json")):
        if path.name != "gpu_check.json":
            try:
                report["results"][path.stem] = json.loads(path.read_text())
            except ValueError as exc:
                report["results"][path.stem] = {"error": f"unreadable: {exc}"}
    timers = [r for n, r in report["results"].items() if n != "tests" and isinstance(r, dict)]
    report["mode"] = "tiny" if any(r.get("mode") == "tiny" for r in timers) else "full"
    report["tests_mode"] = report["results"].get("tests", {}).get("mode")  # "cuda" or "interpreter"
    write_json(folder / "gpu_check.json", report)
    lines = [f"# GPU check, {report['device']}, {report['date']}", "",
             "| stage | status | exit status | seconds |", "|---|---|---|---|"]
    lines += [f"| {n} | {s['status']} | {s['exit_status']} | {s['wall_s']} |" for n, s in report["stages"].items()]
    tests = report["results"].get("tests", {})
    if tests.get("records"):
        lines += ["", f"## tests ({tests.get('mode')}): {tests.get('counts')}", ""]
        flat = [{"backend": r.get("backend"), "case": r.get("case"), "dtype": r.get("dtype"),
                 **{k: v for k, v in r.get("errors", {}).items()},
                 **{f"sdpa_{k}": v for k, v in (r.get("sdpa_same_dtype_errors") or {}).items() if k in ("out", "dq")}}
                for r in tests["records"]]
        lines += _table(flat)
    for name, result in report["results"].items():
        if name != "tests" and isinstance(result, dict) and result.get("rows"):
            lines += ["", f"## {name} ({result.get('mode')}, {result.get('device')})", ""] + _table(result["rows"])
            if result.get("cases"):
                lines += [""] + _table([{**c, **c.get("triton_work", {})} for c in result["cases"]])
    (folder / "gpu_check.md").write_text("\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "summarize":
        summarize(Path(sys.argv[2]))
        print((Path(sys.argv[2]) / "gpu_check.md").read_text())
    elif len(sys.argv) == 2 and sys.argv[1] == "default-out":
        print(default_out())
    else:
        sys.exit("usage: python benchmarks/harness.py summarize DIR | default-out")
