"""nuwa-hf: NUWA (Microsoft, 2021) for the Hugging Face ecosystem.

Importing the package registers NUWA with transformers: ``AutoConfig`` ("nuwa"), ``AutoModel`` (NuwaModel),
``AutoModelForSeq2SeqLM`` (NuwaForConditionalGeneration: an encoder-decoder that generates token sequences, which is
what that Auto class means), ``AutoProcessor`` / ``AutoImageProcessor``, the attention implementation
``"nuwa_3dna"``, and the eight task pipelines (``pipeline("nuwa-text-to-video", model=...)``).

A light core (:mod:`nuwa_hf.lazy_imports`): importing the package loads torch, transformers, safetensors and
huggingface_hub only. diffusers loads when a model is built or loaded (the VQ-GANs are diffusers ``VQModel``s) or
``NuwaDiffusionPipeline`` / ``NuwaVQGAN`` / ``NuwaSegVQGAN`` are first named; datasets, accelerate, evaluate and
gradio load with the subpackages that use them (``nuwa_hf.data``, ``nuwa_hf.training``, ...).
"""

from .version import __version__

from transformers import (
    AttentionInterface,
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForSeq2SeqLM,
    AutoProcessor,
)

from .models.nuwa import (
    NuwaConfig,
    NuwaForConditionalGeneration,
    NuwaModel,
    NuwaPreTrainedModel,
    nuwa_3dna_attention_forward,
)
from .ops import nearby_attention, nearby_attention_mask, nearby_attention_reference
from .processing import NuwaImageProcessor, NuwaProcessor

AutoConfig.register("nuwa", NuwaConfig, exist_ok=True)
AutoModel.register(NuwaConfig, NuwaModel, exist_ok=True)
AutoModelForSeq2SeqLM.register(NuwaConfig, NuwaForConditionalGeneration, exist_ok=True)
AttentionInterface.register("nuwa_3dna", nuwa_3dna_attention_forward)
AutoImageProcessor.register(NuwaConfig, image_processor_classes={"pil": NuwaImageProcessor}, exist_ok=True)
AutoProcessor.register(NuwaConfig, NuwaProcessor, exist_ok=True)

from . import pipelines  # noqa: E402  (registers the eight task pipelines with transformers)
from .lazy_imports import lazy_exports  # noqa: E402

# Loaded on first use (they import diffusers): the VQ-GANs, and the diffusers face that the README imports from here.
__getattr__, __dir__ = lazy_exports(__name__, globals(), {
    ".models.vqgan": ("NuwaVQGAN", "NuwaSegVQGAN"),
    ".pipelines.diffusers_pipeline": ("NuwaDiffusionPipeline", "NuwaPipelineOutput"),
})

__all__ = [
    "NuwaConfig",
    "NuwaDiffusionPipeline",
    "NuwaImageProcessor",
    "NuwaProcessor",
    "NuwaSegVQGAN",
    "NuwaVQGAN",
    "NuwaForConditionalGeneration",
    "NuwaModel",
    "NuwaPipelineOutput",
    "NuwaPreTrainedModel",
    "__version__",
    "nearby_attention",
    "nearby_attention_mask",
    "nearby_attention_reference",
]
