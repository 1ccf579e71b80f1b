"""The light core (issue 29, item 4): ``import nuwa_hf`` loads torch, transformers, safetensors and huggingface_hub,
not diffusers, datasets, evaluate or gradio; the main user paths still work and pull in what they need; a missing
optional package names the pip extra that installs it."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "checkpoints" / "nuwa-tiny"
LEFT_OUT = ("diffusers", "datasets", "evaluate", "gradio")


def run_fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter (nothing imported yet); it prints one JSON line last."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_nuwa_hf_leaves_the_optional_packages_out():
    result = run_fresh(f"""
        import json, sys
        import nuwa_hf
        import transformers
        print(json.dumps({{"loaded": [p for p in {LEFT_OUT!r} if p in sys.modules],
                          "core": [p for p in ("torch", "transformers", "safetensors", "huggingface_hub")
                                   if p in sys.modules],
                          "registered": "nuwa-text-to-image" in transformers.pipelines.PIPELINE_REGISTRY.supported_tasks,
                          "subpackages": [m for m in ("nuwa_hf.data", "nuwa_hf.evaluation", "nuwa_hf.training",
                                                      "nuwa_hf.models.vqgan") if m in sys.modules]}}))
    """)
    assert result["loaded"] == [], f"import nuwa_hf imported {result['loaded']}"
    assert result["core"] == ["torch", "transformers", "safetensors", "huggingface_hub"]
    assert result["registered"]
    assert result["subpackages"] == []


@pytest.mark.slow
def test_the_main_user_paths_load_what_they_need():
    result = run_fresh(f"""
        import json, sys
        import nuwa_hf
        from transformers import AutoModelForSeq2SeqLM, pipeline
        model = AutoModelForSeq2SeqLM.from_pretrained({str(CHECKPOINT)!r})
        after_model = "diffusers" in sys.modules
        image = pipeline("nuwa-text-to-image", model={str(CHECKPOINT)!r})("a red 7", seed=0)
        from nuwa_hf import NuwaDiffusionPipeline, NuwaVQGAN
        from nuwa_hf.pipelines import NuwaDiffusionPipeline as from_pipelines
        print(json.dumps({{"after_model": after_model, "size": list(image.size),
                          "vqgan": type(model.vqgan).__name__, "same": NuwaDiffusionPipeline is from_pipelines,
                          "still_out": [p for p in ("datasets", "evaluate", "gradio") if p in sys.modules]}}))
    """)
    assert result["after_model"], "building the model needs the VQ-GANs, which are diffusers VQModels"
    assert result["size"] == [32, 32] and result["vqgan"] == "NuwaVQGAN" and result["same"]
    assert result["still_out"] == []


def test_subpackages_load_their_names_on_first_use():
    result = run_fresh("""
        import json, sys
        import nuwa_hf.data as data
        import nuwa_hf.evaluation as evaluation
        classes, video = data.SCENE_CLASSES, data.decode_video   # no datasets needed for these
        psnr = evaluation.peak_signal_to_noise_ratio
        before_scorers = "nuwa_hf.evaluation.scorers" in sys.modules
        scorer = evaluation.DigitClassifier
        print(json.dumps({"datasets": "datasets" in sys.modules, "before_scorers": before_scorers,
                          "scorers": "nuwa_hf.evaluation.scorers" in sys.modules,
                          "listed": {"DigitClassifier", "task_metrics"} <= set(dir(evaluation))}))
    """)
    assert result == {"datasets": False, "before_scorers": False, "scorers": True, "listed": True}


def test_a_missing_optional_package_names_the_extra(tmp_path):
    result = run_fresh(f"""
        import json, sys
        sys.modules["datasets"] = None      # as if datasets were not installed
        sys.modules["accelerate"] = None
        import nuwa_hf
        import nuwa_hf.data as data
        messages = {{}}
        try:
            data.digit_images
        except ImportError as error:
            messages["data"] = str(error)
        try:
            import nuwa_hf.training
        except ImportError as error:
            messages["training"] = str(error)
        from nuwa_hf.cli import main
        messages["decode_video"] = data.decode_video.__name__      # no datasets needed
        messages["demo_exit"] = main(["demo", "--model", {str(CHECKPOINT)!r}, "--out", {str(tmp_path)!r}, "--quiet"])
        print(json.dumps(messages))
    """)
    assert 'pip install "nuwa-hf[data]"' in result["data"] and "nuwa_hf.data.digit_images" in result["data"]
    assert 'pip install "nuwa-hf[train]"' in result["training"]
    assert result["decode_video"] == "decode_video"
    assert result["demo_exit"] == 4, "a missing package is reported with the missing-dependency exit code"


def test_reranking_depends_on_the_scorer_protocol_only():
    from nuwa_hf.pipelines import CandidateScorer, TextVisualScorer

    class Scorer:
        def similarity(self, samples, texts):
            return samples.reshape(len(samples), -1).mean(axis=1)

    assert isinstance(Scorer(), TextVisualScorer)
    loaded = run_fresh("""
        import json, sys
        from nuwa_hf.pipelines.reranking import CandidateScorer
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("nuwa_hf.evaluation"))))
    """)
    assert loaded == [], "the concrete scorers load only for a saved scorer's path"
    import numpy as np

    scores = CandidateScorer(Scorer())([np.zeros((2, 2, 3)), np.ones((2, 2, 3))], "a red 7")
    assert scores == [0.0, 1.0]


def test_without_diffusers_token_models_work_and_vqgan_models_say_what_to_install():
    result = run_fresh(f"""
        import json, sys
        sys.modules["diffusers"] = None     # as if diffusers were not installed (the GPU check's machine)
        import torch
        from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
        model = NuwaForConditionalGeneration(NuwaConfig.tiny())   # no VQ-GANs: no diffusers needed
        logits = model(**model.dummy_inputs).logits
        try:
            NuwaForConditionalGeneration.from_pretrained({str(CHECKPOINT)!r})
            message = None
        except ImportError as error:
            message = str(error)
        print(json.dumps({{"logits": list(logits.shape), "vqgan": model.model.vqgan is None, "message": message}}))
    """)
    assert result["vqgan"] and len(result["logits"]) == 3
    assert result["message"] and "pip install diffusers" in result["message"]
