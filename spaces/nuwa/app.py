"""NUWA web demo: the eight nuwa-hf tasks in one Gradio app, laid out as a Hugging Face Space.

    python spaces/nuwa/app.py                                   # this repository's checkpoints/nuwa-tiny
    python spaces/nuwa/app.py --model my-org/nuwa-tiny --host 0.0.0.0 --port 7861
    make web                                                    # the same, from the repository root

One tab per row of the task table (``nuwa_hf.tasks.TASKS``: T2I, T2V, V2V, S2I, I2I, TI2I, S2V, TV2V), whose title,
inputs, frame options, guidance (tasks with a condition) and outputs (image or video) the row gives; the pipelines'
arguments are read off the row too. The handlers call the pipelines and ``nuwa_hf.media`` (reading uploads, drawings
in the class colours, writing results); what stays here is gradio's: the ImageEditor's layers, the upload components,
the queue, Stop and cancel machinery, and the malloc arena handling.

Generations go through one queue slot at a time (``demo.queue(default_concurrency_limit=1)`` and one concurrency group
for all of them); at most ``--queue-size`` (``NUWA_WEB_QUEUE_SIZE``, default 16) wait, and a request past that is refused at once with gradio's "Queue is full"
message (gradio_client: "Queue is full! Please try again."). Generations report their progress per generated token and
stop at the next token when the tab's Stop button is pressed, when the request is cancelled (gradio's ``/cancel``,
``Job.cancel()`` in gradio_client) or when its client disconnects, so the slot is free for the next request at once.
Bad inputs and pipeline failures come back as ``gr.Error`` pop-ups whose bold first words say what went wrong ("No
image") and whose message says what to do; the server keeps running. The pipelines' notes go to the info line and pop
up as notices, not errors (:func:`show_notices`): ``gr.Info`` for how the prompt was read (motions rephrased in the
captions' words, an edit read as the picture it asks for, an instruction completed from the picture), ``gr.Warning``
for what the model will not honour (words it never saw, left out). They are worded for the page's visitors
(:func:`page_wording`) and name the tab's text box as the tab does: "prompt", or "instruction" on the manipulation
tabs (:func:`prompt_field`). The text tasks' Sampling panel also takes a negative prompt (empty: none), which needs
guidance above 1 (the page says so before generating). Each tab's Generate and Stop buttons head its output column,
the result right under them; V2V and TV2V show the video they start from (the upload, else the chosen built-in
example).

Outputs are written to a folder of this process under ``$TMPDIR/nuwa-web-demo`` (the newest
``KEEP_OUTPUT_FOLDERS`` requests' folders are kept) and gradio copies them to its cache, from which they are served;
gradio deletes its cached files after an hour (``delete_cache``).

Tests and other programs build the app with :func:`build_demo` and start it with :func:`launch`.
"""

import argparse
import atexit
import contextlib
import dataclasses
import functools
import html
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import PIL.Image
import torch
from transformers import LogitsProcessor

import nuwa_hf  # noqa: F401  (registers the model, the processor and the eight pipelines)
from nuwa_hf import media
from nuwa_hf.data.sketch_motion import MOTION_CHOICES, move_shapes
from nuwa_hf.models.nuwa.visual_generation_nuwa import task_sampling_defaults
from nuwa_hf.pipelines import REGION_SHORTCUTS, load_nuwa_processor
from nuwa_hf.pipelines.notices import NoticeWording, routed_warnings, says_how_read, worded_for
from nuwa_hf.pipelines.regions import region_to_token_mask, token_mask_to_pixels
from nuwa_hf.tasks import TASKS, get_task_info
from nuwa_hf.lazy_imports import import_optional

gr = import_optional("gradio", None, "The web demo (spaces/nuwa/app.py)")  # the "web" extra: a clear message if missing

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "nuwa-tiny"
MODEL_ENV_VAR = "NUWA_MODEL"  # a model folder or Hub id, for a Space (where the repository's checkpoints are absent)
DEFAULT_PORT = 7860
VIEW_PIXELS = 256  # outputs are enlarged (nearest neighbour) to about this many pixels for viewing
FPS = 4.0
RESULT_HEIGHT = VIEW_PIXELS + 48  # pixels of a result view on the page (the label sits above the picture)
PREVIEW_HEIGHT = VIEW_PIXELS // 2 + 48  # the input video's preview and the sketch view: smaller
NUM_BUILTIN_EXAMPLES = 4
CONCURRENCY_ID = "nuwa-generation"  # every generation shares one queue slot: the model is one object in memory
QUEUE_SIZE_ENV_VAR = "NUWA_WEB_QUEUE_SIZE"
DEFAULT_QUEUE_SIZE = 16  # requests waiting for the slot; more are refused with "Queue is full" (a few seconds each)
KEEP_OUTPUT_FOLDERS = 8  # the app's own copies of recent outputs; gradio serves its cached copies (an hour)
CACHE_SECONDS = 3600  # gradio's delete_cache: cached outputs and uploads older than this are deleted ...
CACHE_SWEEP_SECONDS = 600  # ... this often
OUTPUT_ROOT_NAME = "nuwa-web-demo"
TAB_OVERFLOW = "wrap"  # tab labels that do not fit in one row go on a second row (gradio's default hides them)
PAINTED = "painted with the brush"
NEGATIVE_PROMPT_INFO = ("What to steer away from, e.g. a digit or a colour (needs guidance above 1). It can also take "
                        "away what it shares with the prompt: check the result.")

T2I_EXAMPLES = ["a red 7", "the digit seven in blue", "7, green"]
T2V_EXAMPLES = ["the digit 3 is moving up then down", "a red 5 moving left then right"]
DEFAULT_MOTIONS = ("right", "left", "down", "up")  # S2V's starting motion: the first the starting sketch can make



# The pipelines' resize notice (nuwa_hf.pipelines.notices.resize_notice): the page says it in its own words (_size_note);
# a prompt notice that merely holds the word "resized" still goes to the info line
RESIZE_NOTICE = re.compile(r"The [\w ]+ is \d+x\d+ pixels and was resized to \d+x\d+")

# The warnings of the running pipeline call (one generation at a time, see _run), for the page's info line.
_call_notes = threading.local()


def _taken_call_notes() -> list[str]:
    items = getattr(_call_notes, "items", [])
    _call_notes.items = []
    return items


def show_notices(notes: list[str]) -> None:
    """Pop up the pipelines' ``notes`` (as on the info line, without its "Note: ") as gradio notices, headed by their
    kind: ``gr.Info`` for a note saying how the input was read on the visitor's behalf, ``gr.Warning`` for one saying
    what the model will not honour (:func:`nuwa_hf.pipelines.notices.says_how_read`). gradio renders a notice's text as
    HTML, so it is escaped (a prompt is the visitor's own text). Outside a gradio request, gradio prints them."""
    for note in notes:
        text = html.escape(note, quote=False)
        if says_how_read(note):
            gr.Info(text)
        else:
            gr.Warning(text)


def once(notes: list[str], sentence: str) -> list[str]:
    """``notes`` with ``sentence`` (the page's list of the words the model knows, which each unknown-word notice ends
    with) kept only in the last note that has it: a prompt and a negative prompt with unknown words, or a rephrased
    prompt, would list the whole vocabulary twice on the info line."""
    having = [i for i, note in enumerate(notes) if sentence in note]
    return [note.replace(sentence, "") if i in having[:-1] else note for i, note in enumerate(notes)]


class GenerationStopped(RuntimeError):
    """Raised inside generate() (from a logits processor, at the next decoding step) when the user pressed Stop."""


# --------------------------------------------------------------------------------------------------------------------
# Stopping a running generation


