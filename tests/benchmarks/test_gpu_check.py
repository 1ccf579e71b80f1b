"""benchmarks/gpu_check.sh, the one GPU check (the cuda-marked tests, then the timers), run unchanged on the CPU.

Without a CUDA device the script picks its tiny mode by itself and sets TRITON_INTERPRET=1 for every stage, so the
fused 3DNA kernel runs in Triton's interpreter (float32 and float16; its numpy has no bfloat16): the tests of
tests/gpu on tiny grids, then every timer on tiny sizes. The GPU run itself is not something CI can do; this proves
every stage's code runs and that the raw JSON, the merged gpu_check.json and the markdown are written.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nuwa_hf import nearby_attention_mask

pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))  # the timers import `harness` as the scripts do

import harness  # noqa: E402


@pytest.mark.parametrize(
    "query_grid,key_grid,extent,causal",
    [
        ((4, 7, 6), (4, 7, 6), (3, 3, 3), True),
        ((2, 3, 4), (2, 3, 4), (3, 3, 3), False),
        ((3, 5, 7), (2, 3, 4), (1, 3, None), False),  # cross-attention to a smaller, non-dividing grid
        ((4, 4, 4), (9, 1, 1), (None, 1, 1), False),  # video attending to text
    ],
)
def test_flex_mask_mod_is_the_3dna_mask(query_grid, key_grid, extent, causal):
    """The FlexAttention block mask of time_attention.py is built from exactly the reference's mask rule."""
    from time_attention import flex_mask_mod

    mask_mod = flex_mask_mod(query_grid, key_grid, extent, causal, device="cpu")
    q_index = torch.arange(query_grid[0] * query_grid[1] * query_grid[2])
    k_index = torch.arange(key_grid[0] * key_grid[1] * key_grid[2])
    got = mask_mod(None, None, q_index[:, None], k_index[None, :])
    assert torch.equal(got, nearby_attention_mask(query_grid, key_grid, extent, causal))


def test_harness_times_ratios_and_summary(tmp_path):
    calls = []
    timed = harness.time_call(lambda: calls.append(1), warmup=2, repeats=5, graph=True)
    assert len(calls) == 7 and timed["repeats"] == 5 and timed["ms"] >= 0 and timed["graph_ms"] is None
    rows = [{"impl": "base", "ms": 4.0, "graph_ms": 2.0}, {"impl": "fast", "ms": 1.0, "graph_ms": 0.5}]
    harness.ratios(rows, baseline=rows[0])
    assert rows[1]["speedup_vs_base"] == 4.0 and rows[1]["speedup_vs_base_graph"] == 4.0
    harness.write_json(tmp_path / "demo.json", {"mode": "tiny", "device": "cpu", "rows": rows})
    (tmp_path / "stages.tsv").write_text("demo\t0\t3\nslow\t124\t60\nlate\tskipped\t0\n")
    report = harness.summarize(tmp_path)
    assert report["stages"] == {"demo": {"status": "ok", "exit_status": 0, "wall_s": 3.0},
                                "slow": {"status": "timeout", "exit_status": 124, "wall_s": 60.0},
                                "late": {"status": "skipped (time budget)", "exit_status": None, "wall_s": 0.0}}
    assert report["results"]["demo"]["rows"] == rows and report["mode"] == "tiny"
    assert "| base | 4 | 2 |" in (tmp_path / "gpu_check.md").read_text()
    assert harness.device_slug("NVIDIA H100 80GB HBM3") == "h100-80gb-hbm3"


