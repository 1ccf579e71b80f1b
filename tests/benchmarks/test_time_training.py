"""benchmarks/time_training.py: the training-step timer's rows (nuwa_hf with dense SDPA and with 3DNA, and lucidrains'
nuwa-pytorch 0.7.8 at the same size), its skip path where nuwa-pytorch cannot be imported (CI: it is no test
dependency, since its declared dependencies pull torchvision and with it a CUDA build of torch), and the mapping of the
preset onto nuwa-pytorch's NUWA. The tests that need nuwa-pytorch run where it is importable, e.g.
``pip install --no-deps --target /tmp/site nuwa-pytorch==0.7.8 einops unfoldNd`` and ``PYTHONPATH=src:/tmp/site``.
"""

import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the timers import `harness` and each other as the scripts do
# `make install` puts nuwa-pytorch 0.7.8 and its two pure-Python dependencies in .venv/baselines (see the Makefile):
# appended, so nothing there shadows an installed package or the standard library.
if (ROOT / ".venv" / "baselines").is_dir() and str(ROOT / ".venv" / "baselines") not in sys.path:
    sys.path.append(str(ROOT / ".venv" / "baselines"))

import time_training  # noqa: E402
from time_decoding import PAPER_LIKE  # noqa: E402

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration  # noqa: E402


def nuwa_pytorch_site():
    """The folder that holds an importable nuwa-pytorch 0.7.8, else None."""
    try:
        if importlib.metadata.version("nuwa-pytorch") != time_training.NUWA_PYTORCH_VERSION:
            return None
        time_training.load_nuwa_pytorch()
    except (importlib.metadata.PackageNotFoundError, ImportError):
        return None
    return str(Path(importlib.util.find_spec("nuwa_pytorch").submodule_search_locations[0]).parent)


needs_nuwa_pytorch = pytest.mark.skipif(nuwa_pytorch_site() is None, reason="nuwa-pytorch 0.7.8 is not importable")