class StopSwitch:
    """Per-session stop flags, checked before every decoding step of the model.

    Gradio's ``cancels=`` and ``/cancel`` cancel the event, but a function already running in a worker thread would go
    on to the end (and hold the only queue slot: gradio waits for the thread before it frees the slot). Each generation
    runs inside :meth:`job`; the Stop button calls :meth:`stop` for its session, and :meth:`check` (called at every
    decoding step by :class:`StopAtNextStep`, a logits processor each pipeline call carries) raises
    :class:`GenerationStopped` in that generation's thread at its next step. A job may also carry ``wanted``, a
    function that says whether anyone still waits for the result (see :func:`gradio_event_watch`: a cancelled or
    disconnected request is not): when it returns False, :meth:`check` raises too.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._current: dict[str, object] = {}
        self._stopped: set[int] = set()
        self._local = threading.local()

    @contextlib.contextmanager
    def job(self, session: str, wanted: Optional[Callable[[], bool]] = None):
        token = object()
        with self._lock:
            self._current[session] = token
        self._local.token = token
        self._local.wanted = wanted
        try:
            yield
        finally:
            self._local.token = None
            self._local.wanted = None
            with self._lock:
                self._stopped.discard(id(token))
                if self._current.get(session) is token:
                    del self._current[session]

    def stop(self, session: str) -> None:
        with self._lock:
            token = self._current.get(session)
            if token is not None:
                self._stopped.add(id(token))

    def check(self, *_: Any) -> None:
        token = getattr(self._local, "token", None)
        if token is not None and id(token) in self._stopped:
            raise GenerationStopped("Stopped.")
        wanted = getattr(self._local, "wanted", None)
        if wanted is not None and not wanted():
            raise GenerationStopped("Cancelled: the request was cancelled or its client disconnected.")


def gradio_event_watch() -> Optional[Callable[[], bool]]:
    """Inside a handler that gradio's queue runs: a function that says whether the event is still wanted (None
    elsewhere, e.g. when a test calls a handler directly).

    Gradio cancels an event (``/cancel``: gradio_client's ``Job.cancel()``, the page's Stop through ``cancels=``) by
    cancelling the asyncio task that awaits the worker thread; the thread itself runs on. A client that goes away marks
    the event not ``alive`` (its ``/queue/data`` stream closed) or ``closed`` (its heartbeat stopped). The function
    reads those marks (the task's ``cancelling()`` count, the event's flags): a few attribute reads, cheap enough for
    every decoding step. The task is looked up once, in the event loop's thread (by gradio's task name, which ends
    with the event id)."""
    import asyncio

    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    if queue is None or event_id is None:
        return None
    event = queue.event_ids_to_events.get(event_id)
    task = None
    with contextlib.suppress(Exception):  # not in one of anyio's worker threads: the event's flags only
        import anyio.from_thread

        suffix = f"<gradio-sep>{event_id}"
        task = anyio.from_thread.run_sync(
            lambda: next((t for t in asyncio.all_tasks() if t.get_name().endswith(suffix)), None))
    if event is None and task is None:
        return None

    def wanted() -> bool:
        if task is not None and (task.cancelling() or task.done()):
            return False
        return event is None or (event.alive and not event.closed)

    return wanted


class StopAtNextStep(LogitsProcessor):
    """transformers' per-step hook into sampling, used as a stop check: leaves the scores as they are, or raises
    :class:`GenerationStopped` when this generation's session pressed Stop."""

    def __init__(self, switch: StopSwitch):
        self.switch = switch

    def __call__(self, input_ids, scores):
        self.switch.check()
        return scores


def _session(request: Optional[gr.Request]) -> str:
    return str(getattr(request, "session_hash", None) or "local")


# --------------------------------------------------------------------------------------------------------------------
# Memory


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
MALLOC_ARENAS = 2


def _glibc():
    """The C library when it is glibc (mallopt, malloc_trim), else None."""
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_malloc_arenas(count: int = MALLOC_ARENAS) -> None:
    """glibc gives a thread that allocates under contention an arena of its own (up to 8 per core) and keeps what is
    freed in each. gradio runs the handlers and the pre- and post-processing in a pool of up to 40 worker threads, so
    under load the server's resident memory grew by a fifth over 300 requests (770 -> 954 MiB, then flat) with no
    object leaking; with two arenas it stays within 10% (benchmarks/web_load.py). ``MALLOC_ARENA_MAX`` in the
    environment wins."""
    libc = _glibc()
    if libc is not None and not os.environ.get("MALLOC_ARENA_MAX"):
        libc.mallopt(M_ARENA_MAX, count)


def release_freed_memory() -> None:
    """Hand memory that the last generation freed back to the system (glibc's malloc_trim): resident memory then
    follows what is alive, not the largest generation so far."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


# --------------------------------------------------------------------------------------------------------------------
# Errors


# The titles of the error pop-ups: what went wrong, in the page's terms (the message says what to do).
INPUT_TITLE = "Input not usable"  # the pipelines' ValueError / TypeError: something about the inputs or settings
FAILED_TITLE = "Generation failed"  # anything else: the app's or the pipelines' own failure
NEGATIVE_GUIDANCE_TITLE = "Negative prompt needs guidance"  # a negative prompt with the guidance slider at 1 (off)


def _error(message: str, title: str) -> gr.Error:
    """A pop-up for the page whose first words, in bold, are ``title``: what went wrong (e.g. "No image"); then
    ``message``, what to do. gradio 6.31's page heads every error pop-up with the word "Error" whatever
    ``gr.Error(title=...)`` says (its toasts are headed by their kind and never show a title), so the title opens the
    message too; API clients also get it as the error's ``title``. An upload's path on the server (in a message of
    nuwa_hf.media or Pillow) is shown as its file name (:func:`without_upload_folders`)."""
    message = without_upload_folders(message)
    return gr.Error(f"<strong>{html.escape(title, quote=False)}.</strong> {html.escape(message, quote=False)}",
                    title=title, print_exception=False)


def without_upload_folders(text: str) -> str:
    """``text`` with gradio's upload folder left out of the paths of uploads in it: gradio stores an upload as
    ``<upload folder>/<hash>/<name>`` ($GRADIO_TEMP_DIR, else $TMPDIR/gradio), and a visitor is told of ``'clip.gif'``,
    the file they gave, not of the server's folders."""
    from gradio.utils import get_upload_folder

    folders = {get_upload_folder(), str(Path(tempfile.gettempdir()) / "gradio")}  # resolved, and as TMPDIR says
    pattern = "|".join(re.escape(folder.rstrip("/")) for folder in sorted(folders, key=len, reverse=True))
    return re.sub(rf"(?:{pattern})/[0-9a-f]{{16,}}/", "", text)


