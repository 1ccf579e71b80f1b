"""diffusers entry point of this NUWA model folder: the class lives in the nuwa_hf package; nothing is copied here.

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
