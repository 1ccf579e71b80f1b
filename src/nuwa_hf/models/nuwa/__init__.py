from .configuration_nuwa import NuwaConfig
from .generation_nuwa import NuwaGuidanceLogitsProcessor, NuwaKnownTokensLogitsProcessor, make_generation_cache
from .modeling_nuwa import (
    NuwaEncoderOutput,
    NuwaForConditionalGeneration,
    NuwaModel,
    NuwaPreTrainedModel,
    NuwaSeq2SeqLMOutput,
    nuwa_3dna_attention_forward,
)
from .visual_generation_nuwa import NuwaVisualGenerationOutput

__all__ = [
    "NuwaConfig",
    "NuwaEncoderOutput",
    "NuwaForConditionalGeneration",
    "NuwaGuidanceLogitsProcessor",
    "NuwaKnownTokensLogitsProcessor",
    "NuwaModel",
    "NuwaPreTrainedModel",
    "NuwaSeq2SeqLMOutput",
    "NuwaVisualGenerationOutput",
    "make_generation_cache",
    "nuwa_3dna_attention_forward",
]
