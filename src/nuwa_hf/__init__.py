"""nuwa-hf: NUWA (Microsoft, 2021) for the Hugging Face ecosystem.

Importing the package registers NUWA with transformers: ``AutoConfig`` ("nuwa"), ``AutoModel`` (NuwaModel),
``AutoModelForSeq2SeqLM`` (NuwaForConditionalGeneration: an encoder-decoder that generates token sequences, which is
what that Auto class means), and the attention implementation ``"nuwa_3dna"``.
"""

__version__ = "0.1.0"

from transformers import AttentionInterface, AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from .models.nuwa import (
    NuwaConfig,
    NuwaForConditionalGeneration,
    NuwaModel,
    NuwaPreTrainedModel,
    nuwa_3dna_attention_forward,
)
from .ops import nearby_attention, nearby_attention_mask, nearby_attention_reference

AutoConfig.register("nuwa", NuwaConfig, exist_ok=True)
AutoModel.register(NuwaConfig, NuwaModel, exist_ok=True)
AutoModelForSeq2SeqLM.register(NuwaConfig, NuwaForConditionalGeneration, exist_ok=True)
AttentionInterface.register("nuwa_3dna", nuwa_3dna_attention_forward)

__all__ = [
    "NuwaConfig",
    "NuwaForConditionalGeneration",
    "NuwaModel",
    "NuwaPreTrainedModel",
    "__version__",
    "nearby_attention",
    "nearby_attention_mask",
    "nearby_attention_reference",
]