@pytest.mark.slow
def test_tiny_run_on_the_cpu_writes_json_and_markdown(tmp_path):
    """About a minute on two busy cores: five stages, each a process importing torch and nuwa_hf."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "NUWA_3DNA_KERNEL_PATH", "PYTHONPATH",
                                                            "GPU_CHECK_TINY", "GPU_CHECK_BUDGET")}
    env.update(OUT=str(out), GPU_CHECK_PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1",
               GPU_CHECK_WHEELS=str(tmp_path / "no-wheels"), GPU_CHECK_SITE=str(tmp_path / "site"))
    result = subprocess.run(["bash", str(SCRIPT)], env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=450)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    report = json.loads((out / "gpu_check.json").read_text())
    assert report["mode"] == "tiny" and report["tests_mode"] == "interpreter"
    stages = ("tests", "attention", "decoding", "static_step", "training")
    assert {name: s["status"] for name, s in report["stages"].items()} == dict.fromkeys(stages, "ok"), report["stages"]
    results = report["results"]
    for name in stages[1:]:  # each timer's raw JSON: dated, with the device, plain `import nuwa_hf` (light core)
        assert results[name]["date"] and results[name]["device"] == "cpu" and results[name]["mode"] == "tiny"
        assert results[name]["nuwa_hf_import"]["optional_loaded"] == [], results[name]["nuwa_hf_import"]

    tests = results["tests"]
    assert tests["exit_status"] == 0 and tests["counts"].get("passed", 0) >= 40, tests["counts"]
    assert set(tests["counts"]) == {"passed"}, tests["counts"]
    kernel = [r for r in tests["records"] if r["backend"] == "triton" and r["dtype"] == "fp32"]
    assert len(kernel) == 6 and max(max(r["errors"].values()) for r in kernel) < 1e-5, kernel
    assert {r["backend"] for r in tests["records"]} == {"triton", "block_sparse", "window_gather", "cpu_inference"}

    attention = results["attention"]
    assert attention["interpreted"] is True
    measured = {(row["impl"], row["pass"]): row for row in attention["rows"] if "ms" in row}
    for key in [("triton", "fwd"), ("triton", "fwd+bwd"), ("sdpa_dense_mask", "fwd"), ("sdpa_dense_mask", "fwd+bwd"),
                ("flex", "fwd")]:
        assert key in measured, attention["rows"]
        assert measured[key]["check_max_abs_err"] < 1e-5 and measured[key]["useful_tflops"] > 0
    assert measured[("triton", "fwd")]["speedup_vs_sdpa_dense_mask"] > 0
    allowed = int(nearby_attention_mask((2, 3, 4), (2, 3, 4), (3, 3, 3), True).sum())
    assert attention["cases"][0]["allowed_pairs"] == allowed

    decoding = {row["impl"]: row for row in results["decoding"]["rows"]}
    assert decoding["fast_step"]["steps"] == decoding["module_path"]["steps"] == 2 * 3 * 3 - 1
    assert decoding["fast_step"]["first_frame_ms"] > 0 and decoding["fast_step"]["last_frame_ms"] > 0
    assert decoding["fast_step"]["speedup_vs_module_path"] > 0
    for graphed in ("fast_step_cuda_graph", "fast_step_cuda_graph_bf16"):  # generate(cuda_graph=True): GPU only
        assert decoding[graphed] == {"impl": graphed, "grid": [2, 3, 3], "skipped": "no CUDA device"}

    static = {row["impl"]: row for row in results["static_step"]["rows"]}
    assert static["generate_shipped_t2i_eager"]["ms_per_token"] > 0  # the shipped checkpoint's T2I through generate()
    assert static["generate_shipped_t2i_cuda_graph"] == {"impl": "generate_shipped_t2i_cuda_graph",
                                                          "skipped": "no CUDA device"}
    assert static["static_step_eager"]["ms"] > 0
    assert static["static_step_cuda_graph"] == {"impl": "static_step_cuda_graph", "skipped": "no CUDA device"}
    static = results["static_step"]
    # One cached decoding step compiles with fullgraph=True (issue 18 row 12).
    assert static["torch_compile_fullgraph_probe"]["ok"] is True, static["torch_compile_fullgraph_probe"]

    training = {(row["impl"], row["dtype"]): row for row in results["training"]["rows"]}
    impls = ("sdpa", "nuwa_3dna", "nuwa_pytorch")
    assert set(training) == {(impl, dtype) for impl in impls for dtype in ("fp32", "bf16")}
    for dtype in ("fp32", "bf16"):
        assert training[("sdpa", dtype)]["visual_tokens_per_s"] > 0 and training[("sdpa", dtype)]["ms"] > 0
        assert training[("nuwa_3dna", dtype)]["visual_tokens_per_s"] > 0
        assert training[("nuwa_3dna", dtype)]["speedup_vs_sdpa"] > 0
        # no wheels carried here: nuwa-pytorch (no test dependency) is skipped with the reason, unless installed
        theirs = training[("nuwa_pytorch", dtype)]
        assert ("nuwa-pytorch" in theirs.get("skipped", "") or theirs.get("visual_tokens_per_s", 0) > 0
                or "BFloat16" in theirs.get("error", "")), theirs

    markdown = (out / "gpu_check.md").read_text()
    for heading in ("## tests (interpreter)", "## attention (tiny, cpu)", "## decoding", "## static_step",
                    "## training"):
        assert heading in markdown
    assert (out / "gpu_check.log").exists() and (out / "tests.json").exists()
