"""A CLIPSIM-style text-visual similarity: a project-trained dual encoder by default, or local CLIP weights."""

import datasets
import evaluate

from nuwa_hf.evaluation.text_visual_similarity import clip_similarity
from nuwa_hf.evaluation.metric_module_support import (IMAGE, VIDEO, check_config, load_project_scorer, pil_images,
                                                      pil_videos)

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


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ClipSimilarity(evaluate.Metric):
    def _kind(self):
        return check_config(self.config_name, ("image", "video"))

    def _info(self):
        visual = IMAGE if self._kind() == "image" else VIDEO
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": visual, "references": datasets.Value("string")}),
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (converted to 8-bit PIL images, stored as PNG)."""
        convert = pil_images if self._kind() == "image" else pil_videos
        return super().add_batch(predictions=convert(predictions), references=list(references), **kwargs)

    def _compute(self, predictions, references, scorer=None, scorer_path=None, clip_model_path=None):
        if clip_model_path is not None:
            from nuwa_hf.evaluation.scorers.clip_adapter import LocalClipScorer

            scorer = LocalClipScorer(clip_model_path, visual=self._kind())
        else:
            scorer = load_project_scorer(scorer, scorer_path, "a text-visual scorer (or clip_model_path)")
        return clip_similarity(predictions, references, scorer)
