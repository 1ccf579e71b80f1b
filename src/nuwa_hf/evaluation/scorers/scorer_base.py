"""What every scorer the project trains shares: a held-out report, and safetensors save/load.

A scorer is a small network the project trains to read generated samples (a digit classifier, a motion classifier,
a video feature network, a text-visual dual encoder). A score computed through it is only as good as the scorer, so
each one carries the accuracy it reached on data it was not trained on, and every metric that uses it prints that
accuracy beside its score. A scorer without such a report refuses to score.

On disk (``save_pretrained(folder)``):
    folder/config.json        {"scorer_class", "config" (constructor arguments), "held_out" (the report), "format"}
    folder/model.safetensors  the weights (never a pickle)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Iterator, Optional, Type, Union

import torch
from safetensors.torch import load_file, save_file

from ...file_io import atomic_write, atomic_write_text
from ..image_inputs import split_into_batches

PathLike = Union[str, os.PathLike]
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_TAG = "nuwa-hf-scorer/1"

SCORER_CLASSES: Dict[str, Type["TrainedScorer"]] = {}


class TrainedScorer(torch.nn.Module):
    """Base class. Subclasses set ``short_name`` (e.g. "digit CNN", or a property naming their configuration) and
    call ``super().__init__(**config)`` with the JSON-serialisable constructor arguments, which are saved and passed
    back on load.

    ``held_out`` is ``None`` until the scorer is trained/validated; afterwards a dict:
        {"metrics": {name: value}, "chance": {name: value}, "split": str, "num_examples": int, "trained_on": str}
    """

    short_name: ClassVar[str] = "scorer"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        SCORER_CLASSES[cls.__name__] = cls

    def __init__(self, **config: Any):
        super().__init__()
        json.dumps(config)  # fail now, not at save time, if a constructor argument cannot be saved
        self.config: Dict[str, Any] = dict(config)
        self.held_out: Optional[Dict[str, Any]] = None

    # -- inference ---------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def evaluating(self) -> Iterator["TrainedScorer"]:
        """Eval mode (no dropout, frozen batch-norm statistics) and no autograd inside the block; the previous
        train/eval mode comes back afterwards, so scoring in the middle of training does not end training mode."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield self
        finally:
            self.train(was_training)

    def in_batches(self, inputs: torch.Tensor, batch_size: int, score: Callable[[torch.Tensor], Any]) -> list:
        """``[score(inputs[rows]) for each batch of at most batch_size rows]``, in eval mode without autograd."""
        with self.evaluating():
            return [score(inputs[rows]) for rows in split_into_batches(len(inputs), batch_size)]

    # -- naming and reporting ---------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Honest name for reports, e.g. "digit CNN trained on MNIST train"."""
        if self.held_out and self.held_out.get("trained_on"):
            return f"{self.short_name} trained on {self.held_out['trained_on']}"
        return f"{self.short_name} (untrained)"

    def record_held_out(
        self, metrics: Dict[str, float], chance: Dict[str, float], split: str, num_examples: int, trained_on: str
    ) -> Dict[str, Any]:
        """Store the held-out report (see class docstring) and return it."""
        self.held_out = {
            "metrics": {key: float(value) for key, value in metrics.items()},
            "chance": {key: float(value) for key, value in chance.items()},
            "split": split,
            "num_examples": int(num_examples),
            "trained_on": trained_on,
        }
        return self.held_out

    def report(self, prefix: str) -> Dict[str, Any]:
        """Keys to print beside a score: ``{prefix}_scorer`` and ``{prefix}_scorer_held_out_<metric>`` for each metric.

        Raises if the scorer has no held-out report: a score from an unvalidated scorer means nothing.
        """
        if not self.held_out:
            raise ValueError(
                f"The {self.short_name} has no held-out accuracy, so its scores cannot be trusted. Train it with "
                "examples/train_scorers.py (whose fit(...) measures held-out accuracy) or load a trained one with "
                "from_pretrained(folder)."
            )
        out: Dict[str, Any] = {f"{prefix}_scorer": self.name}
        for key, value in self.held_out["metrics"].items():
            out[f"{prefix}_scorer_held_out_{key}"] = value
        for key, value in self.held_out["chance"].items():
            out[f"{prefix}_scorer_chance_{key}"] = value
        out[f"{prefix}_scorer_held_out_examples"] = self.held_out["num_examples"]
        return out

    # -- persistence ------------------------------------------------------------------------------------------------

    def save_pretrained(self, folder: PathLike) -> Path:
        """Write config.json and model.safetensors into ``folder`` (each file atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {key: value.detach().cpu().contiguous() for key, value in self.state_dict().items()}
        atomic_write(folder / WEIGHTS_NAME, lambda temporary: save_file(tensors, temporary, metadata={"format": "pt"}))
        document = {
            "format": FORMAT_TAG,
            "scorer_class": type(self).__name__,
            "config": self.config,
            "held_out": self.held_out,
        }
        atomic_write_text(folder / CONFIG_NAME, json.dumps(document, indent=2, allow_nan=False) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, folder: PathLike) -> "TrainedScorer":
        """Load a scorer saved by ``save_pretrained``. Called on the base class it picks the saved class."""
        folder = Path(folder)
        config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        if not config_path.is_file() or not weights_path.is_file():
            raise FileNotFoundError(
                f"{folder} is not a saved nuwa-hf scorer: it needs {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(write them with scorer.save_pretrained(folder))."
            )
        document = json.loads(config_path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT_TAG:
            raise ValueError(f"{config_path} is not a nuwa-hf scorer config (format {document.get('format')!r}).")
        saved_class = SCORER_CLASSES.get(document["scorer_class"])
        if saved_class is None:
            raise ValueError(f"Unknown scorer class {document['scorer_class']!r} in {config_path}.")
        if cls is not TrainedScorer and not issubclass(saved_class, cls):
            raise ValueError(f"{folder} holds a {saved_class.__name__}, not a {cls.__name__}.")
        scorer = saved_class(**document["config"])
        scorer.load_state_dict(load_file(str(weights_path)), strict=True)
        scorer.held_out = document.get("held_out")
        return scorer.eval()


def load_scorer(folder: PathLike) -> TrainedScorer:
    """Load whichever scorer class was saved in ``folder``."""
    return TrainedScorer.from_pretrained(folder)


def scorer_report(scorer: Any, prefix: str) -> Dict[str, Any]:
    """The report keys for any scorer: a project scorer's held-out report, or the name of an external model."""
    if isinstance(scorer, TrainedScorer):
        return scorer.report(prefix)
    name = getattr(scorer, "name", None) or type(scorer).__name__
    return {f"{prefix}_scorer": f"{name} (external, not validated by nuwa-hf)"}


def chance_of_labels(labels: torch.Tensor, num_classes: int) -> float:
    """Accuracy of always answering the most frequent class: the baseline a scorer must beat."""
    if len(labels) == 0:
        return math.nan
    return float(torch.bincount(labels.long(), minlength=num_classes).max()) / len(labels)
