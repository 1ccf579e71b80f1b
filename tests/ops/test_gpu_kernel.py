"""The fused 3DNA GPU kernel (kernels/nuwa_3dna), proven on the CPU.

* Values and gradients against the one reference, run by Triton's interpreter on CPU tensors: the very kernel code
  a GPU would run. Small block sizes (16) make even tiny grids span many tiles and many key blocks, so the tiling,
  the key-box walk and its causal cut are all exercised.
* Key-block skipping: the kernels' own visit counters against the Python mirror of their loop bounds, and the work
  staying flat when the key sequence grows.
* Real GPU code generation: the kernels compiled to cubin for sm_80 and sm_90 (no GPU needed), including bfloat16,
  which the interpreter cannot run.
* The loader and the dispatch: where the kernel comes from, and the errors where it cannot run.

When TRITON_INTERPRET must be set: before the process first imports triton (triton decorates its own library, e.g.
``tl.zeros``, when ``triton.language`` is imported). So the interpreter cases run in ONE subprocess started with
``TRITON_INTERPRET=1`` in its environment (``python tests/ops/test_gpu_kernel.py --interpreter-worker`` runs this file
as that worker); it reports numbers as JSON and the tests here assert on them. Nothing leaks into this process.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nuwa_hf import nearby_attention, nearby_attention_reference
from nuwa_hf.ops import gpu_kernel, select_backend

# Every test here is about the Triton kernel; triton is in the test extras, so CI always runs them.
pytest.importorskip("triton")

KERNEL_SOURCE = Path(__file__).resolve().parents[2] / "kernels" / "nuwa_3dna"
WORKER_FLAG = "--interpreter-worker"


def _inputs(query_grid, key_grid, seed, dtype=torch.float32, num_queries=None, num_keys=None, batch=1, heads=2,
            dim=16):
    g = torch.Generator().manual_seed(seed)
    lq = math.prod(query_grid) if num_queries is None else num_queries
    lk = math.prod(key_grid) if num_keys is None else num_keys
    q = torch.randn(batch, heads, lq, dim, generator=g).to(dtype)
    k = torch.randn(batch, heads, lk, dim, generator=g).to(dtype)
    v = torch.randn(batch, heads, lk, dim, generator=g).to(dtype)
    return q, k, v


# ---- the cases the interpreter worker runs ----

# (query_grid, key_grid, extent, causal): the grids, text, images, videos, cross grids that do not divide.
FP32_CASES = [
    ((2, 3, 4), (2, 3, 4), (3, 3, 3), False),
    ((2, 3, 4), (2, 3, 4), (3, 3, 3), True),
    ((3, 5, 7), (3, 5, 7), (1, 3, None), True),  # None extent: whole width
    ((3, 5, 7), (3, 5, 7), (3, 3, 3), False),
    ((1, 8, 8), (1, 8, 8), (1, 3, 3), True),  # image decoder
    ((4, 4, 4), (4, 4, 4), (3, 3, 3), True),  # video decoder
    ((9, 1, 1), (9, 1, 1), (None, 1, 1), True),  # text, causal
    ((9, 1, 1), (9, 1, 1), (None, 1, 1), False),  # text encoder: all text
    ((3, 5, 7), (2, 3, 4), (1, 3, None), False),  # cross-attention to a smaller, non-dividing grid
    ((2, 3, 4), (3, 5, 7), (3, None, 3), False),  # cross-attention to a larger grid
    ((4, 4, 4), (9, 1, 1), (None, 1, 1), False),  # video attending to text
    ((2, 3, 4), (2, 3, 4), (None, None, None), False),  # all None: full attention
]
FP16_CASES = [((4, 4, 4), (4, 4, 4), (3, 3, 3), True), ((3, 5, 7), (2, 3, 4), (1, 3, None), False)]
# (query_offset, num_queries, num_keys, causal) on a 3x5x7 grid with a 3x3x3 window.
OFFSET_CASES = [
    (40, 1, 41, True),  # one decoding step, cache exactly up to the query
    (40, 7, 47, True),  # a few queries at once
    (13, 50, 105, True),  # a slice against the whole grid
    (13, 50, 105, False),
]
# (query_grid, extent, causal, query_offset, num_queries, num_keys) for the visit counters.
VISIT_CASES = [
    ((2, 6, 6), (3, 3, 3), True, None, None, None),
    ((3, 5, 7), (1, 3, None), False, None, None, None),
    ((3, 5, 7), (3, 3, 3), True, 40, 7, 60),
    ((12, 6, 6), (3, 3, 3), False, None, None, None),
    ((4, 6, 6), (3, 3, 3), False, None, None, None),
    ((4, 6, 6), (3, 3, 3), True, None, None, None),
]


def _case_id(*parts):
    return "-".join("x".join(map(str, p)) if isinstance(p, tuple) else str(p) for p in parts)


def _errors(kernel, query_grid, key_grid, extent, causal, *, dtype=torch.float32, query_offset=None,
            num_queries=None, num_keys=None, seed=0):
    """Max abs error of the kernel's output and gradients vs the float64 reference on the same (rounded) inputs."""
    q, k, v = _inputs(query_grid, key_grid, seed, dtype, num_queries, num_keys)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    out = kernel.nearby_attention(
        q, k, v, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal,
        query_offset=query_offset, block_m=16, block_n=16,
    )
    assert out.dtype == dtype and out.shape == q.shape
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 1)).to(dtype)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = nearby_attention_reference(
        q64, k64, v64, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal,
        query_offset=query_offset,
    )
    ref_grads = torch.autograd.grad(ref, (q64, k64, v64), grad_out.double())
    pairs = zip(("out", "dq", "dk", "dv"), (out, *grads), (ref, *ref_grads))
    return {name: (got.double() - want).abs().max().item() for name, got, want in pairs}


