"""Reranking: the paper keeps the best of many samples by a text-visual score (CLIP); ``scorer=`` does the same, with
a CLIP-like scorer, a callable, or ``scorer="likelihood"``: the model's own log-likelihood of each candidate's tokens
given the condition (no second model; the pipeline computes it, :meth:`NuwaPipeline._likelihood_scores`)."""

from __future__ import annotations

import os
from typing import Any, Optional, Protocol, Sequence, runtime_checkable

import numpy as np


# scorer="likelihood": rerank by the model's own log-likelihood of each candidate given the condition
LIKELIHOOD = "likelihood"


@runtime_checkable
class TextVisualScorer(Protocol):
    """The one scorer interface reranking depends on: ``similarity(samples, texts) -> (N,)`` scores, higher meaning a
    better match. ``TextVisualDualEncoder`` and ``LocalClipScorer`` (``nuwa_hf.evaluation``) have it, and so has any
    CLIP-like object; the concrete scorers are imported only when a path to a saved one is given."""

    def similarity(self, samples: Any, texts: Sequence[str]) -> Any: ...


class CandidateScorer:
    """Scores candidates for reranking; higher is better. Wraps what a user passes as ``scorer=``:

    - a :class:`TextVisualScorer`, an object with ``similarity(samples, texts) -> (N,)`` (``TextVisualDualEncoder``,
      ``LocalClipScorer`` from ``nuwa_hf.evaluation``, or any CLIP-like scorer): scores each candidate against the
      request's prompt;
    - a path to a scorer folder saved with ``TrainedScorer.save_pretrained`` (loaded with ``load_scorer``);
    - any callable ``scorer(candidates, prompt) -> sequence of floats``, where ``candidates`` is a list of PIL images
      (image tasks) or of frame lists (video tasks) and ``prompt`` the request's text (or None);
    - ``"likelihood"`` (:data:`LIKELIHOOD`): the model's own summed log-likelihood of each candidate's token grid
      given the request's condition, every task, no second model. The pipeline scores these itself (one
      teacher-forced pass over the candidates); this object only marks the choice (``uses_model``).
    """

    def __init__(self, scorer: Any):
        self.uses_model = isinstance(scorer, str) and scorer == LIKELIHOOD
        if self.uses_model:
            self.scorer, self.name = None, "the model's own likelihood"
            return
        if isinstance(scorer, (str, os.PathLike)):
            if not os.path.exists(scorer):  # a misspelt "likelihood" must not read as a missing folder only
                raise FileNotFoundError(
                    f"scorer={os.fspath(scorer)!r} is neither {LIKELIHOOD!r} (the model's own likelihood) nor an "
                    "existing folder of a saved scorer (write one with scorer.save_pretrained(folder)).")
            from ..evaluation import load_scorer
            scorer = load_scorer(scorer)
        if not (isinstance(scorer, TextVisualScorer) or callable(scorer)):
            raise TypeError(
                "scorer must have similarity(samples, texts), be a callable scorer(candidates, prompt) -> scores, or be "
                f"a path to a saved scorer; got {type(scorer).__name__}."
            )
        self.scorer = scorer
        self.name = getattr(scorer, "name", None) or type(scorer).__name__

    def __call__(self, candidates: list, prompt: Optional[str]) -> list[float]:
        if self.uses_model:
            raise RuntimeError("scorer='likelihood' is scored by the pipeline (NuwaPipeline._likelihood_scores).")
        if isinstance(self.scorer, TextVisualScorer):
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