def test_load_gives_the_reason_when_nuwa_pytorch_is_missing(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(time_training.importlib.metadata, "version", not_installed)
    with pytest.raises(ImportError, match="nuwa-pytorch is not installed .*--prepare-wheels"):
        time_training.load_nuwa_pytorch()

    monkeypatch.setattr(time_training.importlib.metadata, "version", lambda name: "0.7.7")
    with pytest.raises(ImportError, match=r"nuwa-pytorch 0\.7\.7 is installed; .* written for 0\.7\.8"):
        time_training.load_nuwa_pytorch()

    monkeypatch.setattr(time_training.importlib.metadata, "version", lambda name: "0.7.8")
    monkeypatch.setattr(time_training.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="metadata is installed but its nuwa_pytorch package is not on the path"):
        time_training.load_nuwa_pytorch()


def test_preset_maps_onto_nuwa_pytorch_arguments():
    config = NuwaConfig.paper(**PAPER_LIKE, dropout=0.0)
    kwargs = time_training.nuwa_pytorch_kwargs(config, (10, 21, 21))
    assert kwargs == dict(dim=256, max_video_frames=10, text_num_tokens=49408, text_max_seq_len=77, text_enc_depth=4,
                          text_enc_heads=4, text_enc_dim_head=64, enc_reversible=True, dec_depth=4, dec_heads=4,
                          dec_dim_head=64, dec_reversible=False, attn_dropout=0.0, ff_dropout=0.0,
                          sparse_3dna_kernel_size=(3, 3, 3), ff_mult=4)
    stand_in = time_training.TokenGridOnly(21, 1024)
    assert stand_in.image_size // 2 ** stand_in.num_layers == 21 and stand_in.copy_for_eval() is None
    with pytest.raises(ValueError, match="square token frames"):
        time_training.nuwa_pytorch_kwargs(config, (10, 21, 20))
    with pytest.raises(ValueError, match="must be odd per axis"):  # nuwa_hf's None (whole axis) has no counterpart
        time_training.nuwa_pytorch_kwargs(NuwaConfig.tiny(video_extent=(None, 3, 3)), (2, 3, 3))
    with pytest.raises(ValueError, match="not a multiple of hidden_size"):
        time_training.nuwa_pytorch_kwargs(NuwaConfig.tiny(intermediate_size=100), (2, 3, 3))


@needs_nuwa_pytorch
def test_nuwa_pytorch_is_built_at_the_presets_size():
    """Same width, depth, heads, text length, frames and token grid; no VQ-GAN inside; parameters within 3%."""
    module = time_training.load_nuwa_pytorch()
    config = NuwaConfig.paper(**PAPER_LIKE, dropout=0.0)
    theirs, kwargs = time_training.build_nuwa_pytorch(module, config, (10, 21, 21))
    assert theirs.vae is None and theirs.video_fmap_size == 21 and theirs.max_video_frames == 10
    assert theirs.text_max_seq_len == 77 and theirs.to_logits.out_features == 1024
    assert len(theirs.video_transformer.layers) == 4 and theirs.image_embedding is not None
    ours = NuwaForConditionalGeneration(config)
    ratio = time_training.parameters_m(theirs) / time_training.parameters_m(ours)
    assert 0.97 < ratio < 1.03, (time_training.parameters_m(theirs), time_training.parameters_m(ours))


def run_timer(tmp_path, pythonpath: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GPU_CHECK_BUDGET", "GPU_CHECK_TINY")}
    env.update(PYTHONPATH=pythonpath, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "time_training.py"), "--tiny", "--out",
                             str(tmp_path)], env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((tmp_path / "training.json").read_text())


def check_nuwa_hf_rows(report: dict) -> dict:
    rows = {(row["impl"], row["dtype"]): row for row in report["rows"]}
    assert list(rows) == [(impl, dtype) for dtype in ("fp32", "bf16") for impl in ("sdpa", "nuwa_3dna", "nuwa_pytorch")]
    assert report["tokens_per_step"] == 2 * 2 * 3 * 3 and report["grid"] == [2, 3, 3]
    assert report["peak_memory"].startswith("n/a")
    for dtype in ("fp32", "bf16"):
        for impl in ("sdpa", "nuwa_3dna"):
            row = rows[(impl, dtype)]
            assert row["ms"] > 0 and row["first_call_s"] > 0 and row["peak_mem_mib"] is None, row
            assert math.isclose(row["visual_tokens_per_s"], 36 / (row["ms"] * 1e-3))
            assert math.isclose(row["speedup_vs_sdpa"], rows[("sdpa", dtype)]["ms"] / row["ms"])
    return rows


@pytest.mark.slow
def test_rows_without_nuwa_pytorch_record_the_skip(tmp_path):
    if nuwa_pytorch_site() is not None and "site-packages" in nuwa_pytorch_site():
        pytest.skip("nuwa-pytorch is installed in this environment itself; its absence cannot be arranged")
    report = run_timer(tmp_path, str(ROOT / "src"))  # without the folder that may hold nuwa-pytorch
    rows = check_nuwa_hf_rows(report)
    for dtype in ("fp32", "bf16"):
        assert rows[("nuwa_pytorch", dtype)] == {"impl": "nuwa_pytorch", "dtype": dtype,
                                                  "skipped": report["nuwa_pytorch"]["skipped"]}
        assert "speedup_vs_nuwa_pytorch" not in rows[("sdpa", dtype)]
    assert "nuwa-pytorch is not installed" in report["nuwa_pytorch"]["skipped"]


@pytest.mark.slow
@needs_nuwa_pytorch
def test_rows_with_nuwa_pytorch_measure_it_in_the_same_run(tmp_path):
    report = run_timer(tmp_path, os.pathsep.join([str(ROOT / "src"), nuwa_pytorch_site()]))
    rows = check_nuwa_hf_rows(report)
    theirs = rows[("nuwa_pytorch", "fp32")]
    assert theirs["ms"] > 0 and theirs["visual_tokens_per_s"] > 0 and theirs["peak_mem_mib"] is None
    assert math.isclose(theirs["speedup_vs_sdpa"], rows[("sdpa", "fp32")]["ms"] / theirs["ms"])
    assert math.isclose(rows[("nuwa_3dna", "fp32")]["speedup_vs_nuwa_pytorch"],
                        theirs["ms"] / rows[("nuwa_3dna", "fp32")]["ms"])
    assert 0.9 < theirs["params_m"] / rows[("sdpa", "fp32")]["params_m"] < 1.1
    # 0.7.8 cannot train under bf16 autocast (float32's largest value filled into bf16 scores): recorded, not hidden
    assert "BFloat16 without overflow" in rows[("nuwa_pytorch", "bf16")]["error"]
    built = report["nuwa_pytorch"]["built_as"]
    assert built["dim"] == 64 and built["max_video_frames"] == 2 and built["enc_reversible"] is True
    assert report["nuwa_pytorch"]["version"] == "0.7.8" and "vq_gan" in report["nuwa_pytorch"]["notes"]
