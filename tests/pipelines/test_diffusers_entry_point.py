"""The diffusers-style entry point: one DiffusionPipeline for the eight tasks, same engine as the transformers ones;
and diffusers' own loader, DiffusionPipeline.from_pretrained(folder, trust_remote_code=True), on a NUWA folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DiffusionPipeline
from transformers import pipeline

import nuwa_hf
from nuwa_hf.models.nuwa.remote_code import DIFFUSERS_MODEL_INDEX, DIFFUSERS_PIPELINE_FILE, diffusers_model_index
from nuwa_hf.pipelines import NuwaDiffusionPipeline, NuwaPipelineOutput


@pytest.fixture(scope="module")
def diffusers_pipe(tiny_model_folder):
    pipe = NuwaDiffusionPipeline.from_pretrained(tiny_model_folder).to("cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_images_and_frames_like_diffusers(diffusers_pipe):
    out = diffusers_pipe("text-to-image", prompt=["a red 3", "a blue 8"], num_images_per_prompt=2,
                         generator=torch.Generator().manual_seed(0))
    assert isinstance(out, NuwaPipelineOutput) and out.frames is None
    assert len(out.images) == 4 and all(isinstance(i, PIL.Image.Image) for i in out.images)
    video = diffusers_pipe("T2V", prompt="the digit 3", num_frames=2, output_type="np").frames
    assert video.shape == (1, 2, 16, 16, 3)
    (images,) = diffusers_pipe("S2I", sketch=np.zeros((16, 16), dtype=np.int64), return_dict=False)
    assert len(images) == 1


def test_same_result_as_the_transformers_pipeline(diffusers_pipe, tiny_model_folder):
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    ours = diffusers_pipe("image-manipulation", image=image, prompt="a red circle", mask="center", seed=3,
                          output_type="np").images[0]
    theirs = pipeline("nuwa-image-manipulation", model=tiny_model_folder)(image, "a red circle", "center", seed=3,
                                                                         output_type="np")
    assert np.array_equal(ours, theirs)


def test_missing_inputs_and_round_trip(diffusers_pipe, tmp_path):
    with pytest.raises(ValueError, match="needs image, prompt, mask"):
        diffusers_pipe("TI2I")
    diffusers_pipe.save_pretrained(tmp_path / "copy")
    again = pipeline("nuwa-video-prediction", model=str(tmp_path / "copy"))
    assert len(again(PIL.Image.new("RGB", (16, 16)), seed=0)) == 3


# --------------------------------------------------------------------------------------------------------------------
# Issue 28 item 4a: a user imports the class from nuwa_hf, as the README names it, and asks for two outputs with the
# pipelines' name for the count (num_outputs_per_input, "one name in every task"). It used to collide with the name the
# entry point passes on (TypeError: got multiple values for keyword argument 'num_outputs_per_input').

RANDOM = np.random.default_rng(1)
ONE_INPUT_PER_TASK = {  # task code -> the inputs of one request on the tiny folder (16x16 pixels, 3 frames)
    "T2I": {"prompt": "a red 7"},
    "T2V": {"prompt": "the digit 3", "num_frames": 2},
    "V2V": {"image": PIL.Image.fromarray(RANDOM.integers(0, 256, (16, 16, 3), dtype=np.uint8)), "num_frames": 1},
    "S2I": {"sketch": np.zeros((16, 16), dtype=np.int64)},
    "S2V": {"sketch": np.zeros((2, 16, 16), dtype=np.int64)},
    "I2I": {"image": PIL.Image.fromarray(RANDOM.integers(0, 256, (16, 16, 3), dtype=np.uint8)), "mask": "bottom half"},
    "TI2I": {"image": PIL.Image.fromarray(RANDOM.integers(0, 256, (16, 16, 3), dtype=np.uint8)), "prompt": "a red 7",
             "mask": "center"},
    "TV2V": {"image": PIL.Image.fromarray(RANDOM.integers(0, 256, (16, 16, 3), dtype=np.uint8)), "prompt": "a red 7",
             "num_frames": 2},
}


def test_importable_from_the_package_root():
    from nuwa_hf import NuwaDiffusionPipeline as from_root

    assert from_root is NuwaDiffusionPipeline


@pytest.mark.parametrize("task", sorted(ONE_INPUT_PER_TASK))
def test_num_outputs_per_input_works_in_every_task(diffusers_pipe, task):
    out = diffusers_pipe(task, num_outputs_per_input=2, seed=0, **ONE_INPUT_PER_TASK[task])
    samples = out.frames if out.images is None else out.images
    assert len(samples) == 2, f"{task}: {len(samples)} outputs for one input with num_outputs_per_input=2"
    # The same request under diffusers' name gives the same outputs.
    again = diffusers_pipe(task, num_images_per_prompt=2, seed=0, output_type="np", **ONE_INPUT_PER_TASK[task])
    ours = diffusers_pipe(task, num_outputs_per_input=2, seed=0, output_type="np", **ONE_INPUT_PER_TASK[task])
    assert np.array_equal(again.frames if again.images is None else again.images,
                          ours.frames if ours.images is None else ours.images)


def test_both_count_names_must_agree(diffusers_pipe):
    out = diffusers_pipe("T2I", prompt="a red 7", num_outputs_per_input=2, num_images_per_prompt=2, seed=0)
    assert len(out.images) == 2
    with pytest.raises(TypeError, match="same count.*give one"):
        diffusers_pipe("T2I", prompt="a red 7", num_outputs_per_input=2, num_images_per_prompt=3)
    with pytest.raises(ValueError, match="num_outputs_per_input must be"):
        diffusers_pipe("T2I", prompt="a red 7", num_outputs_per_input=0)


def test_the_pipelines_frame_count_name_points_to_this_ones(diffusers_pipe):
    with pytest.raises(TypeError, match="num_frames=3 instead"):
        diffusers_pipe("V2V", image=ONE_INPUT_PER_TASK["V2V"]["image"], num_frames_to_predict=3)


# --------------------------------------------------------------------------------------------------------------------
# Issue 18 row 13: diffusers' generic loader, DiffusionPipeline.from_pretrained(folder), on a NUWA folder. The folder
# holds diffusers' custom-pipeline files (model_index.json + nuwa_diffusers_pipeline.py, which imports the class from
# nuwa_hf); diffusers imports that module only with trust_remote_code=True.

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "nuwa-tiny"

# What a diffusers user runs: no import of nuwa_hf (the folder's module brings it), one image per folder, fixed seed.
GENERIC_LOADER = """
import json, sys
import numpy as np, torch
from diffusers import DiffusionPipeline
assert not any(name.startswith("nuwa_hf") for name in sys.modules)
out = {}
for folder, target in zip(sys.argv[1::2], sys.argv[2::2]):
    pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True).to("cpu")
    pipe.set_progress_bar_config(disable=True)
    image = pipe("text-to-image", prompt="a red 7", generator=torch.Generator().manual_seed(0),
                 output_type="np").images[0]
    np.save(target, image)
    out[folder] = {"class": type(pipe).__module__ + "." + type(pipe).__name__,
                   "components": {name: type(part).__name__ for name, part in pipe.components.items()},
                   "vqgans": [type(pipe.transformer.vqgan).__name__, type(pipe.transformer.sketch_vqgan).__name__]}
