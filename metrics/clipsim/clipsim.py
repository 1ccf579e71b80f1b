"""A CLIPSIM-style text-visual similarity: a project-trained dual encoder by default, or local CLIP weights."""

from nuwa_hf.evaluation.metric_module_support import VisualMetric, datasets, load_project_scorer
from nuwa_hf.evaluation.text_visual_similarity import clip_similarity

_DESCRIPTION = """Mean cosine similarity between each generated sample and its text (NUWA's CLIPSIM). Offline, the
encoder is nuwa-hf's TextVisualDualEncoder, trained contrastively on captioned data; its held-out caption accuracy is
reported beside the score, and the score is named after it. clip_model_path=<folder> uses real CLIP weights
(a transformers CLIPModel folder with safetensors); videos are then scored frame by frame and averaged."""

_KWARGS_DESCRIPTION = """
Configs: "image" (default) and "video".
Args:
    predictions: generated images or videos.
    references: the text each sample was generated from.
    scorer / scorer_path: a trained TextVisualDualEncoder or its folder; or clip_model_path: a local CLIP folder.
Returns:
    clipsim, clipsim_std, clipsim_name, num_samples, clipsim_scorer and (project scorers) its held-out accuracy.
"""

_CITATION = """@inproceedings{wu2022nuwa,
title={N{\\"U}WA: Visual Synthesis Pre-training for Neural visUal World creAtion},
author={Wu, Chenfei and Liang, Jian and Ji, Lei and Yang, Fan and Fang, Yuejian and Jiang, Daxin and Duan, Nan},
booktitle={ECCV}, year={2022}}"""


class ClipSimilarity(VisualMetric):
    DESCRIPTION, INPUTS, CITATION = _DESCRIPTION, _KWARGS_DESCRIPTION, _CITATION
    CONFIGS = ("image", "video")

    def references_feature(self):
        return datasets.Value("string")  # the text each sample was generated from

    def convert_references(self, references):
        return list(references)

    def _compute(self, predictions, references, scorer=None, scorer_path=None, clip_model_path=None):
        if clip_model_path is not None:
            from nuwa_hf.evaluation.scorers.clip_adapter import LocalClipScorer

            scorer = LocalClipScorer(clip_model_path, visual=self.kind)
        else:
            scorer = load_project_scorer(scorer, scorer_path, "a text-visual scorer (or clip_model_path)")
        return clip_similarity(predictions, references, scorer)
