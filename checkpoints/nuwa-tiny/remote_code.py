"""Self-contained model code written next to saved weights, so a folder loads where nuwa_hf is not installed.

``save_pretrained`` copies the NUWA configuration, modeling and generation files, the 3DNA operation files and the
eight task pipelines flat into the folder and records ``auto_map`` and ``custom_pipelines`` in config.json; then
``AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True)`` and
``transformers.pipeline("nuwa-text-to-image", model=folder, trust_remote_code=True)`` work without this package. Users who have
nuwa_hf installed never need ``trust_remote_code``: importing nuwa_hf registers the classes.

The copied files are this package's own sources, including the VQ-GAN files (the model owns its VQ-GANs), with two
imports rewritten (``from ...ops`` -> ``from .nuwa_ops``, ``from ..vqgan.x`` -> ``from .x``), so the remote code is
always exactly the installed code.

For diffusers users the folder also gets ``model_index.json`` and ``nuwa_diffusers_pipeline.py`` (see
:func:`write_diffusers_entry_point`): ``diffusers.DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)``
then returns ``NuwaDiffusionPipeline``. That module imports the class from the installed nuwa_hf (no code copied),
so this one entry point needs nuwa_hf; diffusers runs any pipeline module of a folder only with ``trust_remote_code``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Installed package: src/nuwa_hf/models/nuwa/ and src/nuwa_hf/ops/. Flat copy (trust_remote_code): all in one folder.
_FLAT = (_HERE / "nuwa_ops.py").exists()
_MODEL_DIR = _HERE
_OPS_DIR = _HERE if _FLAT else _HERE.parents[1] / "ops"
_VQGAN_DIR = _HERE if _FLAT else _HERE.parent / "vqgan"
_MODEL_FILES = ["configuration_nuwa.py", "decoding_nuwa.py", "generation_nuwa.py", "modeling_nuwa.py",
                "convert_nuwa_legacy_folder.py", "loading_nuwa.py"]
_VQGAN_FILES = ["quantization.py", "modeling_vqgan.py", "modeling_seg_vqgan.py"]
_OPS_FILES = ["geometry.py", "reference.py", "block_sparse.py", "cpu_inference.py", "window_gather.py",
              "nearby_attention.py", "gpu_kernel.py", "rotary.py"]

# The pipelines (one per task, and what they share) are copied too, so transformers.pipeline(task, model=folder,
# trust_remote_code=True) works where nuwa_hf is not installed. Flat names: pipelines/x.py -> pipeline_x.py.
_PIPELINE_FILES = ["pipeline_base.py", "inputs.py", "regions.py", "reranking.py", "call_options.py", "randomness.py",
                   "paste_back.py", "notices.py",
                   "sampling_options.py", "work_limits.py", "text_to_image.py", "text_to_video.py",
                   "video_prediction.py", "sketch_to_image.py", "image_completion.py", "image_manipulation.py",
                   "sketch_to_video.py", "video_manipulation.py"]
# nuwa_hf/x.py -> flat name (media writes with file_io.py and reads videos with data/video_decoding.py, which
# resizes with frame_resizing.py)
_PACKAGE_FILES = {"media.py": "nuwa_media.py", "file_io.py": "nuwa_file_io.py", "tasks.py": "nuwa_tasks.py",
                  "data/video_decoding.py": "nuwa_video_decoding.py", "data/frame_resizing.py": "nuwa_frame_resizing.py"}
_PIPELINES_DIR = _HERE if _FLAT else _HERE.parents[1] / "pipelines"
_PACKAGE_DIR = _HERE if _FLAT else _HERE.parents[1]
# Task name -> its pipeline class (the task table in nuwa_hf/tasks.py names the same classes; the test checks it).
PIPELINE_CLASSES = {
    "nuwa-text-to-image": "NuwaTextToImagePipeline", "nuwa-text-to-video": "NuwaTextToVideoPipeline",
    "nuwa-video-prediction": "NuwaVideoPredictionPipeline", "nuwa-sketch-to-image": "NuwaSketchToImagePipeline",
    "nuwa-image-completion": "NuwaImageCompletionPipeline", "nuwa-image-manipulation": "NuwaImageManipulationPipeline",
    "nuwa-sketch-to-video": "NuwaSketchToVideoPipeline", "nuwa-video-manipulation": "NuwaVideoManipulationPipeline",
}


def _flat_pipeline_name(name: str) -> str:
    return name if name == "pipeline_base.py" else f"pipeline_{name}"


def custom_pipelines() -> dict:
    """config.json's ``custom_pipelines``: where transformers.pipeline finds each task's class in the folder."""
    return {
        task: {"impl": f"{_flat_pipeline_name(task[len('nuwa-'):].replace('-', '_') + '.py')[:-3]}.{cls}",
               "pt": ["AutoModelForSeq2SeqLM"], "tf": [], "type": "multimodal"}
        for task, cls in PIPELINE_CLASSES.items()
    }


def _flat_pipeline_source(text: str) -> str:
    """Package imports of a pipeline file -> imports of the flat copies beside it."""
    text = (text.replace("from ..media import", "from .nuwa_media import")
            .replace("from .file_io import", "from .nuwa_file_io import")
            .replace("from .data.video_decoding import", "from .nuwa_video_decoding import")
            .replace("from .frame_resizing import", "from .nuwa_frame_resizing import")
            .replace("from ..tasks import", "from .nuwa_tasks import")
            .replace("from ..models.nuwa.loading_nuwa import", "from .loading_nuwa import")
            .replace("from ..processing import", "from .processing_nuwa import"))
    for name in _PIPELINE_FILES:
        module = name[:-3]
        text = text.replace(f"from .{module} import", f"from .{_flat_pipeline_name(name)[:-3]} import")
    return text


AUTO_MAP = {
    "AutoConfig": "configuration_nuwa.NuwaConfig",
    "AutoModel": "modeling_nuwa.NuwaModel",
    "AutoModelForSeq2SeqLM": "modeling_nuwa.NuwaForConditionalGeneration",
}


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; model folders are shared, like the weights next to them
    os.replace(tmp, path)


# diffusers' custom-pipeline convention: model_index.json's _class_name [module file without .py, class] names a module
# in the folder, which DiffusionPipeline.from_pretrained imports (with trust_remote_code=True) instead of looking the
# class up in diffusers. The components load from the folder root (no subfolder of their name), from the modules named
# here, which that import of nuwa_hf has loaded.
DIFFUSERS_MODEL_INDEX = "model_index.json"
DIFFUSERS_PIPELINE_FILE = "nuwa_diffusers_pipeline.py"
_DIFFUSERS_PIPELINE_SOURCE = '''"""diffusers entry point of this NUWA model folder: the class lives in the nuwa_hf package; nothing is copied here.

    >>> from diffusers import DiffusionPipeline
    >>> pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)   # a NuwaDiffusionPipeline