def guarded(method):
    """Turn every exception of a handler into a titled pop-up (:func:`_error`) with the pipeline's message: the server
    never dies."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except gr.Error:
            raise
        except GenerationStopped:
            raise _error("The generation was cancelled with the Stop button.", "Stopped") from None
        except (ValueError, TypeError) as error:  # the pipelines' checks of the inputs and settings
            raise _error(str(error), INPUT_TITLE) from None
        except (FileNotFoundError, ImportError, OSError) as error:
            raise _error(str(error), FAILED_TITLE) from None
        except Exception as error:  # the pipelines' own bugs too: report, keep serving
            traceback.print_exc()
            raise _error(f"{type(error).__name__}: {error}. Try other inputs or settings; if it keeps failing, "
                         "restart the app and report the message.", FAILED_TITLE) from None

    return wrapper


# --------------------------------------------------------------------------------------------------------------------
# The model and the task handlers


class NuwaWebDemo:
    """The model, its processor and one pipeline per task (built on first use), plus the handlers of the tabs."""

    def __init__(self, model_path: str | os.PathLike):
        from transformers import AutoModelForSeq2SeqLM

        self.model_path = str(model_path)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(self.model_path, use_safetensors=True).eval()
        self.processor = load_nuwa_processor(self.model_path)
        self.image_size = self.processor.image_processor.output_size[0]
        self.frames = int(self.model.config.max_visual_grid[0])
        seg = self.model.sketch_vqgan
        self.num_classes = int(seg.num_classes) if seg is not None else None
        self.has_sketches = seg is not None
        generation = getattr(self.model, "generation_config", None)
        self.default_guidance = float(getattr(generation, "guidance_scale", None) or 1.0)
        self.default_top_k = int(getattr(generation, "top_k", None) or 0)
        # a task's own defaults (generation_config.json's task_sampling, e.g. top-k 32 for text-to-video): the
        # sliders start where the pipelines sample
        self.task_defaults = {info.code: task_sampling_defaults(generation, info.name) for info in TASKS}
        self.codebook_size = int(self.model.config.visual_vocab_size)
        self.upscale = max(1, VIEW_PIXELS // self.image_size)
        self.device = 0 if torch.cuda.is_available() else -1
        self.switch = StopSwitch()
        self.stop_check = StopAtNextStep(self.switch)
        self._pipelines: dict[str, Any] = {}
        self._examples: dict[str, Any] = {}
        self._generating = threading.Lock()
        self._setup_lock = threading.Lock()
        self.out_root = Path(tempfile.gettempdir()) / OUTPUT_ROOT_NAME / f"run-{os.getpid()}-{id(self):x}"
        self.out_root.mkdir(parents=True, exist_ok=True)
        atexit.register(shutil.rmtree, str(self.out_root), True)  # (not a bound method: that would keep the model)
        self.class_names = self._class_names()
        self.palette = self._palette()
        self.wording = page_wording(self.processor.tokenizer)

    def wording_for(self, code: str) -> NoticeWording:
        """The page's wording (:func:`page_wording`) for the tab of task ``code``: its notices and errors name the tab's
        text box as the tab does (:func:`prompt_field`: "prompt", or "instruction" on the manipulation tabs)."""
        return dataclasses.replace(self.wording, prompt=prompt_field(code))

    # --- parts -------------------------------------------------------------------------------------------------------

    def pipeline(self, code: str):
        with self._setup_lock:
            if code not in self._pipelines:
                from transformers import pipeline

                pipe = pipeline(get_task_info(code).name, model=self.model, processor=self.processor, device=self.device)
                self._pipelines[code] = pipe
            return self._pipelines[code]

    def examples(self, code: str):
        """Built-in held-out inputs of a task (nuwa_hf.data.task_examples), or None when the worlds cannot be
        drawn here (e.g. their data is not cached and there is no network)."""
        with self._setup_lock:
            if code not in self._examples:
                from nuwa_hf.data.task_examples import task_examples

                try:
                    self._examples[code] = task_examples(code, NUM_BUILTIN_EXAMPLES, self.image_size, self.frames,
                                                         num_sketch_classes=self.num_classes)
                except Exception as error:  # the tab still works with uploads
                    print(f"[nuwa web demo] no built-in {code} examples: {type(error).__name__}: {error}",
                          file=sys.stderr)
                    self._examples[code] = None
            return self._examples[code]

    def _class_names(self) -> list[str]:
        from nuwa_hf.data import SCENE_CLASSES

        count = self.num_classes or len(SCENE_CLASSES)
        return [SCENE_CLASSES[i] if i < len(SCENE_CLASSES) else f"class {i}" for i in range(count)]

    def _palette(self) -> np.ndarray:
        """(num_classes, 3): the colours media.sketch_to_image gives each class (class 0 black): the brush colours."""
        return media.class_palette(len(self.class_names)).astype(np.int64)

    def _workdir(self, code: str) -> Path:
        """A fresh folder for one request's files. Gradio copies a handler's output files to its cache when the handler
        returns and serves the copies, so this process keeps only its newest ``KEEP_OUTPUT_FOLDERS`` folders (an
        older one was copied long ago: one generation runs at a time); other processes' folders older than an hour
        (a server that was killed) are removed too."""
        self.out_root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - CACHE_SECONDS
        for old in self.out_root.parent.iterdir():
            with contextlib.suppress(OSError):
                if old != self.out_root and old.is_dir() and old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
        mine = []
        for folder in self.out_root.iterdir():
            with contextlib.suppress(OSError):
                mine.append((folder.stat().st_mtime_ns, folder))
        for _, old in sorted(mine)[: max(0, len(mine) - KEEP_OUTPUT_FOLDERS + 1)]:
            shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f"{code.lower()}-", dir=self.out_root))

    def remove_outputs(self) -> None:
        """Remove this process' output folder (when the server stops; gradio removes its cached copies itself)."""
        shutil.rmtree(self.out_root, ignore_errors=True)

    # --- running a pipeline --------------------------------------------------------------------------------------

    def _options(self, seed, top_k, guidance=None) -> dict:
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise _error(f"The seed {seed!r} is not a whole number: give an integer >= 0.", "Invalid seed") from None
        if seed < 0:
            raise _error(f"The seed is {seed}: give an integer >= 0.", "Invalid seed")
        options = {"seed": seed, "top_k": int(top_k or 0)}
        if guidance is not None:
            options["guidance_scale"] = float(guidance)
        return options

    def _run(self, code: str, request, progress, *args, **kwargs):
        """Run task ``code``'s pipeline under this session's stop switch, one generation at a time."""
        progress(0, desc=f"{code}: waiting for the model")
        wanted = gradio_event_watch()
        with self._generating, self.switch.job(_session(request), wanted):
            if wanted is not None and not wanted():  # cancelled while waiting for the model
                raise GenerationStopped("Cancelled before it started.")
            progress(0, desc=f"{code}: preparing")
            pipe = self.pipeline(code)
            start = time.perf_counter()
            said: list[str] = []
            try:
                # words the model never saw: shown on the page's info line, in the page's words
                with routed_warnings(said.append), worded_for(self.wording_for(code)):
                    result = pipe(*args, logits_processor=[self.stop_check], **kwargs)
            finally:
                release_freed_memory()
            # the page names resizes itself (_size_note); the rest of the pipeline's warnings go to the info line and
            # pop up as notices
            notes = once([message for message in said if not RESIZE_NOTICE.match(message)], f" {self.wording.known}")
            _call_notes.items = [f"Note: {message}" for message in notes]
            show_notices(notes)
            return result, time.perf_counter() - start

    def _settings(self, options: dict, seconds: float, code: Optional[str] = None,
                  frames: Optional[int] = None) -> str:
        parts = [f"seed {options['seed']}", f"top-k {options['top_k'] or 'off'}"]
        if "guidance_scale" in options:
            parts.append(f"guidance {options['guidance_scale']:g}")
        # the folder's reranking covers the trained frames; a longer video (its grid: frames) is one sample
        scorer, candidates = self.pipeline(code)._reranking({}, frames) if code else (None, 1)
        if scorer is not None and candidates > 1:  # the folder's task_sampling reranks this task
            parts.append(f"best of {candidates} by {scorer.name}")
        return f"{', '.join(parts)}; {seconds:.1f} s at {self.image_size}x{self.image_size} pixels."

    def _generate(self, code: str, request, progress, inputs: dict, options: dict, **frame_options):
        """Run task ``code`` on ``inputs`` (named as the task table names them) with its frame options: the pipeline's
        arguments are read off the table (:meth:`nuwa_hf.tasks.NuwaTaskInfo.call_arguments`)."""
        args, kwargs = get_task_info(code).call_arguments(inputs, **frame_options)
        return self._run(code, request, progress, *args, **kwargs, **options)

    def _outputs(self, code: str, result, notes: list[str], options: dict, seconds: float,
                 grid_frames: Optional[int] = None):
        """The files of one result (media.save_result: the model's pixels and an enlarged copy to look at) and the
        info line: (view, files, info) for an image task, (mp4, gif, files, info) for a video task. ``grid_frames``:
        the frames generated over, given ones included (default: the result's)."""
        folder, stem = self._workdir(code), code.lower()
        if not get_task_info(code).makes_video:
            (native,) = media.save_result(result, folder / stem, is_video=False)
            (view,) = media.save_result(result, folder / f"{stem}_x{self.upscale}", is_video=False, upscale=self.upscale)
            info = "\n".join(notes + _taken_call_notes() + [self._settings(options, seconds, code)])
            return str(view), [str(native), str(view)], info
        # the enlarged GIF, frame strip (and MP4) to look at, and the GIF at the model's size
        gif, strip, *mp4 = media.save_result(result, folder / f"{stem}_x{self.upscale}", is_video=True, fps=FPS,
                                             upscale=self.upscale, write_mp4=True)
        files = mp4 + [gif, media.save_gif(result, folder / f"{stem}.gif", fps=FPS), strip]
        if not mp4:
            notes = notes + ["No MP4: PyAV is not installed (pip install 'av>=14'); the GIF shows the video."]
        info = "\n".join(notes + _taken_call_notes()
                         + [f"{len(result)} frames; " + self._settings(options, seconds, code,
                                                                       grid_frames or len(result))])
        return (str(mp4[0]) if mp4 else None), str(gif), [str(f) for f in files], info

    # --- inputs --------------------------------------------------------------------------------------------------

    @staticmethod
    def _negative_prompt(text, options: dict) -> list[str]:
        """The negative prompt box (empty: none) -> ``options["negative_prompt"]`` and the info line's note. It acts
        through guidance: at guidance 1 (off) the page says to raise guidance or clear the box, before generating."""
        text = (text or "").strip()
        if not text:
            return []
        guidance = options.get("guidance_scale")
        if guidance is not None and guidance <= 1.0:
            raise _error(f"The negative prompt {text!r} acts through guidance, which is off at guidance scale "
                         f"{guidance:g}: raise 'Guidance scale' under Sampling above 1 (e.g. 3), or clear the "
                         "negative prompt.", NEGATIVE_GUIDANCE_TITLE)
        options["negative_prompt"] = text
        return [f"Negative prompt: {text!r}."]

    @staticmethod
    def _prompt(text, what="prompt", example="a red 7") -> str:
        text = (text or "").strip()
        if not text:
            raise _error(f"The {what} is empty: type what to generate, e.g. '{example}'.", f"No {what}")
        return text

    def _size_note(self, size, what: str) -> list[str]:
        width, height = size
        if (width, height) == (self.image_size, self.image_size):
            return []
        how = "resized" if width == height else "resized (shorter side) and centre-cropped"
        return [f"Info: the {what} is {width}x{height}; it was {how} to the model's "
                f"{self.image_size}x{self.image_size} pixels."]

    def _load_video(self, upload, example, code: str, max_frames: Optional[int] = None):
        """Frames of the uploaded video, else of a built-in example; plus notes for the info line."""
        if upload:
            path = Path(upload)
            try:
                frames = media.load_video(path, num_frames=max_frames)
            except ValueError as error:  # the limits, damaged files, other kinds of file: media says what to give
                raise _error(f"Could not read the uploaded file '{shown_name(path)}' as a video: {error}",
                             "Unreadable video") from None
            except Exception as error:
                raise _error(f"Could not read the uploaded file '{shown_name(path)}' as a video ({error}). Upload a GIF "
                             "or an MP4/WebM/AVI video (or a .npy array (T, H, W, 3)).", "Unreadable video") from None
            return frames, [f"Input: the uploaded video '{shown_name(path)}' ({len(frames)} frame(s) used)."] + \
                self._size_note(frames[0].size, "video")
        examples = self.examples(code)
        if examples is None or examples.references is None:
            raise _error("No video given: upload a GIF or MP4 (the built-in examples are not available here).",
                         "No video")
        index = self._example_index(example)
        frames = media.load_video(np.asarray(examples.references[index]), num_frames=max_frames)
        return frames, [f"Input: built-in example {index + 1} (held-out Moving MNIST)."]

    @staticmethod
    def _example_index(example) -> int:
        try:
            return max(0, min(int(str(example).split()[-1]) - 1, NUM_BUILTIN_EXAMPLES - 1))
        except (ValueError, IndexError):
            return 0

    def _fill_class(self, name) -> int:
        return self.class_names.index(name) if name in self.class_names else 0

    def _canvas_to_map(self, value, fill: int) -> Optional[np.ndarray]:
        """The drawing of an ImageEditor (background + painted layers) -> a class map at the canvas' size, read through
        the class colours (media.drawing_to_class_map; white and unpainted areas are ``fill``)."""
        background = _drawn((value or {}).get("background"))
        layers = [layer for layer in (value or {}).get("layers") or [] if _drawn(layer) is not None]
        if background is None and not layers:
            return None
        size = background.size if background is not None else layers[0].size
        drawing = np.zeros((size[1], size[0], 4), dtype=np.uint8)  # transparent: the fill class
        if background is not None:
            drawing[:] = np.asarray(background.convert("RGBA"))
        for layer in _editor_layers(value, size):  # a layer's strokes replace what is under them
            painted = layer[..., 3] >= 128
            drawing[painted] = layer[painted]
            drawing[painted, 3] = 255
        return media.drawing_to_class_map(drawing, len(self.class_names), fill)

    def _load_class_maps(self, upload, fill: int) -> np.ndarray:
        """An uploaded class map (PNG in mode L/P, .npy (H, W)) or sequence (.npy (T, H, W), GIF in mode P) ->
        (T, H, W); a picture painted in the class colours (RGB PNG, GIF) is read back through them, white areas as
        ``fill`` (media.load_sketch_video)."""
        path = Path(upload)
        try:
            return media.load_sketch_video(path, num_classes=len(self.class_names), fill=fill)
        except ValueError as error:  # the limits, damaged files, colour pictures that are no drawing: media says what
            raise _error(f"Could not read the class map '{shown_name(path)}': {error}", "Unreadable sketch") from None
        except Exception as error:
            raise _error(f"Could not read the class map '{shown_name(path)}' ({error}). Upload a PNG in mode L/P whose "
                         "pixel values are class ids, a .npy integer array (H, W) or (T, H, W), or a GIF in mode P.",
                         "Unreadable sketch") \
                from None

    def _check_classes(self, maps: np.ndarray) -> None:
        top = int(maps.max()) if maps.size else 0
        if top >= len(self.class_names):
            raise _error(f"The class map holds class id {top} but the model knows {len(self.class_names)} classes "
                         f"(ids 0..{len(self.class_names) - 1}: {', '.join(self.class_names)}): map the other "
                         "labels to these classes.", "Unknown class in the sketch")

    def _model_maps(self, maps: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Class maps (T, H, W) -> the model's size through the image processor (nearest neighbour + centre crop)."""
        self._check_classes(maps)
        notes = self._size_note((maps.shape[2], maps.shape[1]), "sketch")
        processed = self.processor.image_processor.preprocess_sketches(
            list(maps), num_sketch_classes=len(self.class_names), return_tensors="np")["sketch_maps"]
        return np.asarray(processed, dtype=np.int64), notes

    def _sketch_maps(self, canvas, upload, fill_name) -> tuple[np.ndarray, list[str]]:
        fill = self._fill_class(fill_name)
        if upload:
            maps = self._load_class_maps(upload, fill)
            source = [f"Input: the uploaded class map '{shown_name(upload)}' ({len(maps)} frame(s))."]
        else:
            drawn = self._canvas_to_map(canvas, fill)
            if drawn is None:
                raise _error("The canvas is empty: draw a sketch with the class colours (or upload a class map).",
                             "Empty canvas")
            maps, source = drawn[None], ["Input: the drawing on the canvas."]
        processed, notes = self._model_maps(maps)
        return processed, source + notes

    def _sketch_view(self, maps: np.ndarray, folder: Path, stem: str) -> str:
        """The class maps as the model sees them, in the class colours: a PNG for one, a GIF for several."""
        pictures = [media.sketch_to_image(m, num_classes=len(self.class_names)) for m in maps]
        if len(pictures) == 1:
            return str(media.save_image(pictures[0], folder / f"{stem}.png", upscale=self.upscale))
        return str(media.save_gif(pictures, folder / f"{stem}.gif", fps=FPS, upscale=self.upscale))

    def _region(self, editor, region, verb: str) -> tuple[PIL.Image.Image, Any, list[str]]:
        """(image, mask for the pipeline, notes) from an ImageEditor value and the region choice: a preset region is
        the pipeline's own shortcut; else the mask is what the brush painted (any stroke, however faint). ``verb``:
        what the tab does to the region, as its labels say (:func:`region_verb`)."""
        background = _drawn((editor or {}).get("background"))
        if background is None:  # also the editor's "Clear canvas": see _drawn
            raise _error("The editor is empty (a plain white picture counts as empty): upload or paste an image "
                         "into it (or reload the page for the built-in example).", "No image")
        rgba = background.convert("RGBA")
        image = PIL.Image.alpha_composite(PIL.Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")
        notes = self._size_note(image.size, "image")
        if region and region != PAINTED:
            return image, region, notes + [f"Region: {region}."]
        painted = np.zeros((image.height, image.width), dtype=bool)
        for layer in _editor_layers(editor, image.size):
            painted |= layer[..., 3] >= 32
        if not painted.any():
            raise _error(f"The mask covers nothing: paint over the part of the image to {verb} with the brush, or "
                         f"choose a preset region such as 'bottom half' under 'Region to {verb}'.", "Nothing painted")
        share = painted.mean()
        return image, PIL.Image.fromarray(painted.astype(np.uint8) * 255, mode="L"), \
            notes + [f"Region: the painted mask ({share:.0%} of the image)."]

    # --- the handlers (one per tab; their arguments are the tab's inputs, in the order of the task table's) ----------

    @guarded
    def text_to_image(self, prompt, seed, guidance, top_k, negative_prompt="", request: gr.Request = None,
                      progress=gr.Progress(track_tqdm=True)):
        prompt = self._prompt(prompt)
        options = self._options(seed, top_k, guidance)
        notes = [f"Prompt: {prompt!r}."] + self._negative_prompt(negative_prompt, options)
        image, seconds = self._generate("T2I", request, progress, {"prompt": prompt}, options)
        return self._outputs("T2I", image, notes, options, seconds)

    @guarded
    def text_to_video(self, prompt, num_frames, seed, guidance, top_k, negative_prompt="", request: gr.Request = None,
                      progress=gr.Progress(track_tqdm=True)):
        prompt = self._prompt(prompt, example="the digit 3 is moving up then down")
        options = self._options(seed, top_k, guidance)
        notes = [f"Prompt: {prompt!r}."] + self._negative_prompt(negative_prompt, options)
        frames, seconds = self._generate("T2V", request, progress, {"prompt": prompt}, options,
                                         num_frames=int(num_frames))
        if int(num_frames) > self.frames:
            notes.append(f"Info: the model was trained on {self.frames} frames; the rest came from a sliding window.")
        return self._outputs("T2V", frames, notes, options, seconds)

    @guarded
    def video_prediction(self, upload, example, given, predict, seed, top_k, request: gr.Request = None,
                         progress=gr.Progress(track_tqdm=True)):
        given, predict = int(given), int(predict)
        frames, notes = self._load_video(upload, example, "V2V", max_frames=given)
        if len(frames) < given:
            raise _error(f"The video has {len(frames)} frame(s) but 'Given frames' is {given}: upload a video with at "
                         f"least {given} frames, or lower 'Given frames'.", "Video too short")
        options = self._options(seed, top_k)
        video, seconds = self._generate("V2V", request, progress, {"video": frames[:given]}, options,
                                        num_condition_frames=given, num_frames_to_predict=predict)
        notes.append(f"The first {given} frame(s) are given (as the VQ-GAN reconstructs them); {predict} predicted.")
        return self._outputs("V2V", video, notes, options, seconds, grid_frames=given + predict)

    @guarded
    def sketch_to_image(self, canvas, upload, fill_name, seed, guidance, top_k, request: gr.Request = None,
                        progress=gr.Progress(track_tqdm=True)):
        maps, notes = self._sketch_maps(canvas, upload, fill_name)
        if len(maps) > 1:
            notes.append(f"Info: the upload has {len(maps)} frames; the first one is used.")
        options = self._options(seed, top_k, guidance)
        image, seconds = self._generate("S2I", request, progress, {"sketch": maps[0]}, options)
        view, files, info = self._outputs("S2I", image, notes, options, seconds)
        sketch = self._sketch_view(maps[:1], Path(view).parent, "sketch")
        return sketch, view, files, info

    @guarded
    def sketch_to_video(self, canvas, upload, fill_name, motion, num_frames, seed, guidance, top_k,
                        request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        maps, notes = self._sketch_maps(canvas, upload, fill_name)
        num_frames = int(num_frames)
        if len(maps) == 1:  # one drawing: its shapes move (nuwa_hf.data.sketch_motion)
            maps, note = move_shapes(maps[0], motion, num_frames, num_classes=len(self.class_names))
            moved = motion and motion != "none" and note is None  # the note says why the shapes did not move
            notes += ([f"Info: {note}"] if note else []) + ([f"Motion: {motion}."] if moved else [])
        elif len(maps) > self.frames:
            notes.append(f"Info: the sequence has {len(maps)} frames; the model makes {self.frames}, so the first "
                         f"{self.frames} are used.")
            maps = maps[: self.frames]
        options = self._options(seed, top_k, guidance)
        video, seconds = self._generate("S2V", request, progress, {"sketch_video": maps}, options)
        mp4, gif, files, info = self._outputs("S2V", video, notes, options, seconds)
        sketch = self._sketch_view(maps, Path(gif).parent, "sketch")
        return sketch, mp4, gif, files, info

    @guarded
    def image_completion(self, editor, region, seed, top_k, request: gr.Request = None,
                         progress=gr.Progress(track_tqdm=True)):
        image, mask, notes = self._region(editor, region, region_verb("I2I"))
        options = self._options(seed, top_k)
        result, seconds = self._generate("I2I", request, progress, {"image": image, "mask": mask}, options)
        return self._outputs("I2I", result, notes, options, seconds)

    @guarded
    def image_manipulation(self, editor, instruction, region, seed, guidance, top_k, negative_prompt="",
                           request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        instruction = self._prompt(instruction, "instruction", "a blue 7")
        options = self._options(seed, top_k, guidance)
        negative = self._negative_prompt(negative_prompt, options)
        image, mask, notes = self._region(editor, region, region_verb("TI2I"))
        result, seconds = self._generate("TI2I", request, progress, {"image": image, "prompt": instruction, "mask": mask},
                                         options)
        return self._outputs("TI2I", result, [f"Instruction: {instruction!r}."] + negative + notes, options, seconds)

    @guarded
    def video_manipulation(self, upload, example, instruction, num_frames, seed, guidance, top_k, negative_prompt="",
                           request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        instruction = self._prompt(instruction, "instruction", "the digit 3 is moving left then right")
        options = self._options(seed, top_k, guidance)
        negative = self._negative_prompt(negative_prompt, options)
        frames, notes = self._load_video(upload, example, "TV2V", max_frames=1)
        video, seconds = self._generate("TV2V", request, progress, {"video": frames[:1], "prompt": instruction},
                                        options, num_condition_frames=1, num_frames=int(num_frames))
        notes = [f"Instruction: {instruction!r}; the first frame is kept."] + negative + notes
        return self._outputs("TV2V", video, notes, options, seconds)

    def stop(self, request: gr.Request = None):
        self.switch.stop(_session(request))

    def video_preview(self, code: str, upload, example) -> tuple[Optional[str], str]:
        """(GIF, label) of the video a V2V / TV2V generation would start from now: the upload, else the built-in
        example ``example``; its first :attr:`frames` frames, scaled to about ``VIEW_PIXELS`` for viewing. An upload
        that cannot be read shows nothing (Generate says why)."""
        if upload:
            what = f"the upload '{shown_name(upload)}'"
            try:
                frames = media.load_video(Path(upload), num_frames=self.frames)
            except Exception:  # Generate gives the message; the preview shows none
                return None, f"Input video: {what} cannot be read"
        else:
            examples = self.examples(code)
            if examples is None or examples.references is None:
                return None, "Input video: none (no built-in examples here: upload one)"
            index = self._example_index(example)
            frames = media.load_video(np.asarray(examples.references[index]), num_frames=self.frames)
            what = f"built-in example {index + 1}"
        scale = VIEW_PIXELS / max(frames[0].size)
        size = tuple(max(1, round(side * scale)) for side in frames[0].size)
        path = self._workdir(f"{code}-input") / "input.gif"
        media.save_gif([frame.resize(size, PIL.Image.NEAREST) for frame in frames], path, fps=FPS)
        return str(path), f"Input video: {what}"

    # --- defaults shown in the UI ----------------------------------------------------------------------------------

    def default_sketch_map(self) -> np.ndarray:
        """(H, W) class ids of the canvas' starting picture: a held-out scene (else two bands and a square)."""
        examples = self.examples("S2I") if self.has_sketches else None
        if examples is not None and examples.sketches is not None:
            return np.asarray(examples.sketches[0], dtype=np.int64)
        size = self.image_size
        sketch = np.zeros((size, size), dtype=np.int64)
        sketch[size // 2:] = min(1, len(self.class_names) - 1)
        sketch[size // 4: 3 * size // 4, size // 3: 2 * size // 3] = min(4, len(self.class_names) - 1)
        return sketch

    def default_sketch(self) -> PIL.Image.Image:
        """The canvas' starting picture (:meth:`default_sketch_map`) in the palette, enlarged to the canvas."""
        sketch = self.default_sketch_map()
        return media.upscaled(media.sketch_to_image(sketch, num_classes=len(self.class_names)), self.upscale)

    def default_motion(self) -> str:
        """The first direction in which the starting sketch's shapes have room to move over the trained frames (its
        circle sits near the right edge in the shipped model's first held-out scene, so "right" left it still)."""
        sketch, names = self.default_sketch_map(), len(self.class_names)
        for motion in DEFAULT_MOTIONS:
            if move_shapes(sketch, motion, self.frames, num_classes=names)[1] is None:
                return motion
        return "none"

    def default_edit(self, code: str) -> Optional[dict]:
        """The editor's starting value: a held-out digit image with the region of its example painted in."""
        examples = self.examples(code)
        if examples is None:
            return None
        original = examples.inputs["image"][0]
        image = media.upscaled(original.convert("RGB"), self.upscale)
        pipe = self.pipeline(code)
        tokens = region_to_token_mask(examples.inputs["mask"][0], original.size, pipe.token_grid(),
                                      self.processor.image_processor)
        layer = np.zeros((image.height, image.width, 4), dtype=np.uint8)
        layer[token_mask_to_pixels(tokens, image.size)] = (255, 0, 255, 150)
        return {"background": image, "layers": [PIL.Image.fromarray(layer, mode="RGBA")], "composite": None}

    def default_instruction(self, code: str, example=None) -> str:
        examples = self.examples(code)
        if examples is None or not examples.texts:
            return ""
        return examples.texts[self._example_index(example)]


def page_wording(tokenizer) -> NoticeWording:
    """How the page words the pipelines' unknown-word notices (nuwa_hf.pipelines.notices): it has no control that
    keeps such words, so it names none and tells the visitor to rephrase, listing the words the model knows by kind
    (nuwa_hf.processing.vocabulary.vocabulary_by_kind: digits, colours, motions, other words)."""
    from nuwa_hf.processing.vocabulary import vocabulary_by_kind

    kinds = "; ".join(f"{kind}: {', '.join(words)}" for kind, words in vocabulary_by_kind(tokenizer).items() if words)
    return NoticeWording(keep=None, drop=None, keep_instead=None,
                         known=f"To steer the result, rephrase with words it knows ({kinds}).",
                         part_of_image="paint over only the part to change",
                         invert="invert it in an image editor (Invert / Negative) and upload that")


def _drawn(picture: Optional[PIL.Image.Image]) -> Optional[PIL.Image.Image]:
    """An ImageEditor picture, or None when it shows nothing: absent, every pixel fully transparent, or every pixel
    opaque white. After its "Clear canvas" button the editor sends no background when it started without layers
    (the sketch canvases), but a plain white one at the canvas' size when it started with a painted layer (the
    image tabs' built-in example; gradio 6.31, seen in Chromium); a plain white upload cannot be told from that."""
    if picture is None:
        return None
    if picture.mode in ("RGBA", "LA", "PA") and picture.getchannel("A").getextrema()[1] == 0:
        return None
    if all(extrema == (255, 255) for extrema in picture.convert("RGBA").getextrema()):
        return None
    return picture


def _editor_layers(value, size: tuple[int, int]) -> list[np.ndarray]:
    """The painted layers of an ImageEditor value as RGBA arrays (H, W, 4) at ``size`` (nearest neighbour)."""
    layers = []
    for layer in (value or {}).get("layers") or []:
        if layer is not None:
            layer = layer.convert("RGBA")
            layers.append(np.asarray(layer if layer.size == size else layer.resize(size, PIL.Image.NEAREST)))
    return layers


# --------------------------------------------------------------------------------------------------------------------
# The page


def _legend(demo: NuwaWebDemo) -> str:
    swatches = []
    for index, (name, colour) in enumerate(zip(demo.class_names, demo.palette)):
        red, green, blue = (int(c) for c in colour)
        swatches.append(
            f'<span style="display:inline-block;margin-right:1em"><span style="display:inline-block;width:1em;'
            f'height:1em;vertical-align:middle;border:1px solid #888;background:rgb({red},{green},{blue})"></span> '
            f"{index} {html.escape(name)}</span>")
    return "<div><b>Classes</b> (brush colours): " + "".join(swatches) + "</div>"


def _sampling_controls(demo: NuwaWebDemo, prefix: str, code: str, guidance: bool = True, negative: bool = False):
    """Seed, guidance (tasks with a condition), top-k, starting at the task's own defaults, and (text tasks,
    ``negative``) the negative prompt, empty: (seed, guidance or None, top-k, negative prompt or None)."""
    own = demo.task_defaults.get(code, {})
    with gr.Accordion("Sampling", open=False, elem_id=f"{prefix}-sampling"):
        seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id=f"{prefix}-seed")
        scale = None
        if guidance:
            scale = gr.Slider(1.0, 8.0, value=float(own.get("guidance_scale", demo.default_guidance)), step=0.5,
                              label="Guidance scale (1 = off)", elem_id=f"{prefix}-guidance")
        top_k = gr.Slider(0, demo.codebook_size, value=int(own.get("top_k", demo.default_top_k)), step=1,
                          label="Top-k (0 = off)", elem_id=f"{prefix}-top-k")
        negative_prompt = None
        if negative:  # an advanced control, empty unless asked for: it can take away what it shares with the prompt
            negative_prompt = gr.Textbox(
                value="", label="Negative prompt (optional)", placeholder="e.g. a red 8", max_lines=1,
                info=NEGATIVE_PROMPT_INFO, elem_id=f"{prefix}-negative-prompt")
    return seed, scale, top_k, negative_prompt


def _buttons(prefix: str):
    with gr.Row():
        generate = gr.Button("Generate", variant="primary", elem_id=f"{prefix}-generate")
        stop = gr.Button("Stop", variant="stop", elem_id=f"{prefix}-stop")
    return generate, stop


def GuardedImageEditor(**kwargs) -> gr.ImageEditor:
    """gradio's ImageEditor, whose upload decoding (in gradio, before a handler runs) ends in a clear message when
    Pillow refuses a decompression bomb or cannot read the file, instead of a generic error. (The instance's method
    is wrapped: a subclass of a gradio component makes gradio write a .pyi file beside this module.)"""
    editor = gr.ImageEditor(**kwargs)
    preprocess = editor.preprocess

    def guarded_preprocess(payload):
        try:
            return preprocess(payload)
        except PIL.Image.DecompressionBombError as error:
            raise _error(f"The uploaded image is too large to decode ({error}): resize it to a few megapixels "
                         "(the model works at a few dozen pixels) and upload it again.", "Image too large") from None
        except (PIL.UnidentifiedImageError, OSError, SyntaxError) as error:
            raise _error(f"Could not read the uploaded image ({error}): upload a whole PNG, JPEG or WebP file.",
                         "Unreadable image") from None

    editor.preprocess = guarded_preprocess
    return editor


def UploadFile(**kwargs) -> gr.File:
    """gradio's File for one uploaded file, passed to the handler as its path in gradio's upload cache. gradio's own
    ``preprocess`` (type "filepath") also creates an empty ``NamedTemporaryFile`` in the cache for every upload and
    never deletes it (nor ``delete_cache``: it is not registered), so every V2V / TV2V / class-map request would
    leave one more empty file in the temp folder; this one returns the uploaded path with the same file-type check."""
    from gradio_client.utils import is_valid_file

    upload = gr.File(**kwargs)
    preprocess = upload.preprocess

    def single_path(payload):
        single = upload.type == "filepath" and upload.file_count == "single" and hasattr(payload, "path")
        if payload is None or not single:
            return preprocess(payload)
        if upload.file_types and not is_valid_file(payload.path, upload.file_types):
            raise _error(f"The uploaded file '{shown_name(payload.path)}' is not one of "
                         f"{', '.join(upload.file_types)}: upload a file of one of these types.", "Wrong kind of file")
        return str(payload.path)

    upload.preprocess = single_path
    return upload


def _wire(demo: NuwaWebDemo, generate, stop, fn, inputs, outputs, api_name: str) -> None:
    event = generate.click(fn, inputs, outputs, api_name=api_name, concurrency_id=CONCURRENCY_ID,
                           concurrency_limit=1)
    stop.click(demo.stop, None, None, cancels=[event], queue=False, api_visibility="private")


def _outputs(info, prefix: str) -> list:
    """A tab's outputs in its endpoint's order ([sketch view,] image, files, info or [sketch view,] mp4, gif, files,
    info), laid out result first: the image, or the MP4 and the GIF side by side at a fixed height; then the info
    line, the sketch view (sketch tasks) and the downloads."""
    if info.makes_video:
        with gr.Row(equal_height=True):
            views = [gr.Video(label="Video (MP4)", format="mp4", interactive=False, loop=True, autoplay=True,
                              height=RESULT_HEIGHT, elem_id=f"{prefix}-mp4"),
                     gr.Image(label="Video (GIF)", type="filepath", interactive=False, height=RESULT_HEIGHT,
                              elem_id=f"{prefix}-gif")]
    else:
        label = {"I2I": "Completed image", "TI2I": "Edited image"}.get(info.code, "Image")
        views = [gr.Image(label=label, type="filepath", format="png", interactive=False, height=RESULT_HEIGHT,
                          elem_id=f"{prefix}-output")]
    text = gr.Textbox(label="Info", lines=3, interactive=False, elem_id=f"{prefix}-info")
    sketch = []
    if info.condition == "sketch":
        label = "The sketches as the model sees them" if info.makes_video else "The sketch as the model sees it"
        sketch = [gr.Image(label=label, type="filepath", interactive=False, height=PREVIEW_HEIGHT,
                           elem_id=f"{prefix}-sketch")]
    files = gr.File(label="Download", file_count="multiple", interactive=False, elem_id=f"{prefix}-files")
    return sketch + views + [files, text]


def _shown_path(model_path: str) -> str:
    """A model folder inside this repository relative to its root (checkpoints/nuwa-tiny); anything else as given."""
    path = Path(model_path)
    if path.exists():
        with contextlib.suppress(ValueError):
            return path.resolve().relative_to(REPO_ROOT).as_posix()
    return model_path


def _example_choices() -> list[str]:
    return [f"Example {i + 1}" for i in range(NUM_BUILTIN_EXAMPLES)]


# What the uploads may be: what media.load_video / media.load_sketch_video read from one file.
VIDEO_TYPES = [*media.VIDEO_SUFFIXES, ".npy"]
SKETCH_TYPES = [".png", ".gif", ".npy"]


def queue_size() -> int:
    """How many requests may wait for the generation slot: ``NUWA_WEB_QUEUE_SIZE``, else 16."""
    value = os.environ.get(QUEUE_SIZE_ENV_VAR, "").strip()
    try:
        size = int(value) if value else DEFAULT_QUEUE_SIZE
    except ValueError:
        raise ValueError(f"{QUEUE_SIZE_ENV_VAR}={value!r} is not a whole number: give the number of requests that may "
                         "wait (e.g. 16).") from None
    if size < 1:
        raise ValueError(f"{QUEUE_SIZE_ENV_VAR}={size}: at least 1 request must be able to wait.")
    return size


# --------------------------------------------------------------------------------------------------------------------
# The tabs: one per row of the task table (nuwa_hf.tasks.TASKS), its inputs, frame options and outputs read off the row


# The handler of each task; its arguments are the tab's inputs in the order the table lists the task's inputs (then its
# frame options, then the sampling options, the text tasks' negative prompt last, "" when left out): the endpoints'
# argument order, which clients rely on.
HANDLERS = {"T2I": "text_to_image", "T2V": "text_to_video", "V2V": "video_prediction", "S2I": "sketch_to_image",
            "I2I": "image_completion", "TI2I": "image_manipulation", "S2V": "sketch_to_video",
            "TV2V": "video_manipulation"}
# The optional inputs of the table the page offers (I2I's prompt is the pipeline's business: the page leaves it out).
OFFERED_OPTIONAL_INPUTS = ("mask",)
EXAMPLE_PROMPTS = {"T2I": T2I_EXAMPLES, "T2V": T2V_EXAMPLES}
DEFAULT_INSTRUCTIONS = {"TI2I": "a blue 7", "TV2V": "the digit 3 is moving left then right"}


def prompt_field(code: str) -> str:
    """What the tab of task ``code`` calls its text box, in lower case: "prompt" on the text-to-image / video tabs (a
    caption to generate from), "instruction" on the manipulation tabs (what the edited part should show, what should
    happen). Its label starts with this word, and the notices and errors about the text name it so
    (:meth:`NuwaWebDemo.wording_for`)."""
    return "prompt" if code in EXAMPLE_PROMPTS else "instruction"


def region_verb(code: str) -> str:
    """What the tab of an image task ``code`` does to the painted region, as its labels and messages say: "change"
    (TI2I, a text says how) or "regenerate" (I2I)."""
    return "change" if get_task_info(code).condition == "text" else "regenerate"


class _Page:
    """What every tab shares: the demo, the brushes and the canvas size."""

    def __init__(self, demo: NuwaWebDemo):
        self.demo = demo
        self.sketch_brush = gr.Brush(colors=[f"rgb({r}, {g}, {b})" for r, g, b in demo.palette.tolist()],
                                     color_mode="fixed", default_size=max(2, demo.upscale * 2))
        self.mask_brush = gr.Brush(colors=[("#ff00ff", 0.6)], color_mode="fixed", default_size=max(4, demo.upscale * 3))
        self.regions = [PAINTED] + [r for r in REGION_SHORTCUTS if r != "all"]
        self.canvas = (demo.image_size * demo.upscale,) * 2  # the enlarged pictures fill the canvas exactly

    # --- one input of the task table -> its components (in the endpoint's argument order) ---------------------------

    def prompt(self, info, prefix: str) -> list:
        if prompt_field(info.code) == "prompt":  # a caption to generate from
            examples = EXAMPLE_PROMPTS[info.code]
            prompt = gr.Textbox(label="Prompt", value=examples[0], elem_id=f"{prefix}-prompt", placeholder=examples[0])
            gr.Examples([[p] for p in examples], inputs=[prompt], label="Example prompts")
            return [prompt]
        what = "what the painted part should show" if "image" in info.inputs else "what should happen"
        instruction = gr.Textbox(label=f"Instruction: {what}", elem_id=f"{prefix}-instruction",
                                 value=self.demo.default_instruction(info.code) or DEFAULT_INSTRUCTIONS[info.code])
        return [instruction]

    def image(self, info, prefix: str) -> list:
        verb = region_verb(info.code)
        return [GuardedImageEditor(value=self.demo.default_edit(info.code), label=f"Image: paint the part to {verb}",
                                   type="pil", image_mode="RGBA", sources=["upload", "clipboard"],
                                   brush=self.mask_brush, format="png", layers=False, transforms=(),
                                   elem_id=f"{prefix}-editor", canvas_size=self.canvas)]

    def mask(self, info, prefix: str) -> list:
        verb = region_verb(info.code)
        return [gr.Dropdown(self.regions, value=PAINTED, label=f"Region to {verb}")]

    def video(self, info, prefix: str) -> list:
        kept = "" if "num_frames_to_predict" in info.frame_options else "its first frame is kept; "
        with gr.Row(equal_height=True):
            upload = UploadFile(label=f"Video (GIF, MP4, ...): {kept}an upload replaces the built-in example",
                                file_types=VIDEO_TYPES, type="filepath", elem_id=f"{prefix}-upload")
            # what a generation would start from, in sight: the upload, else the chosen built-in example
            path, label = self.demo.video_preview(info.code, None, _example_choices()[0])
            preview = gr.Image(value=path, label=label, type="filepath", format="gif", interactive=False,
                               height=PREVIEW_HEIGHT, elem_id=f"{prefix}-input-video")
        example = gr.Dropdown(_example_choices(), value=_example_choices()[0], label="Built-in example")

        def shown(upload_path, choice, code=info.code):
            path, label = self.demo.video_preview(code, upload_path, choice)
            return gr.update(value=path, label=label)

        for changed in (upload.change, example.change):
            changed(shown, [upload, example], preview, api_visibility="private", queue=False)
        return [upload, example]

    def sketch(self, info, prefix: str) -> list:
        demo, many = self.demo, info.makes_video
        canvas = GuardedImageEditor(value=demo.default_sketch(), type="pil", image_mode="RGBA", sources=["upload"],
                                    label="Sketch of the first frame" if many else "Sketch: paint with the class colours",
                                    brush=self.sketch_brush, format="png", layers=False, transforms=(),
                                    elem_id=f"{prefix}-canvas", canvas_size=self.canvas)
        motion = count = None
        if many:
            motion = gr.Radio(list(MOTION_CHOICES), value=demo.default_motion(),
                              label="Motion of the shapes (circle, square, triangle)")
            count = gr.Slider(1, demo.frames, value=demo.frames, step=1, label="Number of frames")
        what = ("a class map or a PNG painted in the class colours (moved by the motion), or a sequence (.npy (T, H, "
                "W), GIF)" if many else
                "a class map (PNG in mode L/P, .npy) or a PNG painted in the class colours: replaces the canvas")
        upload = UploadFile(label=f"Or upload {what}", file_types=SKETCH_TYPES, type="filepath",
                            elem_id=f"{prefix}-upload")
        fill = gr.Dropdown(demo.class_names, value=demo.class_names[min(1, len(demo.class_names) - 1)],
                           label="Class of empty (white) canvas areas")
        return [canvas, upload, fill] + ([motion, count] if many else [])

    sketch_video = sketch

    # --- the frame options of the task table -------------------------------------------------------------------------

    def frame_options(self, info) -> list:
        frames = self.demo.frames
        if "num_frames_to_predict" in info.frame_options:  # V2V: given frames, then the predicted ones
            return [gr.Slider(1, max(frames - 1, 1), value=1, step=1, label="Given frames"),
                    gr.Slider(1, max(2 * frames, 2), value=max(frames - 1, 1), step=1, label="Frames to predict")]
        if "num_frames" not in info.frame_options:
            return []
        if "num_condition_frames" in info.frame_options:  # TV2V: the page keeps one given frame
            return [gr.Slider(2, max(3 * frames, 2), value=max(frames, 2), step=1,
                              label="Number of frames (the kept first frame included)")]
        return [gr.Slider(1, max(3 * frames, 2), value=frames, step=1, label="Number of frames",
                          info=f"trained on {frames}; more slide a window over time")]

    def tab(self, info) -> None:
        demo, prefix = self.demo, info.code.lower()
        with gr.Tab(f"{info.code} {info.title}", id=prefix):
            if info.condition == "sketch":
                gr.HTML(_legend(demo))
            with gr.Row():
                with gr.Column():
                    inputs = []
                    for name in info.inputs + tuple(n for n in info.optional_inputs if n in OFFERED_OPTIONAL_INPUTS):
                        inputs += getattr(self, name)(info, prefix)
                    inputs += self.frame_options(info)
                    seed, scale, top_k, negative = _sampling_controls(demo, prefix, info.code,
                                                                      guidance=info.condition != "none",
                                                                      negative=info.condition == "text")
                with gr.Column():
                    # Generate heads the output column and the result comes right under it: in sight when the button
                    # is pressed, however long the tab's inputs are (a 1280x1000 window)
                    generate, stop = _buttons(prefix)
                    outputs = _outputs(info, prefix)
            if "video" in info.inputs and "prompt" in info.inputs:  # a built-in example brings its instruction
                inputs[1].change(lambda choice, code=info.code: demo.default_instruction(code, choice) or gr.skip(),
                                 inputs[1], inputs[2], api_visibility="private", queue=False)
            # the negative prompt comes last (it came after the others): clients that leave it out get none
            sampling = [seed] + ([scale] if scale is not None else []) + [top_k] + ([negative] if negative is not None else [])
            _wire(demo, generate, stop, getattr(demo, HANDLERS[info.code]), inputs + sampling, outputs, prefix)


def build_demo(model_path: str | os.PathLike, max_queue: Optional[int] = None) -> gr.Blocks:
    """The Blocks app for the model folder / Hub id ``model_path`` (loaded now), with its queue set up: one generation
    at a time, at most ``max_queue`` (default :func:`queue_size`) waiting; more are refused with "Queue is full"."""
    limit_malloc_arenas()
    demo = NuwaWebDemo(model_path)
    size, frames = demo.image_size, demo.frames
    with gr.Blocks(title="NUWA: text, sketch, image and video generation", analytics_enabled=False,
                   delete_cache=(CACHE_SWEEP_SECONDS, CACHE_SECONDS)) as blocks:
        gr.Markdown(
            f"# NUWA: eight visual generation tasks\n"
            f"Model `{html.escape(_shown_path(demo.model_path))}`: {size}x{size} pixels, {frames} frames a video "
            f"(outputs are enlarged {demo.upscale}x for viewing). The default model knows one coloured digit per "
            "picture and Moving-MNIST-style motions; its sketches are scenes of ground, wall and shapes. One "
            "generation runs at a time; Stop ends the running one at its next token.")
        page = _Page(demo)
        # eight tabs are wider than a 1280-pixel window: gradio's default ("menu") hid the last one(s) behind a "..."
        # button; in rows, every task stays in sight
        with gr.Tabs(overflow_behavior=TAB_OVERFLOW):
            for info in TASKS:
                page.tab(info)

    blocks.queue(default_concurrency_limit=1, max_size=max_queue or queue_size())
    blocks.nuwa = demo  # for tests and callers that want the model's sizes
    return blocks


def launch(blocks: gr.Blocks, host: str = "127.0.0.1", port: Optional[int] = None, **kwargs):
    """Start the server; returns gradio's (app, local_url, share_url). ``kwargs`` go to ``Blocks.launch``.

    Every upload is untrusted: the server listens on loopback unless ``host`` says otherwise, serves files only from
    its own output folder (``allowed_paths``; gradio adds its upload cache), refuses uploads past the input size limit
    (``max_file_size``, ``NUWA_HF_MAX_INPUT_MB``) before they are stored, and Pillow refuses images past the pixel limit
    (``NUWA_HF_MAX_IMAGE_PIXELS``) before gradio decodes them (see :func:`limit_decoded_pixels`). Gradio serves the
    copies of the outputs in its cache; ``allowed_paths`` names this process' output folder only."""
    nuwa = getattr(blocks, "nuwa", None)  # this process' own output folder; else every app's (a bare Blocks)
    allowed = [str(nuwa.out_root if nuwa is not None else Path(tempfile.gettempdir()) / OUTPUT_ROOT_NAME)]
    kwargs.setdefault("max_file_size", f"{media.input_limits()['max_input_mb']}mb")
    limit_decoded_pixels()
    return blocks.launch(server_name=host, server_port=port, allowed_paths=allowed, footer_links=["api"], **kwargs)


def limit_decoded_pixels() -> None:
    """Gradio decodes uploaded images with Pillow before a handler sees them: lower Pillow's decompression-bomb bound
    (it refuses images past twice ``MAX_IMAGE_PIXELS``) to nuwa-hf's pixel limit, so a bomb PNG never decodes."""
    PIL.Image.MAX_IMAGE_PIXELS = max(media.input_limits()["max_image_pixels"] // 2, 1)


def shown_name(path) -> str:
    """An uploaded file's name for messages: control characters (a name may hold any) shown as '?'."""
    return "".join("?" if ord(c) < 32 or ord(c) == 127 else c for c in Path(path).name)


def default_model() -> str:
    if os.environ.get(MODEL_ENV_VAR):
        return os.environ[MODEL_ENV_VAR]
    return str(DEFAULT_CHECKPOINT)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=default_model(),
                        help=f"model folder or Hub id (default: ${MODEL_ENV_VAR}, else {DEFAULT_CHECKPOINT})")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 serves the network)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", DEFAULT_PORT)),
                        help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--queue-size", type=int, default=None,
                        help=f"requests that may wait for the model; more are refused with 'Queue is full' (default: "
                             f"${QUEUE_SIZE_ENV_VAR}, else {DEFAULT_QUEUE_SIZE})")
    args = parser.parse_args(argv)
    if args.queue_size is not None and args.queue_size < 1:
        parser.error(f"--queue-size {args.queue_size}: at least 1 request must be able to wait.")
    if not Path(args.model).exists() and args.model == str(DEFAULT_CHECKPOINT):
        parser.error(f"{DEFAULT_CHECKPOINT} does not exist: pass --model PATH_OR_HUB_ID (or set ${MODEL_ENV_VAR}).")
    print(f"Loading {args.model} ...", flush=True)
    try:
        blocks = build_demo(args.model, max_queue=args.queue_size)
    except (OSError, ValueError) as error:
        print(f"Could not load the model {args.model!r}: {error}", file=sys.stderr)
        return 2
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"NUWA web demo: http://{shown}:{args.port}/  (Ctrl-C stops it)", flush=True)
    try:
        launch(blocks, host=args.host, port=args.port)
    finally:
        nuwa = getattr(blocks, "nuwa", None)
        if nuwa is not None:
            nuwa.remove_outputs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
