"""The default scorers, loaded from the cache that ``examples/train_scorers.py`` fills (training is not part of the
package):

    python examples/train_scorers.py default --visual video    # once: trains into $NUWA_HF_CACHE/scorers (minutes)
    scorers = default_scorers("video")
    table = task_metrics("T2V", generated, reference, texts=..., attributes=..., scorers=scorers)

They are trained on the project's own worlds with held-out data that never overlaps the training data (MNIST train vs
MNIST test digits; the worlds' "train" split vs their "test" split), and each reports its held-out accuracy.
"""

from __future__ import annotations

from typing import Optional

from ...file_io import PathLike, cache_root
from .scorer_base import CONFIG_NAME, load_scorer

# Cache sub-folder names of the default scorers, for image tasks and for video tasks.
IMAGE_SCORERS = ("color_classifier", "text_image", "image_digits")
VIDEO_SCORERS = ("motion_classifier", "video_features", "text_video", "frame_digits")
TRAIN_COMMAND = "python examples/train_scorers.py default --visual {visual}"


def default_scorers(visual: str = "video", cache: Optional[PathLike] = None):
    """An ``EvaluationScorers`` for image tasks (``visual="image"``) or video tasks (``"video"``), loaded from
    ``<cache>/scorers/<name>``.

    Image tasks get the digit world's digit reader, colour classifier and text-image encoder; video tasks the
    captioned Moving MNIST frame digit reader, motion classifier, FVD network and text-video encoder.

    Raises:
        FileNotFoundError: a scorer is not in the cache; the message names the command that trains it
            (``python examples/train_scorers.py default --visual video``, from the repository).
    """
    from ..task_evaluation import EvaluationScorers

    if visual not in ("image", "video"):
        raise ValueError(f"visual must be 'image' or 'video', got {visual!r}.")
    folder = cache_root(cache) / "scorers"
    names = IMAGE_SCORERS if visual == "image" else VIDEO_SCORERS
    missing = [name for name in names if not (folder / name / CONFIG_NAME).is_file()]
    if missing:
        raise FileNotFoundError(
            f"No trained scorers {missing} under {folder}: train them with `{TRAIN_COMMAND.format(visual=visual)}` "
            "(from the repository; minutes on a CPU)."
        )
    found = {name: load_scorer(folder / name) for name in names}
    if visual == "image":
        return EvaluationScorers(digit_classifier=found["image_digits"], text_visual=found["text_image"],
                                 attribute_classifiers={"color": found["color_classifier"]})
    return EvaluationScorers(digit_classifier=found["frame_digits"], motion_classifier=found["motion_classifier"],
                             video_features=found["video_features"], text_visual=found["text_video"])
