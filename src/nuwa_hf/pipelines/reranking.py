"""Reranking: the paper keeps the best of many samples by a text-visual score (CLIP); ``scorer=`` does the same, with
a CLIP-like scorer, a callable, or one of the three scorers the model computes itself (no second model; the pipeline
scores them, :meth:`NuwaPipeline._model_scores`): ``scorer="likelihood"``, the log-likelihood of each candidate's
tokens given the condition; ``scorer="condition_gain"``, that log-likelihood minus the one given the null
condition of classifier-free guidance (the pointwise mutual information of candidate and condition); and
``scorer="attribute_posterior"``, the model's posterior of the motion / digit / colour the prompt asks for against the
other values of each (:mod:`~nuwa_hf.pipelines.attribute_posterior`)."""

from __future__ import annotations

import os
from typing import Any, Optional, Protocol, Sequence, runtime_checkable

import numpy as np


# scorer="likelihood": rerank by the model's own log-likelihood of each candidate given the condition
LIKELIHOOD = "likelihood"
# scorer="condition_gain": log p(candidate | condition) - log p(candidate | null condition), what the condition adds
CONDITION_GAIN = "condition_gain"
# scorer="attribute_posterior": log p(candidate | prompt) - logsumexp over the prompt with its motion, digit or colour
# swapped for each other value (nuwa_hf.pipelines.attribute_posterior)
ATTRIBUTE_POSTERIOR = "attribute_posterior"
# The scorers the model computes itself (the names a model folder's task_sampling may give), in the order they are
# listed to users
MODEL_SCORERS = (LIKELIHOOD, CONDITION_GAIN, ATTRIBUTE_POSTERIOR)
MODEL_SCORER_NAMES = ", ".join(repr(name) for name in MODEL_SCORERS[:-1]) + f" or {MODEL_SCORERS[-1]!r}"
_MODEL_SCORER_DESCRIPTIONS = {
    LIKELIHOOD: "the model's own likelihood",
    CONDITION_GAIN: "the model's condition gain (likelihood given the condition minus given none)",
    ATTRIBUTE_POSTERIOR: "the model's posterior of the attributes the prompt asks for (against each other value)",
}


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
      given the request's condition, every task, no second model (one teacher-forced pass over the candidates);
    - ``"condition_gain"`` (:data:`CONDITION_GAIN`): that log-likelihood minus the candidate's log-likelihood given
      the null condition classifier-free guidance uses (an all-padding prompt for text, the "None" condition for a
      sketch): how much more likely the condition makes the candidate, which favours candidates that match the
      condition over ones that are likely whatever it says (a second teacher-forced pass). Only for requests with
      a condition (a prompt or a sketch): video prediction and image completion without a prompt have none to gain
      from, and are refused with advice to use ``"likelihood"``;
    - ``"attribute_posterior"`` (:data:`ATTRIBUTE_POSTERIOR`): the model's posterior probability of the motion, digit
      and colour the prompt asks for, each against its other values (the prompt with that word swapped, one
      teacher-forced pass per alternative), summed in log: typicality, shared by all alternatives, cancels. Only for
      prompts that name one of them (:mod:`~nuwa_hf.pipelines.attribute_posterior`); other requests are refused with
      advice to use ``"likelihood"`` (a model folder's default reranks them by the likelihood instead). On the
      shipped model it does not beat the likelihood (its posterior on its own samples saturates; docs/pilot_study.md,
      "Reranking by the model's reading of the asked attribute"), so no task uses it by default.

    The pipeline scores the last three itself; this object only marks the choice (``uses_model``, ``kind``).
    """

    def __init__(self, scorer: Any):
        self.uses_model = isinstance(scorer, str) and scorer in MODEL_SCORERS
        self.kind = scorer if self.uses_model else None
        if self.uses_model:
            self.scorer = None
            self.name = _MODEL_SCORER_DESCRIPTIONS[scorer]
            return
        if isinstance(scorer, (str, os.PathLike)):
            if not os.path.exists(scorer):  # a misspelt "likelihood" must not read as a missing folder only
                raise FileNotFoundError(
                    f"scorer={os.fspath(scorer)!r} is neither {LIKELIHOOD!r} (the model's own likelihood), "
                    f"{CONDITION_GAIN!r} (its likelihood given the condition minus given none) nor an existing folder "
                    "of a saved scorer (write one with scorer.save_pretrained(folder)).")
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
            raise RuntimeError(f"scorer={self.kind!r} is scored by the pipeline (NuwaPipeline._model_scores).")
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
