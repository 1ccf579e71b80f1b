"""Faults during writes (issue 30, item 3): kill a writer with SIGKILL at a random moment, or let its disk fill up,
then check what it left.

Each case forks a child that writes (over and over, so a random moment lands anywhere in a save), kills it with
SIGKILL after a random delay, and checks the folder: it either loads completely (and holds one of the saves that was
written) or is refused with a clear message; then the next run resumes or rebuilds without a hand step. The disk-full
cases run the write in a child whose file-size limit (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored so a write fails with
``EFBIG``) is below what the write needs, and check that the error names the folder and the space needed and that
nothing half-written is left where a later load would take it.

Used by ``tests/test_write_faults.py`` (a few kills each) and ``benchmarks/write_faults.py`` (20 kills each, the table
in ``docs/reliability.md``). Forking (instead of starting Python again) keeps one kill well under a second; torch is
set to one thread first so the fork is safe.

Outcomes of one kill (``KillResult.outcome``):

- ``"loads"``: the folder loads completely and is one of the written saves (for checkpoints: every checkpoint folder);
- ``"absent"``: the kill came before anything was published (nothing there to load);
- ``"refused"``: a load is refused with a clear message (named in ``detail``);
- ``"BAD"``: anything else (a wrong or half-written result, an unclear error): the case failed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

GOOD = ("loads", "absent", "refused")


@dataclass
class KillResult:
    case: str
    delay: float
    outcome: str
    detail: str = ""
    mid_write: bool = False  # the kill left a writer's temporary behind: it landed in the middle of a write
    recovered: bool = False  # the next run resumed or rebuilt without a hand step

    @property
    def ok(self) -> bool:
        return self.outcome in GOOD and self.recovered


@dataclass
class SpaceResult:
    case: str
    message: str
    ok: bool
    problems: list = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------------
# Forking


def _quiet_child() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def kill_after(work: Callable[[], None], delay: float) -> int:
    """Fork; the child runs ``work()`` (which should keep writing); SIGKILL it after ``delay`` seconds. Returns the
    child's wait status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            _quiet_child()
            work()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return status


def run_in_child(work: Callable[[], object], file_size_limit: Optional[int] = None, timeout: float = 300.0):
    """Fork; the child runs ``work()`` (under a file-size limit of ``file_size_limit`` bytes when given) and reports
    ``("ok", repr(result))`` or ``(exception class name, message)`` back through a pipe."""
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            _quiet_child()
            if file_size_limit is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, resource.RLIM_INFINITY))
            try:
                report = ("ok", repr(work()))
            except BaseException as error:  # noqa: BLE001 - reported to the parent
                report = (type(error).__name__, str(error) + "\n" + traceback.format_exc()[-3000:])
            with os.fdopen(write_end, "w") as pipe:
                json.dump(report, pipe)
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.time() + timeout
    with os.fdopen(read_end) as pipe:
        data = pipe.read()
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.time() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return ("Timeout", f"the child ran past {timeout} s")
        time.sleep(0.01)
    return tuple(json.loads(data)) if data else ("Killed", "the child reported nothing")


