"""``nuwa-hf demo``: run all eight tasks on built-in held-out inputs and write the results with an index.html page.

    >>> from nuwa_hf.commands.demo import run_showcase
    >>> report = run_showcase("checkpoints/nuwa-tiny", "outputs/demo", num_examples=2, seed=0)
    >>> report.index_path                       # outputs/demo/index.html

Per task, a folder ``<out>/<code>/`` (t2i, t2v, ...) holds the inputs as the model saw them (captions in the page,
images and sketches as PNG, videos as GIF) and the outputs (PNG for images; GIF, a PNG strip of the frames, and MP4
when asked and PyAV is installed, for videos). Pictures are enlarged ``upscale`` times with nearest neighbour so
that 32x32 outputs can be seen; the page shows them pixelated.
"""

from __future__ import annotations

import html
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np
import PIL.Image

from .. import media
from ..file_io import atomic_write_text
from ..lazy_imports import require
from ..pipelines import load_nuwa_processor, region_to_token_mask, resolve_task_name
from ..pipelines.regions import token_mask_to_pixels
from ..tasks import TASK_CODE_OF, TASK_NAMES, TASKS, get_task_info
from . import base
from .base import NuwaCommand

if TYPE_CHECKING:
    from ..data.task_examples import TaskExamples

TASK_TITLES = {task.name: f"{task.title} ({task.code}{'' if task.trainable else ', zero-shot'})" for task in TASKS}


@dataclass
class ShowcaseEntry:
    """One example of one task: the condition shown in the page and the files written."""

    caption: Optional[str]
    input_files: list[Path] = field(default_factory=list)
    output_files: list[Path] = field(default_factory=list)
    reading: Optional[str] = None  # what the digit / colour / motion readers see in the output


@dataclass
class ShowcaseReport:
    index_path: Path
    entries: dict[str, list[ShowcaseEntry]]
    seconds: dict[str, float]
    failures: dict[str, str]

    @property
    def written(self) -> list[Path]:
        files = [self.index_path]
        for entries in self.entries.values():
            for entry in entries:
                files += entry.input_files + entry.output_files
        return files


