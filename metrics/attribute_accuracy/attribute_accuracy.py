"""Attribute accuracy: the fraction of generated samples a project-trained classifier reads as the intended label."""

import datasets
import evaluate

from nuwa_hf.evaluation.attributes import attribute_accuracy, video_digit_accuracy
from nuwa_hf.evaluation.metric_module_support import (IMAGE, VIDEO, check_config, load_project_scorer, pil_images,
                                                      pil_videos)

_DESCRIPTION = """Label accuracy of generated samples (NUWA's T2V "Acc"), read by a classifier trained by nuwa-hf on the
data's own labels. The classifier's own held-out accuracy is reported beside the score."""

_KWARGS_DESCRIPTION = """
Configs: "image" (default; images, e.g. the digit of a generated MNIST image) and "video" (videos: motion with a
MotionClassifier, or the digits shown with a VideoFeatureNetwork / DigitClassifier).
Args:
    predictions: generated images or videos.
    references: intended labels per sample: an id (int), a name (str), or a list of ids or names (several objects).
    scorer / scorer_path: the trained classifier, or the folder it was saved to.
    attribute: name of the attribute in the result keys (default: "digit" for digit readers, else the classifier's).
Returns:
    <attribute>_accuracy, num_samples, <attribute>_accuracy_scorer and its held-out accuracy and chance level.
"""

_CITATION = ""


def _label_features(video):
    visual = VIDEO if video else IMAGE
    options = [
        datasets.Features({"predictions": visual, "references": datasets.Value("int64")}),
        datasets.Features({"predictions": visual, "references": datasets.Value("string")}),
    ]
    options.append(datasets.Features({"predictions": visual, "references": datasets.List(datasets.Value("int64"))}))
    options.append(datasets.Features({"predictions": visual, "references": datasets.List(datasets.Value("string"))}))
    return options


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AttributeAccuracy(evaluate.Metric):
    def _video(self):
        return check_config(self.config_name, ("image", "video")) == "video"

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_label_features(self._video()),
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (converted to 8-bit PIL images, stored as PNG)."""
        convert = pil_videos if self._video() else pil_images
        references = references.tolist() if hasattr(references, "tolist") else list(references)
        return super().add_batch(predictions=convert(predictions), references=references, **kwargs)

    def _compute(self, predictions, references, scorer=None, scorer_path=None, attribute=None):
        from nuwa_hf.evaluation.scorers import DigitClassifier, DigitSetClassifier, VideoFeatureNetwork

        classifier = load_project_scorer(scorer, scorer_path, "a trained classifier")
        is_digit_reader = isinstance(classifier, (DigitClassifier, DigitSetClassifier, VideoFeatureNetwork))
        if self._video() and is_digit_reader:
            return video_digit_accuracy(predictions, references, classifier)
        name = attribute or ("digit" if is_digit_reader else classifier.config.get("attribute", "attribute"))
        return attribute_accuracy(predictions, references, classifier, name)
