"""Reranking: the paper keeps the best of many samples by a text-visual score (CLIP); ``scorer=`` does the same."""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np


class CandidateScorer:
    """Scores candidates for reranking; higher is better. Wraps what a user passes as ``scorer=``:

    - an object with ``similarity(samples, texts) -> (N,)`` (``TextVisualDualEncoder``, ``LocalClipScorer`` from
      ``nuwa_hf.evaluation``, or any CLIP-like scorer): scores each candidate against the request's prompt;
    - a path to a scorer folder saved with ``TrainedScorer.save_pretrained`` (loaded with ``load_scorer``);
    - any callable ``scorer(candidates, prompt) -> sequence of floats``, where ``candidates`` is a list of PIL images
      (image tasks) or of frame lists (video tasks) and ``prompt`` the request's text (or None).
    """

    def __init__(self, scorer: Any):
        if isinstance(scorer, (str, os.PathLike)):
            from ..evaluation import load_scorer
            scorer = load_scorer(scorer)
        if not (hasattr(scorer, "similarity") or callable(scorer)):
            raise TypeError(
                "scorer must have similarity(samples, texts), be a callable scorer(candidates, prompt) -> scores, or be "
                f"a path to a saved scorer; got {type(scorer).__name__}."
            )
        self.scorer = scorer
        self.name = getattr(scorer, "name", None) or type(scorer).__name__

    def __call__(self, candidates: list, prompt: Optional[str]) -> list[float]:
        if hasattr(self.scorer, "similarity"):
            if prompt is None:
                raise ValueError(
                    f"The scorer {self.name} compares samples with text, but this request has no prompt: pass a "
                    "callable scorer(candidates, prompt) for tasks without text, or no scorer."
                )
            samples = [np.stack([np.asarray(f) for f in c]) if isinstance(c, list) else np.asarray(c) for c in candidates]
            scores = self.scorer.similarity(np.stack(samples), [prompt] * len(candidates))
        else:
            scores = self.scorer(candidates, prompt)
        scores = [float(s) for s in (scores.tolist() if hasattr(scores, "tolist") else scores)]
        if len(scores) != len(candidates):
            raise ValueError(f"The scorer returned {len(scores)} scores for {len(candidates)} candidates.")
        return scores