def _region_preview(image: PIL.Image.Image, mask: Any, pipe) -> PIL.Image.Image:
    """The image as the model sees it, with the region to regenerate greyed out."""

    h, w = pipe.token_grid()
    tokens = region_to_token_mask(mask, image.size, (h, w), pipe.processor.image_processor).numpy()
    seen = pipe.processor.image_processor(image, return_tensors="np")["pixel_values"][0]
    pixels = ((np.moveaxis(seen, 0, -1) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    region = token_mask_to_pixels(tokens, (pixels.shape[1], pixels.shape[0]))
    pixels[region] = (pixels[region] // 4 + 96).astype(np.uint8)
    return PIL.Image.fromarray(pixels)


def _write_inputs(code: str, examples: TaskExamples, index: int, folder: Path, pipe, fps: float,
                  upscale: int) -> tuple[Optional[str], list[Path]]:
    inputs = {name: values[index] for name, values in examples.inputs.items()}
    caption = inputs.get("prompt")
    files: list[Path] = []
    stem = folder / f"{code.lower()}_{index:02d}_input"
    if "image" in inputs:
        files.append(media.save_image(inputs["image"], stem.with_suffix(".png"), upscale=upscale))
        if "mask" in inputs:
            preview = _region_preview(inputs["image"], inputs["mask"], pipe)
            files.append(media.save_image(preview, folder / f"{code.lower()}_{index:02d}_region.png", upscale=upscale))
    if "video" in inputs:
        files.append(media.save_image(inputs["video"][0], stem.with_suffix(".png"), upscale=upscale))
    if "sketch" in inputs:
        files.append(media.save_image(media.sketch_to_image(inputs["sketch"]), stem.with_suffix(".png"), upscale=upscale))
    if "sketch_video" in inputs:
        frames = [media.sketch_to_image(m) for m in inputs["sketch_video"]]
        files.append(media.save_gif(frames, stem.with_suffix(".gif"), fps=fps, upscale=upscale))
    return caption, files


# Tasks whose outputs show digits: the page says what the readers (nuwa_hf.evaluation.digit_reading) see in them.
READ_TASKS = ("T2I", "I2I", "TI2I", "T2V", "V2V", "TV2V")


class _Readers:
    """The MNIST digit reader: the folder given, else the one trained into the cache earlier; None (the page then
    reads colour and motion only) when there is none or it cannot be loaded. Never trains one during a demo."""

    def __init__(self, folder, log):
        self._folder, self._log, self._classifier, self._tried = folder, log, None, False

    @property
    def classifier(self):
        if not self._tried:
            self._tried = True
            from ..evaluation.digit_reading import default_digit_reader

            try:
                self._classifier = default_digit_reader(self._folder)
            except Exception as error:  # the page still shows colour and motion
                self._log(f"      (no digit reader: {type(error).__name__}: {error})")
            if self._classifier is None and self._tried:
                self._log("      (no digit reader: pass --digit-reader checkpoints/mnist-digit-reader, or train one "
                          "with python examples/train_scorers.py digit-reader)")
        return self._classifier


def _reading(code: str, result: Any, examples: TaskExamples, index: int, readers: _Readers) -> Optional[str]:
    from ..evaluation.digit_reading import describe_picture, describe_video

    info = get_task_info(code)
    if info.makes_video:
        video = np.stack([np.asarray(media.to_pil_image(frame).convert("RGB")) for frame in result])
        reading = describe_video(video, readers.classifier)
    else:
        reading = describe_picture(np.asarray(media.to_pil_image(result).convert("RGB")), readers.classifier)
    if info.condition == "none" and examples.references is not None:  # no caption: say what the input showed
        reference = np.asarray(examples.references[index])
        given = describe_video(reference, readers.classifier) if reference.ndim == 4 else \
            describe_picture(reference, readers.classifier)
        reading += f" (the original {given})"
    return reading


def run_showcase(
    model: str,
    out_dir: str | Path,
    *,
    tasks: Optional[Sequence[str]] = None,
    num_examples: int = 2,
    seed: int = 0,
    split: str = "test",
    fps: float = 4.0,
    upscale: int = 4,
    write_mp4: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    digit_reader: Optional[str | Path] = None,
) -> ShowcaseReport:
    """Run ``tasks`` (default: all eight) with the model folder on held-out world inputs; write files and index.html.

    A task that fails (e.g. a model without a sketch VQ-GAN) is reported in the page and in ``report.failures``; the
    other tasks still run. Outputs of the digit tasks get a line of what the readers see in them
    (:mod:`nuwa_hf.evaluation.digit_reading`); ``digit_reader`` is the folder of the MNIST classifier to use.
    """
    from transformers import AutoModelForSeq2SeqLM, pipeline


    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [resolve_task_name(t) for t in tasks] if tasks else list(TASK_NAMES)
    nuwa = AutoModelForSeq2SeqLM.from_pretrained(model, use_safetensors=True).eval()
    processor = load_nuwa_processor(model)
    image_size = int(getattr(processor.image_processor.crop_size, "height", None) or processor.image_processor.crop_size["height"])
    frames = int(nuwa.config.max_visual_grid[0])
    seg = nuwa.sketch_vqgan
    entries: dict[str, list[ShowcaseEntry]] = {}
    seconds: dict[str, float] = {}
    failures: dict[str, str] = {}
    readers = _Readers(digit_reader, log)
    for name in names:
        code = TASK_CODE_OF[name]
        start = time.perf_counter()
        folder = out_dir / code.lower()
        try:
            pipe = pipeline(name, model=nuwa, processor=processor)
            pipe.set_progress_bar_config(disable=not progress, desc=f"{code}")
            from ..data.task_examples import task_examples  # needs datasets (checked when the command starts)

            examples = task_examples(name, num_examples, image_size, frames, split=split, seed=seed,
                                     num_sketch_classes=int(seg.num_classes) if seg is not None else None)
            # the world's captions whole (as evaluate does): a model trained on the world knows every word of them,
            # and one that does not is shown reading its benchmark caption, not an edited or refused one
            results = pipe(**examples.chunk(0, len(examples)), seed=seed, drop_unknown_words=False,
                           rephrase_prompt=False,
                           **({"complete_instruction": False} if getattr(pipe, "reads_edits", False) else {}))
            task_entries = []
            for index, result in enumerate(results):
                caption, inputs = _write_inputs(code, examples, index, folder, pipe, fps, upscale)
                outputs = media.save_result(result, folder / f"{code.lower()}_{index:02d}_output", pipe.makes_video, fps,
                                      upscale, write_mp4)
                reading = _reading(code, result, examples, index, readers) if code in READ_TASKS else None
                task_entries.append(ShowcaseEntry(caption, inputs, outputs, reading))
                if reading:
                    log(f"      {caption or 'input'} -> {reading}")
            entries[name] = task_entries
            seconds[name] = time.perf_counter() - start
            log(f"{code:5s} {TASK_TITLES[name]}: {len(task_entries)} example(s) in {seconds[name]:.1f} s -> {folder}")
        except Exception as error:  # one broken task must not hide the others
            seconds[name] = time.perf_counter() - start
            failures[name] = f"{type(error).__name__}: {error}"
            log(f"{code:5s} {TASK_TITLES[name]}: FAILED ({failures[name]})")
            if progress:
                traceback.print_exc()
    index_path = write_index(out_dir, model, entries, seconds, failures, seed, split)
    return ShowcaseReport(index_path, entries, seconds, failures)


def write_index(out_dir: Path, model: str, entries: dict, seconds: dict, failures: dict, seed: int,
                split: str) -> Path:
    """index.html linking every input and output, one section per task (written atomically)."""

    def link(path: Path) -> str:
        relative = path.relative_to(out_dir).as_posix()
        if path.suffix in (".png", ".gif"):
            return f'<a href="{html.escape(relative)}"><img src="{html.escape(relative)}" alt="{html.escape(path.name)}"></a>'
        return f'<a href="{html.escape(relative)}">{html.escape(path.suffix[1:].upper())}</a>'

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>NUWA: eight tasks</title>',
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}img{image-rendering:pixelated;height:128px;"
        "margin:2px;border:1px solid #ccc}td{vertical-align:top;padding:4px 12px}caption,h2{text-align:left}"
        ".fail{color:#b00}.note{color:#555}</style></head><body>",
        "<h1>NUWA: eight tasks</h1>",
        f'<p class="note">Model: <code>{html.escape(str(model))}</code>; inputs from the built-in worlds\' '
        f"<code>{html.escape(split)}</code> split; seed {seed}. Pictures are enlarged for viewing.</p>",
        '<p class="note">What the readers see (<code>nuwa_hf.evaluation.digit_reading</code>): the digit as a small CNN '
        "trained on MNIST reads it, the nearest named colour of the bright pixels, and the motion from the path of "
        "the digit's centre. They can be wrong too; they are there so that nobody has to guess.</p>",
    ]
    for name in TASK_NAMES:
        if name not in entries and name not in failures:
            continue
        parts.append(f"<h2>{html.escape(TASK_TITLES[name])}</h2>")
        if name in failures:
            parts.append(f'<p class="fail">Failed: {html.escape(failures[name])}</p>')
            continue
        parts.append(f'<p class="note">{seconds.get(name, 0.0):.1f} s</p><table>'
                     "<tr><th>asked</th><th>input</th><th>output</th><th>what the readers see</th></tr>")
        for entry in entries[name]:
            caption = html.escape(entry.caption) if entry.caption else "&mdash;"
            inputs = " ".join(link(p) for p in entry.input_files) or "&mdash;"
            outputs = " ".join(link(p) for p in entry.output_files)
            reading = html.escape(entry.reading) if entry.reading else "&mdash;"
            parts.append(f"<tr><td>{caption}</td><td>{inputs}</td><td>{outputs}</td><td>{reading}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return atomic_write_text(out_dir / "index.html", "\n".join(parts) + "\n")


# ----------------------------------------------------------------------------------------------------------------------
# The command


class DemoCommand(NuwaCommand):
    name = "demo"
    help = "run all eight tasks on built-in inputs; write PNG / GIF and index.html"
    description = ("Run the eight tasks with a model folder on held-out inputs of the built-in worlds (captions, first "
                   "frames, sketches, images) and write inputs, outputs and an index.html page that links them.")
    examples = "example:\n  nuwa-hf demo --model checkpoints/nuwa-tiny --out outputs/demo"

    @classmethod
    def add_arguments(cls, parser) -> None:
        base.add_model_options(parser)
        parser.add_argument("--out", required=True, help="output folder (created)")
        parser.add_argument("--tasks", nargs="+", default=None,
                            help="a subset of tasks (names or codes); default all eight")
        parser.add_argument("--num-examples", type=base.positive_int, default=2, help="examples per task")
        parser.add_argument("--seed", type=base.non_negative_int, default=0, help="random seed")
        parser.add_argument("--split", default="test", help="world split the inputs come from")
        parser.add_argument("--fps", type=base.fps, default=4.0, help="frames per second of the GIFs (0.01 to 240)")
        parser.add_argument("--upscale", type=base.positive_int, default=4,
                            help="enlarge pictures by this factor (nearest)")
        parser.add_argument("--mp4", action="store_true", help="also write MP4 (needs PyAV)")
        parser.add_argument("--digit-reader", default=None, metavar="FOLDER",
                            help="MNIST digit classifier the page reads outputs with (e.g. checkpoints/mnist-digit-reader; "
                                 "default: the one in the cache, if any; train one with python "
                                 "examples/train_scorers.py digit-reader)")

    def run(self) -> int:
        require("datasets", "nuwa-hf demo (its inputs are held-out examples of the built-in worlds)")
        args = self.args
        base.apply_model_options(args)
        processor = base.load_processor(args.model)
        self._check_picture_size(processor)
        started = time.perf_counter()
        report = run_showcase(args.model, args.out, tasks=args.tasks, num_examples=args.num_examples, seed=args.seed,
                              split=args.split, fps=args.fps, upscale=args.upscale, write_mp4=args.mp4,
                              progress=not args.quiet, log=lambda line: print(line, file=sys.stderr),
                              digit_reader=args.digit_reader)
        print(report.index_path)
        if report.failures:
            print(f"{len(report.failures)} task(s) failed: {', '.join(report.failures)}; see {report.index_path}",
                  file=sys.stderr)
            return base.EXIT_PARTIAL
        print(f"all {len(report.entries)} task(s) written in {time.perf_counter() - started:.1f} s: open "
              f"{report.index_path}", file=sys.stderr)
        return base.EXIT_OK

    def _check_picture_size(self, processor) -> None:
        """--upscale within the same saved-picture limit as generate's (video strips included), before any work."""
        from ..models.nuwa import NuwaConfig
        from ..pipelines.work_limits import check_saved_size

        height, width = base.output_size(processor.image_processor)
        frames = int(NuwaConfig.from_pretrained(self.args.model).max_visual_grid[0])
        try:
            check_saved_size(width, height, self.args.upscale, frames)
        except ValueError as error:
            message = str(error).replace("upscale=", "--upscale ")
            raise base.CommandError(message.split(", or ")[0] + ".") from None
