"""Attribute accuracy: the fraction of generated samples a project-trained classifier reads as the intended label."""

from nuwa_hf.evaluation.attributes import attribute_accuracy, video_digit_accuracy
from nuwa_hf.evaluation.metric_module_support import VisualMetric, datasets, load_project_scorer

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


class AttributeAccuracy(VisualMetric):
    DESCRIPTION, INPUTS, CITATION = _DESCRIPTION, _KWARGS_DESCRIPTION, _CITATION
    CONFIGS = ("image", "video")

    def references_feature(self):
        # An id, a name, or a list of ids or names (several objects) per sample.
        one = [datasets.Value("int64"), datasets.Value("string")]
        return one + [datasets.List(option) for option in one]

    def convert_references(self, references):
        return references.tolist() if hasattr(references, "tolist") else list(references)

    def _compute(self, predictions, references, scorer=None, scorer_path=None, attribute=None):
        from nuwa_hf.evaluation.scorers import DigitClassifier, DigitSetClassifier, VideoFeatureNetwork

        classifier = load_project_scorer(scorer, scorer_path, "a trained classifier")
        is_digit_reader = isinstance(classifier, (DigitClassifier, DigitSetClassifier, VideoFeatureNetwork))
        if self.kind == "video" and is_digit_reader:
            return video_digit_accuracy(predictions, references, classifier)
        name = attribute or ("digit" if is_digit_reader else classifier.config.get("attribute", "attribute"))
        return attribute_accuracy(predictions, references, classifier, name)
