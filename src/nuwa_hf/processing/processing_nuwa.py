"""NUWA's processor: text tokenizer + image processor, from what users hold to model inputs and back.

NUWA reads and writes token grids (section 3.1 of the paper). The processor turns strings into text ids `(B, L)`,
images and videos into pixels `(B, T, 3, H, W)` in [-1, 1] and sketches into class maps `(B, T, H, W)`; the model's own
VQ-GANs turn those into token grids (`model.encode_videos`, `model.encode_sketches`, or simply
`model(**processor(...))`) and back (`model.decode_visual_tokens`), and `processor.postprocess` turns decoded pixels
into PIL images or frame lists. Like transformers' Chameleon / Emu3 / Janus processors, it holds no network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .image_processing_nuwa import NuwaImageProcessor


logger = logging.getLogger(__name__)


def _is_array(value) -> bool:
    return isinstance(value, (np.ndarray, torch.Tensor))


def _ndim(value) -> int:
    return value.ndim if _is_array(value) else -1


_MOVED_TO_THE_MODEL = (
    "the VQ-GANs are part of the NUWA model now (`model.vqgan`, `model.sketch_vqgan`): the processor returns "
    "`pixel_values` / `sketch_maps`, and `model.encode_videos(...)`, `model.encode_sketches(...)` or "
    "`model(**processor(...))` code them; `model.decode_visual_tokens(...)` + `processor.postprocess(...)` decode."
)


# from_pretrained arguments of models, never of processors (transformers' pipeline() passes its model_kwargs to both).
_MODEL_LOADING_KWARGS = (
    "dtype", "torch_dtype", "device_map", "attn_implementation", "low_cpu_mem_usage", "max_memory", "offload_folder",
    "offload_state_dict", "quantization_config", "use_safetensors", "variant", "weights_only", "tp_plan",
)


class NuwaProcessor(ProcessorMixin):
    r"""
    Turns text, images, videos and sketches into NUWA's inputs, and decoded pixels back into pictures.

    Args:
        image_processor ([`NuwaImageProcessor`]): resizing, cropping and normalisation.
        tokenizer (`PreTrainedTokenizerBase`): the text tokenizer (see `build_clip_tokenizer`,
            `train_caption_tokenizer`).
        max_text_length (`int`, *optional*): longest text encoding; defaults to the tokenizer's `model_max_length`.
            Longer prompts are truncated with a warning.

    Example:
        >>> processor = NuwaProcessor.from_pretrained("checkpoints/nuwa-tiny")
        >>> model = NuwaForConditionalGeneration.from_pretrained("checkpoints/nuwa-tiny")
        >>> inputs = processor(text=["a red 7"], images=[image])  # input_ids (1, L), pixel_values (1, 1, 3, 32, 32)
        >>> loss = model(**inputs).loss                            # the model codes the image with its VQ-GAN
        >>> pictures = processor.postprocess(model.decode_visual_tokens(tokens))
    """

    def __init__(self, image_processor=None, tokenizer=None, max_text_length: int | None = None, **kwargs):
        for moved in ("vqgan", "seg_vqgan"):
            if kwargs.pop(moved, None) is not None:
                raise TypeError(f"NuwaProcessor takes no `{moved}`: {_MOVED_TO_THE_MODEL}")
        # By name too: transformers' remote-code loader (trust_remote_code, nuwa_hf.hub.code_repo) executes a module
        # again when it loads it as an entry point after another module imported it, so two classes of this name exist.
        if not isinstance(image_processor, NuwaImageProcessor) and type(image_processor).__name__ != "NuwaImageProcessor":
            raise TypeError(f"`image_processor` must be a NuwaImageProcessor, got {type(image_processor).__name__}.")
        super().__init__(image_processor, tokenizer, **kwargs)
        if max_text_length is not None and (not isinstance(max_text_length, int) or max_text_length < 3):
            raise ValueError(
                f"`max_text_length` must be an int >= 3 (start, one token, end), got {max_text_length!r}."
            )
        self.max_text_length = max_text_length

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
            kwargs: passed to the image processor (e.g. `size`, `crop_size`).

        Returns:
            [`BatchFeature`] with, depending on the inputs: `input_ids` `(B, L)` and `attention_mask` `(B, L)`;
            `pixel_values` `(B, T, 3, H, W)` float in [-1, 1] (T = 1 for images); `sketch_maps` `(B, T, H, W)` int64
            class ids. `model(**outputs)` accepts them all (its VQ-GANs code the pixels and sketches).
        """
        for moved in ("return_tokens", "chunk_size"):
            if moved in kwargs:
                raise TypeError(f"NuwaProcessor takes no `{moved}`: {_MOVED_TO_THE_MODEL}")
        if return_tensors not in ("pt", "np"):
            raise ValueError(f"`return_tensors` must be 'pt' or 'np', got {return_tensors!r}.")
        if text is None and images is None and videos is None and sketches is None:
            raise ValueError("Give at least one of `text`, `images`, `videos` or `sketches`.")
        if images is not None and videos is not None:
            raise ValueError("Pass either `images` or `videos`, not both: both become `pixel_values`.")
        data: dict[str, torch.Tensor] = {}
        batch_sizes: dict[str, int] = {}

        if text is not None:
            encoded = self._encode_text(text, padding=padding, max_length=max_length)
            data.update(encoded)
            batch_sizes["text"] = encoded["input_ids"].shape[0]

        if images is not None:
            pixels = torch.as_tensor(self.image_processor(images, return_tensors="np", **kwargs)["pixel_values"])
            data["pixel_values"] = pixels.unsqueeze(1)
            batch_sizes["images"] = pixels.shape[0]
        elif videos is not None:
            pixels = self.image_processor.preprocess_videos(videos, return_tensors="np", **kwargs)["pixel_values_videos"]
            data["pixel_values"] = torch.as_tensor(pixels)
            batch_sizes["videos"] = pixels.shape[0]

        if sketches is not None:
            sketch_kwargs = {
                k: v for k, v in kwargs.items() if k in ("do_resize", "size", "do_center_crop", "crop_size")
            }
            maps = torch.as_tensor(self._preprocess_any_sketches(sketches, sketch_kwargs))
            batch_sizes["sketches"] = maps.shape[0]
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
    # Decoding (after the model's VQ-GAN: `model.decode_visual_tokens` / `model.decode_sketch_tokens`)

    def postprocess(self, pixel_values, output_type: str = "pil"):
        """
        Decoded pixels -> pictures.

        Args:
            pixel_values (`torch.FloatTensor`): `(B, T, 3, H, W)` in [-1, 1], as `model.decode_visual_tokens`
                returns (or `(B, 3, H, W)` for images).
            output_type (`str`): `"pil"`, `"np"` or `"pt"` (see [`NuwaImageProcessor.postprocess`]).

        Returns:
            When T == 1: a list of B PIL images (or an array / tensor `(B, ...)`); else a list of B frame lists
            (or `(B, T, ...)`).
        """
        pixels = torch.as_tensor(pixel_values).detach().cpu()
        if pixels.ndim == 5 and pixels.shape[1] == 1:
            pixels = pixels[:, 0]
        if pixels.ndim not in (4, 5):
            raise ValueError(f"pixel_values must be (B, T, 3, H, W) or (B, 3, H, W), got shape {tuple(pixels.shape)}.")
        return self.image_processor.postprocess(pixels, output_type=output_type)

    def postprocess_sketches(self, sketch_maps, output_type: str = "pt"):
        """
        Decoded class maps -> sketches.

        Args:
            sketch_maps (`torch.LongTensor`): `(B, T, H, W)` (as `model.decode_sketch_tokens` returns) or `(B, H, W)`.
            output_type (`str`): `"pt"` (int64 tensor), `"np"` or `"pil"` (palette images).

        Returns:
            `(B, H, W)` class maps when T == 1, else `(B, T, H, W)` (lists of images for `"pil"`).
        """
        maps = torch.as_tensor(sketch_maps).detach().cpu()
        if maps.ndim == 4 and maps.shape[1] == 1:
            maps = maps[:, 0]
        return self.image_processor.postprocess_sketches(maps, output_type=output_type)

    def decode_visual(self, *args, **kwargs):
        raise AttributeError(f"NuwaProcessor.decode_visual is gone: {_MOVED_TO_THE_MODEL}")

    def decode_sketch(self, *args, **kwargs):
        raise AttributeError(f"NuwaProcessor.decode_sketch is gone: {_MOVED_TO_THE_MODEL}")

    def batch_decode(self, *args, **kwargs):
        """Text: forwarded to the tokenizer's `batch_decode`."""
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        """Text: forwarded to the tokenizer's `decode`."""
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values", "sketch_maps"]

    # ----------------------------------------------------------------------------------------------------------------
    # Saving and loading

    def save_pretrained(self, save_directory, push_to_hub: bool = False, *, remote_code: str | None = None,
                        **kwargs):
        """Save the tokenizer and the image processor settings (`processor_config.json`), and a model card when the
        folder has none; no code. `remote_code`: a code repository published with `nuwa_hf.hub.push_code`, which
        `processor_config.json`'s `auto_map` then names, so `AutoProcessor.from_pretrained(folder,
        trust_remote_code=True)` gives this class where nuwa-hf is not installed.

        The files are written whole or not at all (see `NuwaForConditionalGeneration.save_pretrained`). With
        `push_to_hub=True` (and transformers' `repo_id`, `commit_message`, `token`, ...) the files this save wrote
        are then uploaded as they are on disk, code references included (`saving_nuwa.save_and_push`)."""
        if push_to_hub:
            from ..models.nuwa.saving_nuwa import save_and_push

            return save_and_push(self, save_directory, remote_code=remote_code, **kwargs)[0]
        from ..file_io import staged_folder
        from ..models.nuwa.saving_nuwa import point_folder_to_code, write_model_card

        with staged_folder(save_directory, "the processor") as staging:
            staged = super().save_pretrained(staging, push_to_hub=False, **kwargs)
            # References to code: to remote_code's classes when given; otherwise none at all, not even the stale
            # auto_map a tokenizer loaded from an older folder carries into tokenizer_config.json.
            point_folder_to_code(staging, remote_code, files=("processor_config.json",))
        target = os.path.abspath(os.fspath(save_directory))
        saved = [os.path.join(target, os.path.relpath(os.fspath(f), staging)) if isinstance(f, (str, os.PathLike))
                 else f for f in (staged or [])]
        write_model_card(save_directory, remote_code=remote_code)
        return saved

    def push_to_hub(self, repo_id: str, *, remote_code: str | None = None, **kwargs):
        """transformers' `push_to_hub`; `remote_code` as in :meth:`save_pretrained`."""
        from ..models.nuwa.saving_nuwa import push_saved

        return push_saved(self, repo_id, remote_code=remote_code, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "NuwaProcessor":
        """Load a processor folder (or Hub repository): the tokenizer and `processor_config.json`.

        Keyword arguments meant for the model (``dtype``, ``device_map``, ``attn_implementation``, ...: what
        ``pipeline(..., dtype=torch.bfloat16)`` passes to the processor too) are left out: a tokenizer would keep them
        in its config, and a ``torch.dtype`` there makes ``save_pretrained`` fail.
        """
        for name in _MODEL_LOADING_KWARGS:
            kwargs.pop(name, None)
        if "load_vqgans" in kwargs:
            raise TypeError(f"NuwaProcessor.from_pretrained takes no `load_vqgans`: {_MOVED_TO_THE_MODEL}")
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
            # check it against the cached listing so a missing file is named, not a confusing later error.
            from ..models.nuwa.loading_nuwa import snapshot_problems

            problems = snapshot_problems(
                path, os.fspath(pretrained_model_name_or_path), revision=kwargs.get("revision"),
                cache_dir=kwargs.get("cache_dir"),
            )
            if problems:
                raise OSError(
                    f"the download of {pretrained_model_name_or_path} is incomplete: {problems}; download it again "
                    "(or check the Hub's tree listing of the repository)."
                )
        if os.path.isfile(os.path.join(path, ".nuwa-publish-journal.json")):
            try:  # a save that was killed while moving its files in: finish it (see nuwa_hf.file_io.staged_folder)
                from nuwa_hf.file_io import finish_folder_publish
            except ImportError:
                finish_folder_publish = None
            if finish_folder_publish is None:
                raise OSError(f"{path} was being saved when the save stopped: save the processor again.")
            finish_folder_publish(path)
        for required in ("processor_config.json", "tokenizer_config.json"):
            if not os.path.isfile(os.path.join(path, required)):
                raise FileNotFoundError(
                    f"{pretrained_model_name_or_path} has no {required}; it is not a folder written by "
                    "NuwaProcessor.save_pretrained."
                )
        try:
            processor = super().from_pretrained(path, **kwargs)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            # a damaged tokenizer.json / tokenizer_config.json / processor_config.json fails deep inside transformers
            # or tokenizers (e.g. KeyError 'added_tokens'): name the files and the fix instead
            raise OSError(
                f"the processor of {pretrained_model_name_or_path} could not be read from its files "
                f"(processor_config.json, tokenizer_config.json, tokenizer.json): {type(error).__name__}: {error}. "
                "Copy them back from the checkpoint the folder came from, or save the processor again with "
                "NuwaProcessor.save_pretrained."
            ) from error
        _check_tokenizer_vocabulary(processor.tokenizer, pretrained_model_name_or_path, path)
        length = processor.tokenizer.model_max_length
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise OSError(f"the caption tokenizer of {pretrained_model_name_or_path} has model_max_length {length!r} "
                          "in tokenizer_config.json: it must be a positive whole number (the longest prompt in "
                          "tokens); fix it there or save the processor again with NuwaProcessor.save_pretrained.")
        return processor


# The files a tokenizer folder keeps its vocabulary in (fast tokenizers: tokenizer.json; slow BPE: vocab.json with
# merges.txt; WordPiece: vocab.txt; SentencePiece: *.model).
_VOCABULARY_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "spiece.model", "tokenizer.model",
                     "sentencepiece.bpe.model")


def _check_tokenizer_vocabulary(tokenizer, name, path) -> None:
    """Refuses a tokenizer loaded without its vocabulary. transformers builds a tokenizer from tokenizer_config.json
    alone when the vocabulary file is missing (only the special tokens, every word read as unknown), and the model
    would then generate from a prompt it cannot read, with no error."""
    specials = set(tokenizer.all_special_ids)
    if len(tokenizer) > len(specials) + 1:
        return
    present = [f for f in _VOCABULARY_FILES if os.path.isfile(os.path.join(path, f))]
    where = f"it has {', '.join(present)} but" if present else f"it has none of {', '.join(_VOCABULARY_FILES)}:"
    raise OSError(
        f"the caption tokenizer of {name} has no vocabulary ({len(tokenizer)} tokens, all special): {where} the "
        "words the model was trained on are missing. Copy tokenizer.json back from the checkpoint the folder came "
        "from, or save the processor again with NuwaProcessor.save_pretrained."
    )
