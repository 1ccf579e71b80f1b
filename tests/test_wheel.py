"""A built wheel works on its own: installed into a fresh virtual environment (no editable source tree), the `nuwa-hf`
command generates with the shipped checkpoint, a pipeline runs, the model card writer finds its template and the GPU
kernel loader finds the Triton kernel source (all package data, not files of the repository checkout), and push-code
builds the remote code from the installed modules."""

import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "checkpoints" / "nuwa-tiny"


def run(argv, **kwargs):
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=400, **kwargs)
    assert result.returncode == 0, f"{argv[:3]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.mark.slow
def test_the_wheel_installs_and_runs_without_the_source_tree(tmp_path):
    run([sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", tmp_path / "dist"], cwd=tmp_path)
    wheels = list((tmp_path / "dist").glob("nuwa_hf-*.whl"))
    assert len(wheels) == 1

    # A fresh environment that sees this one's dependencies (torch, transformers, ...) but not its editable nuwa_hf:
    # a path line in a .pth file adds the directory without running the .pth files inside it.
    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    fresh_site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (fresh_site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheels[0]])

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    check = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        import nuwa_hf
        from nuwa_hf.hub.model_cards import TEMPLATE_DIR, write_default_card
        from nuwa_hf.ops.gpu_kernel import find_kernel_package
        from transformers import pipeline
        site = Path(nuwa_hf.__file__).resolve().parents[1]
        assert "fresh" in str(site) and not str(site).startswith({str(REPO / "src")!r}), site
        assert (TEMPLATE_DIR / "nuwa-tiny.md").is_file() and str(TEMPLATE_DIR).startswith(str(site))
        kernel = find_kernel_package()
        assert kernel is not None and str(kernel).startswith(str(site)), kernel
        image = pipeline("nuwa-text-to-image", model={str(CHECKPOINT)!r})("a red 7", seed=0)
        assert image.size == (32, 32)
        folder = Path(sys.argv[1])
        folder.mkdir()
        card = write_default_card(folder, evaluation={{}}, timings={{}}, command="make demo", nuwa_argv=[],
                                  settings={{}})
        assert "nuwa-tiny" in card.read_text()
        from nuwa_hf.hub import build_code_folder  # push-code builds the remote code from the installed modules
        written = build_code_folder(folder.parent / "code")
        assert any(name.endswith("/modeling_nuwa.py") for name in written), written
        print("ok")
    """)
    assert run([python, "-c", check, tmp_path / "card"], env=env, cwd=tmp_path).stdout.strip().endswith("ok")
    out = tmp_path / "demo"
    run([fresh / "bin" / "nuwa-hf", "generate", "--task", "T2I", "--model", CHECKPOINT, "--prompt", "a blue 3",
         "--out", out, "--quiet"], env=env, cwd=tmp_path)
    assert list(out.glob("*.png"))
