"""Inception Score, exp(E_x KL(p(y|x) || p(y))) (Salimans et al., 2016), computed from any classifier's
probabilities. The real IS needs Inception logits, which cannot be had offline, so the project computes it with a
classifier it trains (e.g. the MNIST digit CNN) and names it so: "IS (digit CNN trained on MNIST train)".

It runs from 1 (every sample gets the same prediction, or every prediction is uniform) to the number of classes
(every sample is classified with certainty and the classes are used equally).
"""

from __future__ import annotations

from typing import Any, Dict

import torch

from .scorers.scorer_base import scorer_report


def inception_score_from_probabilities(probabilities: torch.Tensor, splits: int = 1) -> tuple[float, float]:
    """(mean, std over ``splits`` equal chunks) of the IS of class probabilities (N, K) whose rows sum to 1."""
    probabilities = torch.as_tensor(probabilities, dtype=torch.float64)
    if probabilities.ndim != 2 or len(probabilities) == 0:
        raise ValueError(f"Expected class probabilities shaped (N, K), got {tuple(probabilities.shape)}.")
    if not torch.allclose(probabilities.sum(-1), torch.ones(len(probabilities), dtype=torch.float64), atol=1e-4):
        raise ValueError("Rows of class probabilities must sum to 1: apply softmax to logits first.")
    if not 1 <= splits <= len(probabilities):
        raise ValueError(f"splits must lie in [1, N={len(probabilities)}], got {splits}.")
    scores = []
    for chunk in torch.tensor_split(probabilities, splits):
        marginal = chunk.mean(dim=0, keepdim=True)
        # 0 * log 0 is taken as 0 (xlogy): a class the sample never gets adds nothing.
        kl = (torch.special.xlogy(chunk, chunk) - torch.special.xlogy(chunk, marginal)).sum(-1)
        scores.append(torch.exp(kl.mean()))
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False))


def inception_score(samples: Any, classifier: Any, splits: int = 1) -> Dict[str, Any]:
    """IS of ``samples`` read by ``classifier`` (anything with ``predict_proba(samples) -> (N, K)``).

    Returns ``{"inception_score", "inception_score_std", "inception_score_name", <scorer report>}``.
    """
    report = scorer_report(classifier, "inception_score")
    mean, std = inception_score_from_probabilities(classifier.predict_proba(samples), splits)
    return {
        "inception_score": mean,
        "inception_score_std": std,
        "inception_score_name": f"IS ({getattr(classifier, 'name', type(classifier).__name__)})",
        **report,
    }