def _visits(kernel, query_grid, extent, causal, query_offset, num_queries, num_keys):
    attention = sys.modules[kernel.__name__ + "._attention"]
    q, k, v = _inputs(query_grid, query_grid, seed=5, num_queries=num_queries, num_keys=num_keys, heads=1)
    plan = attention.make_plan(q, k, query_grid=query_grid, key_grid=query_grid, extent=extent, causal=causal,
                               scale=None, query_offset=query_offset, block_m=16, block_n=16)
    out, lse, forward_visits = attention.forward(q, k, v, plan, count_visits=True)
    *_, dkdv_visits = attention.backward(torch.ones_like(out), q, k, v, out, lse, plan, count_visits=True)
    work = attention.work(plan)
    return {
        "forward": forward_visits[0].tolist(), "forward_mirror": work.forward_key_blocks,
        "dkdv": dkdv_visits[0].tolist(), "dkdv_mirror": work.dkdv_query_blocks, "query_tile": plan.query_tile,
    }


def _run_worker() -> dict:
    """Everything that needs the interpreter; returns JSON-able results keyed by case id."""
    kernel = gpu_kernel.load_kernel()
    results = {"interpreted": kernel.is_interpreted()}
    for case in FP32_CASES:
        results[_case_id("fp32", *case)] = _errors(kernel, *case)
    for case in FP16_CASES:
        results[_case_id("fp16", *case)] = _errors(kernel, *case, dtype=torch.float16)
    for offset, lq, lk, causal in OFFSET_CASES:
        results[_case_id("offset", offset, lq, lk, causal)] = _errors(
            kernel, (3, 5, 7), (3, 5, 7), (3, 3, 3), causal, query_offset=offset, num_queries=lq, num_keys=lk
        )
    for case in VISIT_CASES:
        results[_case_id("visits", *case)] = _visits(kernel, *case)

    # Through the public dispatch, default (32 x 32 fp32) tiles, batch 2, head_dim 24, a custom scale.
    q, k, v = _inputs((4, 8, 8), (4, 8, 8), seed=3, batch=2, dim=24)
    q.requires_grad_()
    kw = dict(query_grid=(4, 8, 8), key_grid=(4, 8, 8), extent=(3, 3, 3), causal=True, scale=0.3)
    out = nearby_attention(q, k, v, backend="triton", **kw)
    ref = nearby_attention_reference(q, k, v, **kw)
    (grad,) = torch.autograd.grad(out.square().sum(), q)
    (ref_grad,) = torch.autograd.grad(ref.square().sum(), q)
    results["dispatch"] = {"out": (out - ref).abs().max().item(), "dq": (grad - ref_grad).abs().max().item(),
                           "dq_magnitude": ref_grad.abs().max().item()}

    # Strided views (heads split off a (B, L, NH, D) projection) are read through their strides.
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, 24, 2, 16, generator=g).transpose(1, 2) for _ in range(3))
    kw = dict(query_grid=(2, 3, 4), key_grid=(2, 3, 4), extent=(3, 3, 1), causal=True)
    out = kernel.nearby_attention(q, k, v, block_m=16, block_n=16, **kw)
    results["strided"] = {"contiguous": q.is_contiguous(),
                          "out": (out - nearby_attention_reference(q, k, v, **kw)).abs().max().item()}

    # Bad input gives clear errors.
    q, k, v = _inputs((2, 3, 4), (2, 3, 4), seed=0)
    grids = dict(query_grid=(2, 3, 4), key_grid=(2, 3, 4))
    bad = {
        "bf16": lambda: kernel.nearby_attention(*(t.bfloat16() for t in (q, k, v)), **grids, extent=(3, 3, 3)),
        "block": lambda: kernel.nearby_attention(q, k, v, **grids, extent=(3, 3, 3), block_m=24),
        "even": lambda: kernel.nearby_attention(q, k, v, **grids, extent=(3, 2, 3)),
        "causal_cross": lambda: kernel.nearby_attention(q, k, v, query_grid=(2, 3, 4), key_grid=(4, 3, 2),
                                                        extent=(3, 3, 3), causal=True),
        "length": lambda: kernel.nearby_attention(q[:, :, :5], k, v, **grids, extent=(3, 3, 3)),
        "dtype": lambda: kernel.nearby_attention(q.double(), k.double(), v.double(), **grids, extent=(3, 3, 3)),
    }
    for name, call in bad.items():
        try:
            call()
            results["error_" + name] = None
        except ValueError as error:
            results["error_" + name] = str(error)
    return results