print(json.dumps(out))
"""


def test_save_pretrained_writes_the_diffusers_entry_point(diffusers_pipe, tmp_path):
    diffusers_pipe.save_pretrained(tmp_path / "saved")
    index = json.loads((tmp_path / "saved" / DIFFUSERS_MODEL_INDEX).read_text())
    assert index == diffusers_model_index()
    assert index["_class_name"] == [DIFFUSERS_PIPELINE_FILE[:-3], "NuwaDiffusionPipeline"]
    # The component entries are what diffusers records for this pipeline's parts (module path, class name).
    assert {name: list(diffusers_pipe.config[name]) for name in ("transformer", "processor")} == {
        name: index[name] for name in ("transformer", "processor")}
    source = (tmp_path / "saved" / DIFFUSERS_PIPELINE_FILE).read_text()
    assert "from nuwa_hf.pipelines.diffusers_pipeline import NuwaDiffusionPipeline" in source, "imported, not copied"
    for name in (DIFFUSERS_MODEL_INDEX, DIFFUSERS_PIPELINE_FILE):  # the shipped checkpoint carries the same files
        assert (SHIPPED / name).read_text() == (tmp_path / "saved" / name).read_text(), name


def test_generic_loader_without_trust_remote_code_names_the_fix(diffusers_pipe, tmp_path):
    diffusers_pipe.save_pretrained(tmp_path / "saved")
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        DiffusionPipeline.from_pretrained(str(tmp_path / "saved"))


def test_folder_module_names_the_fix_where_nuwa_hf_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "nuwa_hf.pipelines.diffusers_pipeline", None)  # import of it -> ModuleNotFoundError
    with pytest.raises(ImportError, match="pip install nuwa-hf"):
        exec(compile((SHIPPED / DIFFUSERS_PIPELINE_FILE).read_text(), DIFFUSERS_PIPELINE_FILE, "exec"), {})


@pytest.mark.slow
def test_generic_diffusers_loader_gives_the_same_images(diffusers_pipe, tmp_path):
    """DiffusionPipeline.from_pretrained(folder, trust_remote_code=True) in a fresh process, as a diffusers user runs
    it, on a folder NuwaDiffusionPipeline.save_pretrained wrote and on the shipped checkpoint: a NuwaDiffusionPipeline
    with both components, and the same image as NuwaDiffusionPipeline.from_pretrained for the same seed."""
    diffusers_pipe.save_pretrained(tmp_path / "saved")
    folders = [str(tmp_path / "saved"), str(SHIPPED)]
    targets = [str(tmp_path / f"image{i}.npy") for i in range(len(folders))]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "PYTHONPATH": str(Path(nuwa_hf.__file__).resolve().parents[1])}  # this checkout's nuwa_hf, "installed"
    result = subprocess.run([sys.executable, "-c", GENERIC_LOADER, *[a for pair in zip(folders, targets) for a in pair]],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for folder, target in zip(folders, targets):
        assert loaded[folder] == {
            "class": "nuwa_hf.pipelines.diffusers_pipeline.NuwaDiffusionPipeline",
            "components": {"transformer": "NuwaForConditionalGeneration", "processor": "NuwaProcessor"},
            "vqgans": ["NuwaVQGAN", "NuwaSegVQGAN"]}, folder
        pipe = NuwaDiffusionPipeline.from_pretrained(folder).to("cpu")
        pipe.set_progress_bar_config(disable=True)
        expected = pipe("text-to-image", prompt="a red 7", generator=torch.Generator().manual_seed(0),
                        output_type="np").images[0]
        assert np.array_equal(np.load(target), expected), folder
