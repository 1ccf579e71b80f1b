"""nuwa-hf: NUWA (Microsoft, 2021) for the Hugging Face ecosystem.

Importing the package registers NUWA with transformers: ``AutoConfig`` ("nuwa"), ``AutoModel`` (NuwaModel),
``AutoModelForSeq2SeqLM`` (NuwaForConditionalGeneration: an encoder-decoder that generates token sequences, which is
what that Auto class means), ``AutoProcessor`` / ``AutoImageProcessor``, the attention implementation
``"nuwa_3dna"``, and the eight task pipelines (``pipeline("nuwa-text-to-video", model=...)``).
"""

__version__ = "0.1.0"

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
from .models.vqgan import NuwaSegVQGAN, NuwaVQGAN
from .ops import nearby_attention, nearby_attention_mask, nearby_attention_reference
from .processing import NuwaImageProcessor, NuwaProcessor

AutoConfig.register("nuwa", NuwaConfig, exist_ok=True)
AutoModel.register(NuwaConfig, NuwaModel, exist_ok=True)
AutoModelForSeq2SeqLM.register(NuwaConfig, NuwaForConditionalGeneration, exist_ok=True)
AttentionInterface.register("nuwa_3dna", nuwa_3dna_attention_forward)
AutoImageProcessor.register(NuwaConfig, image_processor_classes={"pil": NuwaImageProcessor}, exist_ok=True)
AutoProcessor.register(NuwaConfig, NuwaProcessor, exist_ok=True)

from . import pipelines  # noqa: E402  (registers the eight task pipelines with transformers)
# The diffusers face, importable from the package root as the README uses it.
from .pipelines import NuwaDiffusionPipeline, NuwaPipelineOutput  # noqa: E402

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
