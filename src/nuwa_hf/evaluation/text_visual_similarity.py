"""A CLIPSIM-style text-visual score: the mean cosine similarity between each generated sample and the text it was
generated from (NUWA reports CLIPSIM with OpenAI CLIP; for videos, averaged over frames).

Offline there is no CLIP, so the default scorer is the project's ``TextVisualDualEncoder``; its held-out caption
accuracy is reported beside the score. A user with CLIP weights on disk passes ``LocalClipScorer(folder)`` instead.
Values are only comparable between runs that use the same scorer.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

from .image_inputs import as_texts
from .scorers.scorer_base import scorer_report


def clip_similarity(samples: Any, texts: Sequence[str], scorer: Any) -> Dict[str, Any]:
    """Mean and std of ``scorer.similarity(samples, texts)``, with the scorer's name and held-out report.

    Returns ``{"clipsim", "clipsim_std", "clipsim_name", "num_samples", <scorer report>}``.
    """
    report = scorer_report(scorer, "clipsim")
    similarities = scorer.similarity(samples, as_texts(texts)).double()
    return {
        "clipsim": float(similarities.mean()),
        "clipsim_std": float(similarities.std(unbiased=False)),
        "clipsim_name": f"CLIPSIM-style ({getattr(scorer, 'name', type(scorer).__name__)})",
        "num_samples": len(similarities),
        **report,
    }
