"""NUWA's processor: text tokenizer + image processor + the VQ-GAN step, from user inputs to model token grids and back.

NUWA reads and writes token grids (section 3.1 of the paper): text ids `(B, L)`, visual tokens `(B, T, h, w)` and
sketch tokens `(B, T, h, w)`. The processor owns every step between those grids and what users hold (strings, PIL
images, frame lists, class maps), including the VQ-GAN encoders and decoders, which are attached to it as
`processor.vqgan` and `processor.seg_vqgan` and saved in the sub-folders `vqgan/` and `vqgan_seg/`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from transformers import AutoTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from ..models.vqgan.checkpointing import atomic_directory
from ..models.vqgan.modeling_seg_vqgan import NuwaSegVQGAN
from ..models.vqgan.modeling_vqgan import NuwaVQGAN
from .image_processing_nuwa import NuwaImageProcessor


logger = logging.getLogger(__name__)

VQGAN_SUBFOLDER = "vqgan"
SEG_VQGAN_SUBFOLDER = "vqgan_seg"
_NOT_A_TOKENIZER_FIELD = ("vqgan", "seg_vqgan")


def _is_array(value) -> bool:
    return isinstance(value, (np.ndarray, torch.Tensor))


def _ndim(value) -> int:
    return value.ndim if _is_array(value) else -1


class NuwaProcessor(ProcessorMixin):
    r"""
    Turns text, images, videos and sketches into NUWA's inputs, and visual token grids back into pictures.

    Args:
        image_processor ([`NuwaImageProcessor`]): resizing, cropping and normalisation.
        tokenizer (`PreTrainedTokenizerBase`): the text tokenizer (see `build_clip_tokenizer`,
            `train_caption_tokenizer`).
        vqgan ([`NuwaVQGAN`], *optional*): codes images and video frames; needed for `images=` / `videos=` and
            [`decode_visual`].
        seg_vqgan ([`NuwaSegVQGAN`], *optional*): codes sketches; needed for `sketches=` and [`decode_sketch`].
        max_text_length (`int`, *optional*): longest text encoding; defaults to the tokenizer's `model_max_length`.
            Longer prompts are truncated with a warning.

    `NuwaProcessor.from_pretrained(folder)` loads the VQ-GANs from `folder/vqgan` and `folder/vqgan_seg` when those
    exist; `save_pretrained` writes them there (safetensors).
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        vqgan: NuwaVQGAN | None = None,
        seg_vqgan: NuwaSegVQGAN | None = None,
        max_text_length: int | None = None,
        **kwargs,
    ):
        if not isinstance(image_processor, NuwaImageProcessor):
            raise TypeError(f"`image_processor` must be a NuwaImageProcessor, got {type(image_processor).__name__}.")
        super().__init__(image_processor, tokenizer, **kwargs)
        if max_text_length is not None and (not isinstance(max_text_length, int) or max_text_length < 3):
            raise ValueError(
                f"`max_text_length` must be an int >= 3 (start, one token, end), got {max_text_length!r}."
            )
        self.max_text_length = max_text_length
        self.vqgan = vqgan
        self.seg_vqgan = seg_vqgan

    # ----------------------------------------------------------------------------------------------------------------
    # Attached models

    @property
    def vqgan(self) -> NuwaVQGAN | None:
        return self.__dict__.get("_vqgan")

    @vqgan.setter
    def vqgan(self, model: NuwaVQGAN | None) -> None:
        if model is not None and not isinstance(model, NuwaVQGAN):
            raise TypeError(f"`vqgan` must be a NuwaVQGAN or None, got {type(model).__name__}.")
        self.__dict__["_vqgan"] = model

    @property
    def seg_vqgan(self) -> NuwaSegVQGAN | None:
        return self.__dict__.get("_seg_vqgan")

    @seg_vqgan.setter
    def seg_vqgan(self, model: NuwaSegVQGAN | None) -> None:
        if model is not None and not isinstance(model, NuwaSegVQGAN):
            raise TypeError(f"`seg_vqgan` must be a NuwaSegVQGAN or None, got {type(model).__name__}.")
        self.__dict__["_seg_vqgan"] = model

    def _require(self, name: str, purpose: str):
        model = getattr(self, name)
        if model is None:
            cls, subfolder = ("NuwaVQGAN", VQGAN_SUBFOLDER) if name == "vqgan" else ("NuwaSegVQGAN", SEG_VQGAN_SUBFOLDER)
            raise ValueError(
                f"{purpose} needs `processor.{name}`, which is not set: attach one (`processor.{name} = "
                f"{cls}.from_pretrained(...)`), load a folder that has a `{subfolder}/` sub-folder, or pass "
                "`return_tokens=False` to get pixel values / class maps instead of tokens."
            )
        return model

    @property
    def text_max_length(self) -> int | None:
        """The effective maximum text length (`max_text_length`, else the tokenizer's, if it is a real limit)."""
        if self.max_text_length is not None:
            return self.max_text_length
        limit = getattr(self.tokenizer, "model_max_length", None)
        return limit if isinstance(limit, int) and limit < 1_000_000 else None

    # ----------------------------------------------------------------------------------------------------------------
    # Encoding

    def __call__(
        self,
        text: str | list[str] | None = None,
        images=None,
        videos=None,
        sketches=None,
        return_tensors: str | None = "pt",
        padding: bool | str = "longest",
        max_length: int | None = None,
        return_tokens: bool = True,
        chunk_size: int | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Prepare model inputs.

        Args:
            text (`str` or `list[str]`): prompts; an empty prompt is an error, prompts longer than the maximum length
                are truncated with a warning.
            images: one image or a batch (PIL images, arrays `(H, W, C)` / `(C, H, W)`, batch arrays).
            videos: one video (list of frames or array `(T, H, W, C)`) or a batch (list of videos, array `(B, T, ...)`).
            sketches: class-index maps. A 2-D map or a list of 2-D maps (or an array `(B, H, W)`) are image sketches;
                a list of frame lists (or of `(T, H, W)` arrays, or an array `(B, T, H, W)`) are video sketches.
            return_tensors (`str`, defaults to `"pt"`): `"pt"` or `"np"`.
            padding, max_length: text padding (`"longest"`, `"max_length"`, ...) and an override of the maximum.
            return_tokens (`bool`, defaults to `True`): run the VQ-GANs; with `False`, return `pixel_values`
                `(B, T, 3, H, W)` and `sketch_maps` `(B, T, H, W)` instead of token grids.
            chunk_size (`int`, *optional*): frames coded at once by the VQ-GANs (memory bound for long videos).
            kwargs: passed to the image processor (e.g. `size`, `crop_size`).

        Returns:
            [`BatchFeature`] with, depending on the inputs: `input_ids` `(B, L)` and `attention_mask` `(B, L)`;
            `visual_tokens` `(B, T, h, w)` (T = 1 for images); `sketch_tokens` `(B, T, h, w)`; all int64.
        """
        if return_tensors not in ("pt", "np"):
            raise ValueError(f"`return_tensors` must be 'pt' or 'np', got {return_tensors!r}.")
        if text is None and images is None and videos is None and sketches is None:
            raise ValueError("Give at least one of `text`, `images`, `videos` or `sketches`.")
        if images is not None and videos is not None:
            raise ValueError("Pass either `images` or `videos`, not both: both become `visual_tokens`.")
        data: dict[str, torch.Tensor] = {}
        batch_sizes: dict[str, int] = {}

        if text is not None:
            encoded = self._encode_text(text, padding=padding, max_length=max_length)
            data.update(encoded)
            batch_sizes["text"] = encoded["input_ids"].shape[0]

        if images is not None or videos is not None:
            if images is not None:
                pixels = torch.as_tensor(self.image_processor(images, return_tensors="np", **kwargs)["pixel_values"])
                pixels = pixels.unsqueeze(1)
            else:
                pixels = torch.as_tensor(
                    self.image_processor.preprocess_videos(videos, return_tensors="np", **kwargs)[
                        "pixel_values_videos"
                    ]
                )
            batch_sizes["images" if images is not None else "videos"] = pixels.shape[0]
            if return_tokens:
                vqgan = self._require("vqgan", "Coding images and videos")
                with torch.inference_mode():
                    data["visual_tokens"] = vqgan.encode_video(pixels, chunk_size=chunk_size).cpu()
            else:
                data["pixel_values"] = pixels

        if sketches is not None:
            sketch_kwargs = {
                k: v for k, v in kwargs.items() if k in ("do_resize", "size", "do_center_crop", "crop_size")
            }
            if self.seg_vqgan is not None:
                sketch_kwargs.setdefault("num_sketch_classes", self.seg_vqgan.num_classes)
            maps = torch.as_tensor(self._preprocess_any_sketches(sketches, sketch_kwargs))
            batch_sizes["sketches"] = maps.shape[0]
            if return_tokens:
                seg_vqgan = self._require("seg_vqgan", "Coding sketches")
                with torch.inference_mode():
                    data["sketch_tokens"] = seg_vqgan.encode_video(maps, chunk_size=chunk_size).cpu()
            else:
                data["sketch_maps"] = maps

        if len(set(batch_sizes.values())) > 1:
            raise ValueError(
                f"Inputs have different batch sizes {batch_sizes}: give one text per image / video / sketch."
            )
        if return_tensors == "np":
            data = {key: value.numpy() for key, value in data.items()}
        return BatchFeature(data=data)

    def _encode_text(self, text, padding, max_length) -> dict[str, torch.Tensor]:
        prompts = [text] if isinstance(text, str) else text
        if not isinstance(prompts, Sequence) or not prompts:
            raise ValueError("`text` must be a non-empty string or a non-empty list of strings.")
        for index, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise TypeError(f"Prompt {index} must be a str, got {type(prompt).__name__}.")
            if not prompt.strip():
                raise ValueError(
                    f"Prompt {index} is empty: NUWA needs a description. For unconditional or video-prediction tasks "
                    "leave `text` out instead of passing an empty string."
                )
        limit = max_length or self.text_max_length
        if limit is not None:
            lengths = [len(ids) for ids in self.tokenizer(list(prompts), verbose=False)["input_ids"]]
            too_long = [(index, length) for index, length in enumerate(lengths) if length > limit]
            if too_long:
                logger.warning(
                    "%d prompt(s) exceed the maximum text length of %d tokens and are truncated (prompt index, tokens): "
                    "%s. The end token is kept; the words past the limit are dropped.",
                    len(too_long),
                    limit,
                    too_long,
                )
        encoded = self.tokenizer(
            list(prompts), padding=padding, truncation=limit is not None, max_length=limit, return_tensors="pt"
        )
        return {"input_ids": encoded["input_ids"].long(), "attention_mask": encoded["attention_mask"].long()}

    def _preprocess_any_sketches(self, sketches, sketch_kwargs: dict) -> np.ndarray:
        """`(B, T, H, W)` class maps from image sketches (T = 1) or video sketches (see `__call__`)."""
        is_video = False
        if _is_array(sketches):
            if sketches.ndim == 4:
                is_video = True
            elif sketches.ndim not in (2, 3):
                raise ValueError(
                    f"A sketch array must be (H, W), (B, H, W) or (B, T, H, W), got shape {tuple(sketches.shape)}."
                )
        elif isinstance(sketches, Sequence) and sketches and not isinstance(sketches, str):
            first = sketches[0]
            is_video = (isinstance(first, Sequence) and not isinstance(first, str)) or _ndim(first) == 3
        if is_video:
            return self.image_processor.preprocess_video_sketches(sketches, return_tensors="np", **sketch_kwargs)[
                "sketch_maps"
            ]
        maps = self.image_processor.preprocess_sketches(sketches, return_tensors="np", **sketch_kwargs)["sketch_maps"]
        return maps[:, None]

    # ----------------------------------------------------------------------------------------------------------------
    # Decoding

    def decode_visual(self, tokens, output_type: str = "pil", chunk_size: int | None = None):
        """
        Decode visual token grids to pictures.

        Args:
            tokens (`torch.LongTensor`): `(B, T, h, w)` (or `(B, h, w)` for images).
            output_type (`str`): `"pil"`, `"np"` or `"pt"` (see [`NuwaImageProcessor.postprocess`]).

        Returns:
            When T == 1: a list of B PIL images (or an array / tensor `(B, ...)`); else a list of B frame lists
            (or `(B, T, ...)`).
        """
        vqgan = self._require("vqgan", "Decoding visual tokens")
        tokens = self._as_token_tensor(tokens)
        with torch.inference_mode():
            pixels = vqgan.decode_video(tokens, chunk_size=chunk_size).cpu()
        if pixels.shape[1] == 1:
            pixels = pixels[:, 0]
        return self.image_processor.postprocess(pixels, output_type=output_type)

    def decode_sketch(self, tokens, output_type: str = "pt", chunk_size: int | None = None):
        """
        Decode sketch token grids to class maps.

        Args:
            tokens (`torch.LongTensor`): `(B, T, h, w)` (or `(B, h, w)`).
            output_type (`str`): `"pt"` (int64 tensor), `"np"` or `"pil"` (palette images).

        Returns:
            `(B, H, W)` class maps when T == 1, else `(B, T, H, W)` (lists of images for `"pil"`).
        """
        seg_vqgan = self._require("seg_vqgan", "Decoding sketch tokens")
        tokens = self._as_token_tensor(tokens)
        with torch.inference_mode():
            maps = seg_vqgan.decode_video_to_class_map(tokens, chunk_size=chunk_size).cpu()
        if maps.shape[1] == 1:
            maps = maps[:, 0]
        return self.image_processor.postprocess_sketches(maps, output_type=output_type)

    @staticmethod
    def _as_token_tensor(tokens) -> torch.Tensor:
        tokens = torch.as_tensor(tokens)
        if tokens.ndim == 3:
            tokens = tokens.unsqueeze(1)
        if tokens.ndim != 4:
            raise ValueError(f"Token grids must be (B, T, h, w) or (B, h, w), got shape {tuple(tokens.shape)}.")
        return tokens

    def batch_decode(self, *args, **kwargs):
        """Text: forwarded to the tokenizer's `batch_decode`."""
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        """Text: forwarded to the tokenizer's `decode`."""
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "visual_tokens", "sketch_tokens"]

    # ----------------------------------------------------------------------------------------------------------------
    # Saving and loading

    def to_dict(self):
        # The VQ-GANs are saved as model folders, not in processor_config.json; keep them out of the deep copy that
        # ProcessorMixin.to_dict makes of the instance dict.
        held = {key: self.__dict__.pop(key) for key in ("_vqgan", "_seg_vqgan") if key in self.__dict__}
        try:
            output = super().to_dict()
        finally:
            self.__dict__.update(held)
        for key in _NOT_A_TOKENIZER_FIELD:
            output.pop(key, None)
        return output

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """
        Save the tokenizer, the image processor settings (`processor_config.json`) and the attached VQ-GANs
        (`vqgan/`, `vqgan_seg/`, safetensors; each written to a temporary folder and renamed into place).
        """
        repo_id = kwargs.pop("repo_id", None)
        commit_message = kwargs.pop("commit_message", None)
        token = kwargs.pop("token", None)
        files = super().save_pretrained(save_directory, push_to_hub=False)
        for subfolder, model in ((VQGAN_SUBFOLDER, self.vqgan), (SEG_VQGAN_SUBFOLDER, self.seg_vqgan)):
            if model is not None:
                with atomic_directory(os.path.join(save_directory, subfolder)) as staging:
                    model.save_pretrained(staging, safe_serialization=True)
        if push_to_hub:
            from huggingface_hub import create_repo

            repo_id = repo_id or os.path.basename(os.path.normpath(save_directory))
            repo_id = create_repo(repo_id, exist_ok=True, token=token, private=kwargs.get("private")).repo_id
            self._upload_modified_files(save_directory, repo_id, {}, commit_message=commit_message, token=token)
        return files

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # Load the parts by their own classes, so that loading works without AutoImageProcessor registration.
        subfolder = kwargs.pop("subfolder", "")
        image_processor = NuwaImageProcessor.from_pretrained(
            pretrained_model_name_or_path, subfolder=subfolder, **kwargs
        )
        tokenizer = AutoTokenizer.from_pretrained(pretrained_model_name_or_path, subfolder=subfolder, **kwargs)
        return [image_processor, tokenizer]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, load_vqgans: bool = True, **kwargs) -> "NuwaProcessor":
        """
        Load a processor folder (or Hub repository); with `load_vqgans=True` also `vqgan/` and `vqgan_seg/` when
        present.
        """
        path = os.fspath(pretrained_model_name_or_path)
        looks_local = os.path.isabs(path) or path.startswith(".") or path.count("/") > 1 or os.path.exists(path)
        if not os.path.isdir(path) and looks_local:
            raise FileNotFoundError(
                f"{path} is not a folder: pass a folder written by NuwaProcessor.save_pretrained (it holds "
                "processor_config.json), or a Hub repository id 'owner/name'."
            )
        if not os.path.isdir(path):
            from huggingface_hub import snapshot_download

            download_kwargs = {
                k: kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only") if k in kwargs
            }
            path = snapshot_download(path, **download_kwargs)
            # snapshot_download can return a partial snapshot without raising (e.g. when the tree listing failed):
            # check it against the cached listing so a missing vqgan/ is named, not a confusing later error.
            from ..hub.download import snapshot_problems

            problems = snapshot_problems(
                path, os.fspath(pretrained_model_name_or_path), revision=kwargs.get("revision"),
                cache_dir=kwargs.get("cache_dir"),
            )
            if problems:
                raise OSError(
                    f"the download of {pretrained_model_name_or_path} is incomplete: {problems}; download it again "
                    "(or check the Hub's tree listing of the repository)."
                )
        for required in ("processor_config.json", "tokenizer_config.json"):
            if not os.path.isfile(os.path.join(path, required)):
                raise FileNotFoundError(
                    f"{pretrained_model_name_or_path} has no {required}; it is not a folder written by "
                    "NuwaProcessor.save_pretrained."
                )
        processor = super().from_pretrained(path, **kwargs)
        if load_vqgans:
            for attribute, subfolder, model_class in (
                ("vqgan", VQGAN_SUBFOLDER, NuwaVQGAN),
                ("seg_vqgan", SEG_VQGAN_SUBFOLDER, NuwaSegVQGAN),
            ):
                if os.path.isfile(os.path.join(path, subfolder, "config.json")):
                    model = model_class.from_pretrained(path, subfolder=subfolder, use_safetensors=True)
                    setattr(processor, attribute, model.eval())
        return processor