def leftover_temporaries(folder: Path) -> list:
    """Hidden temporaries of the atomic writers (``.x.tmp-PID-...``, ``.x.saving-PID-...``) in ``folder``."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and (".tmp-" in p.name or ".saving-" in p.name))


def prepare_torch() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _is_clear(error: BaseException) -> bool:
    from nuwa_hf.models.nuwa.loading_nuwa import NuwaModelFolderError

    return isinstance(error, (NuwaModelFolderError, FileNotFoundError)) and len(str(error)) > 20


# ----------------------------------------------------------------------------------------------------------------------
# Case 1: save_pretrained of the model and the processor


class SaveCase:
    """Two tiny models (A, B) and a processor, saved over and over into one folder."""

    name = "save_pretrained (model + processor)"

    def __init__(self, root: Path):
        prepare_torch()
        from nuwa_hf.processing import NuwaProcessor

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from support.tiny_model_folder import save_untrained_tiny_model

        from nuwa_hf import NuwaForConditionalGeneration

        self.root = Path(root)
        source = save_untrained_tiny_model(self.root / "source", image_size=16, grid_size=4, max_frames=2, seed=0)
        self.models = [NuwaForConditionalGeneration.from_pretrained(str(source))]
        self.models.append(NuwaForConditionalGeneration.from_pretrained(str(source)))
        import torch

        with torch.no_grad():
            for parameter in self.models[1].parameters():
                parameter.add_(0.5)
        self.processor = NuwaProcessor.from_pretrained(str(source))
        self.fingerprints = [self._fingerprint(m) for m in self.models]
        self.folder = self.root / "saved"
        self.weight_bytes = (source / "model.safetensors").stat().st_size

    @staticmethod
    def _fingerprint(model) -> float:
        return float(sum(p.detach().double().sum() for p in model.parameters()))

    def write_forever(self) -> None:
        for index in range(10**9):
            self.models[index % 2].save_pretrained(self.folder)
            self.processor.save_pretrained(self.folder)

    def check(self) -> tuple:
        from nuwa_hf import NuwaForConditionalGeneration
        from nuwa_hf.processing import NuwaProcessor

        if not self.folder.exists():
            return "absent", ""
        try:
            model = NuwaForConditionalGeneration.from_pretrained(str(self.folder))
        except Exception as error:  # noqa: BLE001
            return ("refused" if _is_clear(error) else "BAD"), f"model: {type(error).__name__}: {error}"[:300]
        if not any(abs(self._fingerprint(model) - f) < 1e-6 * max(1.0, abs(f)) for f in self.fingerprints):
            return "BAD", "the weights are neither save A nor save B"
        try:
            NuwaProcessor.from_pretrained(str(self.folder))
        except Exception as error:  # noqa: BLE001
            clear = isinstance(error, FileNotFoundError) and "processor_config.json" in str(error)
            return ("refused" if clear else "BAD"), f"processor: {type(error).__name__}: {error}"[:300]
        return "loads", ""

    def recover(self) -> bool:
        """The next run: save again, load, no temporaries left."""
        self.models[0].save_pretrained(self.folder)
        self.processor.save_pretrained(self.folder)
        return self.check()[0] == "loads" and not leftover_temporaries(self.root)

    def fill_disk(self) -> SpaceResult:
        self.recover()  # a good save A is there
        limit = self.weight_bytes // 2
        status, message = run_in_child(lambda: self.models[1].save_pretrained(self.folder), file_size_limit=limit)
        problems = []
        if status != "WriteSpaceError":
            problems.append(f"expected WriteSpaceError, got {status}: {message[:300]}")
        for word in (str(self.folder), "needs about", "file-size limit"):
            if word not in message:
                problems.append(f"the message does not name {word!r}")
        outcome, detail = self.check()
        from nuwa_hf import NuwaForConditionalGeneration

        if outcome != "loads" or abs(self._fingerprint(NuwaForConditionalGeneration.from_pretrained(str(self.folder)))
                                     - self.fingerprints[0]) > 1e-3:
            problems.append(f"the earlier save A is no longer there whole: {outcome} {detail}")
        if leftover_temporaries(self.root):
            problems.append(f"left {leftover_temporaries(self.root)}")
        return SpaceResult(self.name, message.split("\n")[0], not problems, problems)


# ----------------------------------------------------------------------------------------------------------------------
# Case 2: nuwa-hf generate writing its outputs


class GenerateCase:
    name = "nuwa-hf generate (outputs)"

    def __init__(self, root: Path):
        prepare_torch()
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from support.tiny_model_folder import save_untrained_tiny_model

        self.root = Path(root)
        self.model = str(save_untrained_tiny_model(self.root / "model", image_size=16, grid_size=4, max_frames=2, seed=0))
        self.out = self.root / "out"

    def argv(self, seed: int = 0) -> list:
        return ["generate", "--task", "T2V", "--model", self.model, "--prompt", "a red 3", "--num-frames", "2",
                "--seed", str(seed), "--num-samples", "2", "--upscale", "8", "--overwrite", "--out", str(self.out), "--quiet"]

    def write_forever(self) -> None:
        from nuwa_hf.cli import main

        for seed in range(10**9):
            main(self.argv(seed % 3))

    def check(self) -> tuple:
        import PIL.Image

        if not self.out.exists() or not [p for p in self.out.iterdir() if not p.name.startswith(".")]:
            return "absent", ""
        for path in sorted(self.out.iterdir()):
            if path.name.startswith("."):
                continue
            try:
                if path.suffix == ".mp4":
                    from nuwa_hf import media

                    assert len(media.load_video(path)) >= 2
                else:
                    with PIL.Image.open(path) as image:
                        for frame in range(getattr(image, "n_frames", 1)):
                            image.seek(frame)
                            image.load()
            except Exception as error:  # noqa: BLE001
                return "BAD", f"{path.name}: {type(error).__name__}: {error}"[:300]
        return "loads", ""

    def recover(self) -> bool:
        from nuwa_hf.cli import main

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = main(self.argv(0))
        return code == 0 and self.check()[0] == "loads" and not leftover_temporaries(self.out)

    def fill_disk(self) -> SpaceResult:
        import shutil

        shutil.rmtree(self.out, ignore_errors=True)

        def generate():
            from nuwa_hf.cli import main

            captured = io.StringIO()
            with contextlib.redirect_stderr(captured):
                code = main(self.argv(0))
            raise SystemExit(f"{code}\n{captured.getvalue()}")

        status, message = run_in_child(generate, file_size_limit=200)
        problems = []
        code, _, text = message.partition("\n")
        if status != "SystemExit" or code != "7":
            problems.append(f"expected exit code 7, got {status} {code}: {message[:300]}")
        for word in (str(self.out), "needs", "nuwa-hf: error:"):
            if word not in text:
                problems.append(f"the message does not name {word!r}")
        names = sorted(p.name for p in self.out.iterdir()) if self.out.exists() else []
        if any(name.startswith(".") for name in names):
            problems.append(f"left temporaries {names}")
        outcome, detail = self.check()
        if outcome == "BAD":
            problems.append(detail)
        line = next((l for l in text.splitlines() if l.startswith("nuwa-hf: error:")), text.strip()[:300])
        return SpaceResult(self.name, line, not problems, problems)


# ----------------------------------------------------------------------------------------------------------------------
# Case 3: training checkpoints (NuwaTrainer)


class CheckpointCase:
    name = "Trainer checkpoints (NuwaTrainer)"
    max_steps = 6

    def __init__(self, root: Path):
        prepare_torch()
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
        from nuwa_training_support import make_token_dataset

        self.root = Path(root)
        self.datasets = {"t2i": make_token_dataset("t2i", 16, seed=1), "v2v": make_token_dataset("v2v", 8, seed=2)}
        self.run = self.root / "run"

    def _trainer(self, max_steps: Optional[int] = None):
        from nuwa_training_support import TEXT_LENGTH, make_tiny_model

        from nuwa_hf.training import NuwaTaskCollator, NuwaTrainer, TaskMixtureDataset, nuwa_training_arguments

        args = nuwa_training_arguments(
            str(self.run), max_steps=max_steps or self.max_steps, per_device_train_batch_size=4, save_steps=1,
            logging_steps=1, disable_tqdm=True, use_cpu=True, save_total_limit=3, report_to=[],
        )
        return NuwaTrainer(model=make_tiny_model(seed=0), args=args, train_dataset=TaskMixtureDataset(self.datasets),
                           data_collator=NuwaTaskCollator(max_text_length=TEXT_LENGTH))

    def _train(self) -> int:
        from nuwa_hf.training import last_complete_checkpoint

        trainer = self._trainer()
        resume = last_complete_checkpoint(str(self.run)) is not None
        trainer.train(resume_from_checkpoint=True if resume else None)
        trainer.save_model()
        return trainer.state.global_step

    def write_forever(self) -> None:
        import shutil

        for index in range(10**9):  # whole runs, each from scratch: kills land in every save of a run
            self._train()
            old = self.root / f"old-run-{os.getpid()}-{index}"
            os.rename(self.run, old)  # out of the way at once, so a kill never leaves half a deleted run
            shutil.rmtree(old, ignore_errors=True)

    def check(self) -> tuple:
        from nuwa_hf import NuwaForConditionalGeneration
        from nuwa_hf.training import is_complete_checkpoint

        if not self.run.exists():
            return "absent", ""
        folders = sorted(p for p in self.run.iterdir() if p.name.startswith("checkpoint-"))
        for folder in folders:
            if not is_complete_checkpoint(str(folder)):
                return "BAD", f"{folder.name} is published but not complete"
            try:
                NuwaForConditionalGeneration.from_pretrained(str(folder))
            except Exception as error:  # noqa: BLE001
                return "BAD", f"{folder.name}: {type(error).__name__}: {error}"[:300]
        if (self.run / "config.json").exists():
            try:
                NuwaForConditionalGeneration.from_pretrained(str(self.run))
            except Exception as error:  # noqa: BLE001
                if not _is_clear(error):
                    return "BAD", f"final model: {type(error).__name__}: {error}"[:300]
        return ("loads" if folders else "absent"), f"{len(folders)} complete checkpoints"

    def recover(self) -> bool:
        """The next run: trains on from the newest complete checkpoint to the end (in a child, as a new process)."""
        status, message = run_in_child(self._train)
        staging = self.run / "_incomplete_checkpoints"
        return status == "ok" and message == repr(self.max_steps) and self.check()[0] == "loads" and (
            not staging.exists() or not any(staging.iterdir()))

    def fill_disk(self) -> SpaceResult:
        import shutil

        shutil.rmtree(self.run, ignore_errors=True)
        weights = sum(p.numel() * 4 for p in self._trainer().model.parameters())
        status, message = run_in_child(self._train, file_size_limit=int(weights * 1.5))  # the weights fit, Adam's not
        problems = []
        if status != "WriteSpaceError":
            problems.append(f"expected WriteSpaceError, got {status}: {message[:300]}")
        for word in (str(self.run / "checkpoint-1"), "needs about", "file-size limit", "the checkpoint"):
            if word not in message:
                problems.append(f"the message does not name {word!r}")
        outcome, detail = self.check()
        if outcome != "absent":
            problems.append(f"a checkpoint was left: {outcome} {detail}")
        staging = self.run / "_incomplete_checkpoints"
        if staging.exists() and any(staging.iterdir()):
            problems.append(f"left {sorted(p.name for p in staging.iterdir())} in the staging area")
        if not self.recover():
            problems.append("the next run (with space) did not train to the end")
        return SpaceResult(self.name, message.split("\n")[0], not problems, problems)


# ----------------------------------------------------------------------------------------------------------------------
# Case 4: the training token cache


class TokenCacheCase:
    name = "token cache (tokenize_task_dataset)"

    def __init__(self, root: Path, num_examples: int = 64):
        prepare_torch()
        import numpy as np
        import torch
        from datasets import Dataset, load_from_disk

        from nuwa_hf.models.vqgan import NuwaVQGAN

        self.root = Path(root)
        rng = np.random.default_rng(0)
        columns = {"video": [rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8) for _ in range(num_examples)]}
        Dataset.from_dict(columns).save_to_disk(str(self.root / "raw"))
        self.raw = load_from_disk(str(self.root / "raw")).with_format("numpy", dtype=None)
        torch.manual_seed(0)
        self.vqgan = NuwaVQGAN.tiny(image_size=16, grid_size=4, codebook_size=32, base_channels=16,
                                    max_channels=32).eval()
        in_memory = Dataset.from_dict(columns).with_format("numpy", dtype=None)  # no cache file: the reference
        self.expected = np.stack(self.tokenize(dataset=in_memory)["labels"])

    def tokenize(self, load_from_cache_file: bool = True, dataset=None):
        from nuwa_hf.training import tokenize_task_dataset

        return tokenize_task_dataset(self.raw if dataset is None else dataset, "v2v", visual_tokenizer=self.vqgan, batch_size=8,
                                     load_from_cache_file=load_from_cache_file)

    def cache_files(self) -> list:
        return sorted((self.root / "raw").glob("cache-*.arrow"))

    def write_forever(self) -> None:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
        while True:
            self.tokenize(load_from_cache_file=False)

    def check(self) -> tuple:
        """What the next run gets: the cached grids if the cache is whole, else rebuilt ones; always the right ones."""
        import numpy as np

        had = [p.name for p in self.cache_files()]
        try:
            grids = np.stack(self.tokenize()["labels"])
        except Exception as error:  # noqa: BLE001
            return "BAD", f"{type(error).__name__}: {error}"[:300]
        if not np.array_equal(grids, self.expected):
            return "BAD", "the grids differ from the VQ-GAN's"
        return ("loads" if had else "absent"), ""

    def recover(self) -> bool:
        """The next run gets the right grids, and the cache (with its checksum) is there for the one after."""
        return self.check()[0] in ("loads", "absent") and self.check()[0] == "loads" and all(
            Path(str(p) + ".sha256").is_file() for p in self.cache_files())

    def fill_disk(self) -> SpaceResult:
        for path in (self.root / "raw").glob("cache-*"):
            os.remove(path)
        before = {p.name for p in (self.root / "raw").iterdir()}
        status, message = run_in_child(lambda: len(self.tokenize()), file_size_limit=2048)
        problems = []
        if status != "WriteSpaceError":
            problems.append(f"expected WriteSpaceError, got {status}: {message[:300]}")
        for word in (str(self.root / "raw"), "token cache", "needs about", "file-size limit"):
            if word not in message:
                problems.append(f"the message does not name {word!r}")
        leftovers = [p.name for p in (self.root / "raw").iterdir()
                     if p.name.startswith(("cache-", "tmp")) and p.name not in before]
        if leftovers:
            problems.append(f"left {leftovers}")
        if not self.recover():
            problems.append("the next run did not rebuild the cache")
        return SpaceResult(self.name, message.split("\n")[0], not problems, problems)


CASES = {"save": SaveCase, "generate": GenerateCase, "checkpoint": CheckpointCase, "token_cache": TokenCacheCase}


def kill_repeatedly(case, kills: int, max_delay: float, seed: int = 0, log: Callable[[str], None] = lambda _: None):
    """``kills`` kills of ``case.write_forever`` after uniform random delays in [0, max_delay]; each followed by the
    case's check and its recovery."""
    rng = random.Random(seed)
    results = []
    for index in range(kills):
        delay = rng.uniform(0.0, max_delay)
        datasets_temporaries = set((case.root / "raw").glob("tmp*"))  # datasets' own, left by a kill mid-map
        kill_after(case.write_forever, delay)
        temporaries = leftover_temporaries(case.root) + leftover_temporaries(getattr(case, "out", case.root))
        temporaries += sorted(set((case.root / "raw").glob("tmp*")) - datasets_temporaries)
        staging = case.root / "run" / "_incomplete_checkpoints"
        temporaries += sorted(staging.iterdir()) if staging.is_dir() else []
        outcome, detail = case.check()
        result = KillResult(case.name, delay, outcome, detail, mid_write=bool(temporaries))
        result.recovered = case.recover() if outcome in GOOD else False
        results.append(result)
        log(f"  kill {index + 1}/{kills} at {delay:.2f} s: {outcome}{' (mid-write)' if result.mid_write else ''}"
            f"{', recovered' if result.recovered else ', NOT recovered'} {detail[:120]}")
    return results
