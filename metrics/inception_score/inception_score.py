"""An Inception-Score-style metric computed with a classifier the project trains (no Inception logits offline)."""

from nuwa_hf.evaluation.inception_scoring import inception_score
from nuwa_hf.evaluation.metric_module_support import VisualMetric, load_project_scorer

_DESCRIPTION = """exp(E_x KL(p(y|x) || p(y))) (Salimans et al., 2016) with p(y|x) from a classifier trained by nuwa-hf
(e.g. the MNIST digit CNN), named after it: "IS (digit CNN trained on MNIST train)". Between 1 and the number of
classes; higher means confident and varied predictions. The classifier's held-out accuracy is reported beside it."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated images (no references are needed).
    scorer: a trained classifier with predict_proba(images) -> (N, K), e.g. nuwa_hf.evaluation.DigitClassifier; or
    scorer_path: a folder written by its save_pretrained.
    splits: number of chunks for the mean/std (default 1).
Returns:
    inception_score, inception_score_std, inception_score_name, inception_score_scorer, and the scorer's held-out
    accuracy (inception_score_scorer_held_out_accuracy) and chance level.
"""

_CITATION = """@inproceedings{salimans2016improved, title={Improved Techniques for Training GANs},
author={Salimans, Tim and Goodfellow, Ian and Zaremba, Wojciech and Cheung, Vicki and Radford, Alec and Chen, Xi},
booktitle={NeurIPS}, year={2016}}"""


class ClassifierInceptionScore(VisualMetric):
    DESCRIPTION, INPUTS, CITATION = _DESCRIPTION, _KWARGS_DESCRIPTION, _CITATION

    def references_feature(self):
        return None  # generated images alone

    def _compute(self, predictions, scorer=None, scorer_path=None, splits=1):
        classifier = load_project_scorer(scorer, scorer_path, "a trained classifier")
        return inception_score(predictions, classifier, splits)
