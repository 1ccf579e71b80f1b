"""nuwa-hf: NUWA (Microsoft, 2021) for the Hugging Face ecosystem."""

__version__ = "0.1.0"

from .ops import nearby_attention, nearby_attention_mask, nearby_attention_reference

__all__ = ["nearby_attention", "nearby_attention_mask", "nearby_attention_reference", "__version__"]