diffusers asks for trust_remote_code=True because it imports this file; without it (or without diffusers) the same
pipeline loads with `from nuwa_hf.pipelines import NuwaDiffusionPipeline; NuwaDiffusionPipeline.from_pretrained(folder)`.
"""

try:
    from nuwa_hf.pipelines.diffusers_pipeline import NuwaDiffusionPipeline
except ModuleNotFoundError as error:
    if (error.name or "").split(".")[0] != "nuwa_hf":
        raise
    raise ImportError(
        "This NUWA model folder's diffusers pipeline is NuwaDiffusionPipeline from the nuwa_hf package, which is not "
        "installed: `pip install nuwa-hf`. Without it, use transformers: transformers.pipeline('nuwa-text-to-image', "
        "model=folder, trust_remote_code=True)."
    ) from error

__all__ = ["NuwaDiffusionPipeline"]
'''


def diffusers_model_index() -> dict:
    """``model_index.json`` of a NUWA folder: the pipeline class (in :data:`DIFFUSERS_PIPELINE_FILE`) and the two
    components, as ``[module, class]`` (``transformer``: the model with its VQ-GANs; ``processor``: NuwaProcessor)."""
    return {
        "_class_name": [DIFFUSERS_PIPELINE_FILE[:-3], "NuwaDiffusionPipeline"],
        "transformer": ["nuwa_hf.models.nuwa.modeling_nuwa", "NuwaForConditionalGeneration"],
        "processor": ["nuwa_hf.processing.processing_nuwa", "NuwaProcessor"],
    }


def write_diffusers_entry_point(folder: str | os.PathLike) -> list[str]:
    """Write ``model_index.json`` and ``nuwa_diffusers_pipeline.py`` into ``folder`` (a NUWA model folder), so that
    ``diffusers.DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`` returns ``NuwaDiffusionPipeline``
    where nuwa_hf is installed. Returns the file names written."""
    import json

    folder = Path(folder)
    _write_atomic(folder / DIFFUSERS_MODEL_INDEX, json.dumps(diffusers_model_index(), indent=2) + "\n")
    _write_atomic(folder / DIFFUSERS_PIPELINE_FILE, _DIFFUSERS_PIPELINE_SOURCE)
    return [DIFFUSERS_MODEL_INDEX, DIFFUSERS_PIPELINE_FILE]


def write_remote_code(folder: str | os.PathLike) -> list[str]:
    """Write the self-contained model code into ``folder``, and the diffusers entry point
    (:func:`write_diffusers_entry_point`); returns the file names written."""
    folder = Path(folder)
    written = []
    for name in _MODEL_FILES:
        text = (_MODEL_DIR / name).read_text()
        text = text.replace("from ...ops import", "from .nuwa_ops import").replace("from ..vqgan.", "from .")
        _write_atomic(folder / name, text)
        written.append(name)
    for name in _VQGAN_FILES:
        _write_atomic(folder / name, (_VQGAN_DIR / name).read_text())
        written.append(name)
    for name in _OPS_FILES:
        _write_atomic(folder / name, (_OPS_DIR / name).read_text())
        written.append(name)
    for name in _PIPELINE_FILES:
        flat = _flat_pipeline_name(name)
        text = (_PIPELINES_DIR / (flat if _FLAT else name)).read_text()
        _write_atomic(folder / flat, text if _FLAT else _flat_pipeline_source(text))
        written.append(flat)
    for name, flat in _PACKAGE_FILES.items():
        text = (_PACKAGE_DIR / (flat if _FLAT else name)).read_text()
        _write_atomic(folder / flat, text if _FLAT else _flat_pipeline_source(text))
        written.append(flat)
    _write_atomic(folder / "nuwa_ops.py", (_OPS_DIR / ("nuwa_ops.py" if _FLAT else "__init__.py")).read_text())
    _write_atomic(folder / "remote_code.py", (_HERE / "remote_code.py").read_text())
    written += ["nuwa_ops.py", "remote_code.py"]
    written += write_diffusers_entry_point(folder)
    return written