@pytest.fixture(scope="module")
def interpreter_results():
    """Run every interpreter case once, in a subprocess started with TRITON_INTERPRET=1."""
    env = {k: v for k, v in os.environ.items() if k != gpu_kernel.KERNEL_PATH_ENV}
    env["TRITON_INTERPRET"] = "1"
    result = subprocess.run(
        [sys.executable, __file__, WORKER_FLAG], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_worker_ran_interpreted(interpreter_results):
    assert interpreter_results["interpreted"] is True


@pytest.mark.slow
@pytest.mark.parametrize("case", FP32_CASES, ids=lambda c: _case_id(*c))
def test_fp32_values_and_gradients_match_reference(interpreter_results, case):
    errors = interpreter_results[_case_id("fp32", *case)]
    assert max(errors.values()) < 1e-5, errors


@pytest.mark.slow
@pytest.mark.parametrize("case", FP16_CASES, ids=lambda c: _case_id(*c))
def test_fp16_values_and_gradients_match_reference(interpreter_results, case):
    # fp16 inputs, fp32 accumulation; P and dS are rounded to fp16 before their products, as on tensor cores.
    errors = interpreter_results[_case_id("fp16", *case)]
    assert errors["out"] < 3e-3 and max(errors.values()) < 6e-3, errors


@pytest.mark.slow
@pytest.mark.parametrize("case", OFFSET_CASES, ids=lambda c: _case_id(*c))
def test_query_offset_slices_match_reference(interpreter_results, case):
    errors = interpreter_results[_case_id("offset", *case)]
    assert max(errors.values()) < 1e-5, errors


@pytest.mark.slow
def test_default_blocks_through_public_dispatch(interpreter_results):
    errors = interpreter_results["dispatch"]
    assert errors["out"] < 1e-5, errors
    # The loss is out**2 summed, so gradients reach several units: fp32 rounding is relative to them.
    assert errors["dq"] < 1e-5 * max(1.0, errors["dq_magnitude"]), errors


@pytest.mark.slow
def test_non_contiguous_inputs(interpreter_results):
    assert interpreter_results["strided"]["contiguous"] is False
    assert interpreter_results["strided"]["out"] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("case", VISIT_CASES, ids=lambda c: _case_id(*c))
def test_visited_blocks_match_the_mirror(interpreter_results, case):
    """The kernels visit exactly the blocks the host-side mirror says (which picks tiles and feeds the README)."""
    visits = interpreter_results[_case_id("visits", *case)]
    assert visits["forward"] == visits["forward_mirror"]
    assert visits["dkdv"] == visits["dkdv_mirror"]


@pytest.mark.slow
def test_work_grows_with_the_window_not_the_sequence(interpreter_results):
    """Three times more frames (and keys): the busiest program visits no more key blocks than before, and the total
    work grows no faster than the number of queries, where dense attention's would grow nine-fold."""
    small = interpreter_results[_case_id("visits", (4, 6, 6), (3, 3, 3), False, None, None, None)]
    large = interpreter_results[_case_id("visits", (12, 6, 6), (3, 3, 3), False, None, None, None)]
    for run, frames in ((small, 4), (large, 12)):
        # A tile's key box is at most (tile + window - 1) per axis, whatever the number of frames.
        box_bound = math.prod(min(t + 2, size) for t, size in zip(run["query_tile"], (frames, 6, 6)))
        assert max(run["forward"]) <= math.ceil(box_bound / 16)
    dense_blocks = math.ceil(12 * 6 * 6 / 16)  # what a dense flash kernel visits per query tile
    assert max(large["forward"]) * 4 <= dense_blocks
    # 3x the queries, and a smaller share of (clipped, cheaper) border frames: measured 3.9x; dense would be 9x.
    assert sum(large["forward"]) <= 4 * sum(small["forward"])
    assert sum(large["dkdv"]) <= 4 * sum(small["dkdv"])


@pytest.mark.slow
def test_causal_cut_skips_blocks(interpreter_results):
    full = interpreter_results[_case_id("visits", (4, 6, 6), (3, 3, 3), False, None, None, None)]
    causal = interpreter_results[_case_id("visits", (4, 6, 6), (3, 3, 3), True, None, None, None)]
    assert sum(causal["forward"]) < sum(full["forward"])
    assert sum(causal["dkdv"]) < sum(full["dkdv"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,message",
    [
        ("bf16", "bfloat16 cannot run in the Triton interpreter"),
        ("block", "block_m must be a power of two"),
        ("even", "odd"),
        ("causal_cross", "query_grid == key_grid"),
        ("length", "query length"),
        ("dtype", "float16, bfloat16 and float32"),
    ],
)
def test_kernel_rejects_bad_input(interpreter_results, name, message):
    assert interpreter_results["error_" + name] is not None and message in interpreter_results["error_" + name]


# ---- in this process (no interpreter): GPU code generation, work figures, loader, dispatch ----

@pytest.fixture(scope="module")
def compiled():
    """The kernel package as a GPU machine imports it."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("this process runs triton's interpreter; the compiled kernels need a process without it")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(gpu_kernel.KERNEL_PATH_ENV, raising=False)
        kernel = gpu_kernel.load_kernel()
        assert not kernel.is_interpreted()
        yield kernel


def test_paper_grid_work_is_a_small_fraction_of_dense(compiled):
    """10x21x21 with a 3x3x3 window, fp16 default tiles: the exact work the kernels do vs dense attention."""
    query = torch.empty(1, 1, 4410, 64, dtype=torch.float16, device="meta")
    for causal, dense in ((False, 4410 * 4410), (True, 4410 * 4411 // 2)):
        plan = compiled.make_plan(query, query, query_grid=(10, 21, 21), key_grid=(10, 21, 21), extent=(3, 3, 3),
                                  causal=causal, scale=None, query_offset=None)
        work = compiled.work(plan)
        assert work.forward_pairs < dense / 10
        assert work.dkdv_pairs < dense / 10
        assert work.forward_pairs > work.allowed_pairs  # tiles waste some pairs, never skip allowed ones


@pytest.mark.parametrize("capability", [80, 90])
def test_kernels_compile_for_ampere_and_hopper(compiled, capability):
    """bf16 and fp16 code generation down to cubin, with tensor-core instructions and no register spills."""
    aot = __import__(compiled.__name__ + "._aot", fromlist=["compile_kernel"])
    for dtype in (torch.bfloat16, torch.float16):
        for name in aot.KERNELS:
            if dtype == torch.float16 and name != "forward":
                continue  # fp16 and bf16 share every line but the dtype; one fp16 kernel is enough here
            info = aot.compile_kernel(name, capability, dtype=dtype)
            assert info.tensor_core_instructions > 0, (name, dtype)
            assert info.stack_bytes == 0, f"{name} {dtype} sm_{capability} spills {info.stack_bytes} bytes"
            assert 0 < info.registers <= 255


def test_cpu_tensors_without_interpreter_raise(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q, k, v = _inputs((2, 3, 4), (2, 3, 4), seed=0)
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        nearby_attention(q, k, v, query_grid=(2, 3, 4), key_grid=(2, 3, 4), extent=(3, 3, 3), backend="triton")


def test_interpreter_requested_after_triton_import_is_a_clear_error(compiled, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(ValueError, match="before the process first imports triton"):
        gpu_kernel.load_kernel()


def test_auto_never_picks_the_kernel_for_cpu_tensors():
    q, k, v = _inputs((2, 3, 4), (2, 3, 4), seed=0)
    assert select_backend(q, k, v, None) != "triton"
    assert gpu_kernel.kernel_available() == (torch.cuda.is_available() and gpu_kernel.triton_installed())


def test_missing_triton_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(gpu_kernel, "triton_installed", lambda: False)
    with pytest.raises(ValueError, match="needs triton"):
        gpu_kernel.load_kernel()
    assert not gpu_kernel.kernel_available()


def test_kernel_path_env(compiled, monkeypatch, tmp_path):
    monkeypatch.setenv(gpu_kernel.KERNEL_PATH_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=gpu_kernel.KERNEL_PATH_ENV):
        gpu_kernel.load_kernel()
    for target in (KERNEL_SOURCE, KERNEL_SOURCE / "torch-ext" / "nuwa_3dna"):
        monkeypatch.setenv(gpu_kernel.KERNEL_PATH_ENV, str(target))
        assert gpu_kernel.find_kernel_package() == KERNEL_SOURCE / "torch-ext" / "nuwa_3dna"
        assert gpu_kernel.load_kernel() is compiled


def test_hub_route_through_the_kernels_package(compiled, monkeypatch, tmp_path):
    """Without a local tree, the loader asks ``kernels.get_kernel`` for the configured repository, trusting only it."""
    import types

    monkeypatch.delenv(gpu_kernel.KERNEL_PATH_ENV, raising=False)
    monkeypatch.setattr(gpu_kernel, "_REPO_KERNEL_SOURCE", tmp_path / "no-checkout")
    monkeypatch.setattr(gpu_kernel, "_loaded", {})
    monkeypatch.setenv(gpu_kernel.KERNEL_REPO_ENV, "someone/nuwa-3dna")
    calls = []
    hub_module = types.ModuleType("hub_nuwa_3dna")
    fake_kernels = types.ModuleType("kernels")
    fake_kernels.get_kernel = lambda repo, **kwargs: calls.append((repo, kwargs)) or hub_module
    monkeypatch.setitem(sys.modules, "kernels", fake_kernels)
    assert gpu_kernel.load_kernel() is hub_module
    assert gpu_kernel.load_kernel() is hub_module  # cached: one download per process
    assert calls == [("someone/nuwa-3dna", {"version": 1, "trust_remote_code": ["someone/nuwa-3dna"]})]

    monkeypatch.setattr(gpu_kernel, "_loaded", {})
    monkeypatch.setitem(sys.modules, "kernels", None)  # not installed
    with pytest.raises(ValueError, match="pip install kernels"):
        gpu_kernel.load_kernel()


@pytest.mark.parametrize(
    "query_grid,key_grid,extent,causal,query_offset,num_queries,num_keys",
    [
        ((10, 21, 21), (10, 21, 21), (3, 3, 3), True, None, None, None),
        ((3, 5, 7), (2, 3, 4), (1, 3, None), False, None, None, None),
        ((3, 5, 7), (3, 5, 7), (3, 3, 3), True, 40, 7, 60),
    ],
)
def test_mirror_counts_allowed_pairs_like_the_reference_mask(compiled, query_grid, key_grid, extent, causal,
                                                             query_offset, num_queries, num_keys):
    from nuwa_hf import nearby_attention_mask

    q, k, _ = _inputs(query_grid, key_grid, seed=0, num_queries=num_queries, num_keys=num_keys, heads=1)
    plan = compiled.make_plan(q, k, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal,
                              scale=None, query_offset=query_offset)
    mask = nearby_attention_mask(query_grid, key_grid, extent, causal, query_offset=query_offset or 0,
                                 num_queries=q.shape[2], num_keys=k.shape[2])
    assert compiled.work(plan).allowed_pairs == int(mask.sum())


if __name__ == "__main__" and WORKER_FLAG in sys.argv:
    print(json.dumps(_run_worker()))
