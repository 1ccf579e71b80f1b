"""Load on the web app (issue 30 item 1): many gradio_client clients against spaces/nuwa/app.py on loopback.

    python benchmarks/web_load.py                                   # 40 clients, 300 requests, 20 cancels (~3 min)
    python benchmarks/web_load.py --clients 6 --requests 20 --cancels 3 --json load.json

The server runs as a child process on 127.0.0.1 with a temp folder of its own (``TMPDIR``), so its resident memory,
threads and temp files are its own. Phases, each bounded in count and by ``--time-limit`` (the run stops by itself and
always stops the server):

1. warm-up: the first ``--baseline-after`` requests (at least one per tab: that builds the eight pipelines) one at a
   time, then one long T2V (three times the trained frames) to time a whole generation;
2. burst: every client sends one request at the same moment (tabs in turn);
3. waves: ``--requests`` requests in waves of ``--wave`` concurrent requests (each wave waits for the last);
4. cancels: ``--cancels`` long T2V requests, each cancelled once it runs (gradio_client's ``Job.cancel()``, every
   other one a client that disconnects instead: its queue stream and heartbeat closed), each followed at once by a
   short T2I request, whose latency shows that the slot was freed;
5. the end: the queue must be empty and one more request served.

Every request must complete with outputs of the right type and size, or be refused with gradio's "Queue is full ...
try again"; nothing else. A thread asks the server's ``/gradio_api/queue/status`` every 0.25 s throughout (the health
request). Resident memory (``/proc/PID/status``) is sampled when no request runs: after the warm-up (the baseline),
after each wave and at the end; the gate is the larger of the values after the waves and at the end against the
baseline (+15% at most); threads likewise (+4 at most). The temp folder may hold only files that
clients were given (gradio's cached outputs), the uploads, and the app's newest output folders.

Prints a Markdown table (requests per minute, p50 / p95 latency per tab, peak memory) and ``PASS`` / ``FAIL`` lines;
exit status 1 when a check fails. ``run(...)`` is the same as a function (tests/spaces/test_web_load.py).
"""

import argparse
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "spaces" / "nuwa" / "app.py"
DEFAULT_MODEL = ROOT / "checkpoints" / "nuwa-tiny"
TABS = ("t2i", "t2v", "v2v", "s2i", "s2v", "i2i", "ti2i", "tv2v")
VIDEO_TABS = {"t2v", "v2v", "s2v", "tv2v"}
BUSY_SIGNS = ("Queue is full", "try again")
GIF_FRAME_MS = 250  # the app's 4 frames per second
MEMORY_GROWTH_LIMIT = 0.15


# --------------------------------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _die_with_parent() -> None:
    """In the child, before the app starts: Linux kills it when the benchmark's process ends, however that ends."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Server:
    """spaces/nuwa/app.py as a child process on 127.0.0.1 with a temp folder of its own; ``stop()`` ends it."""

    def __init__(self, model: str, queue_size: int, workdir: Path, startup_timeout: float = 180.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = workdir / "server-tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_TEMP_DIR", "GRADIO_SERVER_NAME")}
        env.update(TMPDIR=str(self.tmp), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
                   OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
                   PYTHONPATH=os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p))
        self.log = open(workdir / "server.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, str(APP), "--model", str(model), "--port", str(self.port), "--queue-size",
             str(queue_size)], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        self.pid = self.process.pid
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with {self.process.returncode}: {self.log_tail()}")
            with contextlib.suppress(Exception):
                if self.queue_status(timeout=2) is not None:
                    return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the app did not answer within {startup_timeout:.0f} s: {self.log_tail()}")

    def queue_status(self, timeout: float = 5.0) -> dict:
        import httpx

        answer = httpx.get(f"{self.url}/gradio_api/queue/status", timeout=timeout)
        answer.raise_for_status()
        return answer.json()

    def rss_mib(self) -> float:
        return _status_kib(self.pid, "VmRSS") / 1024

    def peak_mib(self) -> float:
        return _status_kib(self.pid, "VmHWM") / 1024

    def threads(self) -> int:
        return len(list(Path(f"/proc/{self.pid}/task").iterdir()))

    def temp_files(self) -> list[Path]:
        return sorted(p for p in self.tmp.rglob("*") if p.is_file())

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # gradio closes and removes its cache; app.py its outputs
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        self.log.close()


class HealthProbe(threading.Thread):
    """Asks the server for its queue status every ``every`` seconds until stopped: answers, failures, slowest answer,
    largest queue seen."""

    def __init__(self, server: Server, every: float = 0.25):
        super().__init__(daemon=True)
        self.server, self.every = server, every
        self.answers = self.failures = 0
        self.slowest = 0.0
        self.largest_queue = 0
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            started = time.perf_counter()
            try:
                size = self.server.queue_status().get("queue_size") or 0
                self.answers += 1
                self.largest_queue = max(self.largest_queue, int(size))
            except Exception as error:
                self.failures += 1
                self.errors.append(f"{type(error).__name__}: {error}")
            self.slowest = max(self.slowest, time.perf_counter() - started)
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        self.join(timeout=10)


# --------------------------------------------------------------------------------------------------------------------
# Requests


def model_sizes(model: str) -> tuple[int, int, int]:
    """(pixels, frames, view enlargement) of a local model folder, as the app computes them."""
    config = json.loads((Path(model) / "config.json").read_text())
    processor = json.loads((Path(model) / "processor_config.json").read_text())
    crop = processor.get("image_processor", processor).get("crop_size") or {}
    size = int(crop.get("height") or config["max_visual_grid"][1] * 4)
    return size, int(config["max_visual_grid"][0]), max(1, 256 // size)


def make_inputs(folder: Path, size: int) -> Path:
    """The uploaded files: a 3-frame GIF, a 64x64 picture and a palette sketch (ground and a square)."""
    import numpy as np
    import PIL.Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    frames = [PIL.Image.fromarray(f) for f in rng.integers(0, 255, (3, size, size, 3), dtype=np.uint8)]
    frames[0].save(folder / "clip.gif", save_all=True, append_images=frames[1:], duration=250, loop=0)
    PIL.Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "picture.png")
    sketch = np.zeros((64, 64, 3), dtype=np.uint8)
    sketch[32:] = (0, 128, 0)
    sketch[20:40, 24:40] = (255, 255, 0)
    PIL.Image.fromarray(sketch).save(folder / "sketch.png")
    return folder


def _editor(path: Path) -> dict:
    from gradio_client import handle_file

    return {"background": handle_file(str(path)), "layers": [], "composite": None, "id": None}


def request_args(tab: str, inputs: Path, frames: int, seed: int, long: bool = False) -> tuple:
    """The positional inputs of a tab's endpoint, with guidance 5 and top-k 32 in every request (fixed here so that
    every tab does the same work; the shipped folder's own defaults are guidance 3 and top-k 8 or 32 by task)."""
    from gradio_client import handle_file

    clip = handle_file(str(inputs / "clip.gif"))
    return {
        "t2i": ("a red 7", seed, 5.0, 32),
        "t2v": ("the digit 3 is moving up then down", 3 * frames if long else frames, seed, 5.0, 32),
        "v2v": (clip, "Example 1", 1, max(frames - 1, 1), seed, 32),
        "s2i": (_editor(inputs / "sketch.png"), None, "grass", seed, 5.0, 32),
        "s2v": (_editor(inputs / "sketch.png"), None, "grass", "right", frames, seed, 5.0, 32),
        "i2i": (_editor(inputs / "picture.png"), "bottom half", seed, 32),
        "ti2i": (_editor(inputs / "picture.png"), "a blue 7", "top half", seed, 5.0, 32),
        "tv2v": (clip, "Example 1", "the digit 3 is moving left then right", frames, seed, 5.0, 32),
    }[tab]


def _files(value) -> list[dict]:
    if isinstance(value, dict):
        if "path" in value and ("url" in value or "meta" in value):
            return [value]
        return [f for v in value.values() for f in _files(v)]
    if isinstance(value, (list, tuple)):
        return [f for v in value for f in _files(v)]
    return []


def check_result(tab: str, result: tuple, url: str, sizes: tuple[int, int, int]) -> list[str]:
    """The outputs' types and shapes (the shown image or GIF fetched from the server as a browser would); returns the
    server paths of every file the result names. Raises AssertionError when something is off."""
    import io

    import httpx
    import PIL.Image

    size, frames, upscale = sizes
    full = result = list(result)
    if tab in ("s2i", "s2v"):
        assert _files(result[0]), f"{tab}: no sketch view"
        result = result[1:]
    info = result[-1]
    assert isinstance(info, str) and "seed" in info, f"{tab}: info {info!r}"
    shown = result[1] if tab in VIDEO_TABS else result[0]
    files = _files(result[-2])
    assert len(files) >= 2, f"{tab}: {len(files)} download file(s)"
    (picture,) = _files(shown)
    answer = httpx.get(url + picture["url"][picture["url"].index("/gradio_api/"):], timeout=30)
    answer.raise_for_status()
    with PIL.Image.open(io.BytesIO(answer.content)) as image:
        assert image.size == (size * upscale, size * upscale), f"{tab}: shown {image.size}"
        if tab in VIDEO_TABS:
            # Pillow writes a frame equal to the one before it as a longer showing of that frame: count display time
            assert image.format == "GIF", f"{tab}: {image.format}"
            shown_ms = 0
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                shown_ms += int(image.info.get("duration", 0))
            assert shown_ms == frames * GIF_FRAME_MS, f"{tab}: the GIF shows {shown_ms} ms, expected {frames} frames"
        else:
            assert image.format == "PNG", f"{tab}: {image.format}"
    if tab in VIDEO_TABS and _files(result[0]):  # the MP4 (when the server has PyAV)
        (mp4,) = _files(result[0])
        answer = httpx.get(url + mp4["url"][mp4["url"].index("/gradio_api/"):], timeout=30)
        answer.raise_for_status()
        count = _mp4_frames(answer.content)
        assert count in (None, frames), f"{tab}: the MP4 has {count} frames, expected {frames}"
    return [f["path"] for f in _files(full)]


def _mp4_frames(content: bytes) -> Optional[int]:
    """Frames of an MP4 (None without PyAV here)."""
    import io

    try:
        import av
    except ImportError:
        return None
    with av.open(io.BytesIO(content)) as container:
        return sum(1 for _ in container.decode(video=0))


@dataclass
class Outcome:
    tab: str
    phase: str
    kind: str  # "ok", "busy", "error", "cancelled"
    seconds: float
    message: str = ""
    service: Optional[float] = None  # the generation's own seconds, from the info line
    paths: list[str] = field(default_factory=list)


def _service_seconds(info: str) -> Optional[float]:
    import re

    found = re.search(r"; ([0-9.]+) s at \d+x\d+ pixels", info or "")
    return float(found.group(1)) if found else None


def call(client, tab: str, args: tuple, phase: str, url: str, sizes) -> Outcome:
    from gradio_client.exceptions import AppError

    started = time.perf_counter()
    try:
        result = client.submit(*args, api_name=f"/{tab}").result(timeout=600)
    except Exception as error:  # noqa: BLE001  (classified below)
        seconds = time.perf_counter() - started
        message = f"{type(error).__name__}: {error}"
        busy = all(sign.lower() in message.lower() for sign in BUSY_SIGNS) and not isinstance(error, AppError)
        return Outcome(tab, phase, "busy" if busy else "error", seconds, message)
    seconds = time.perf_counter() - started
    try:
        paths = check_result(tab, result, url, sizes)
    except Exception as error:  # noqa: BLE001
        return Outcome(tab, phase, "error", seconds, f"bad result: {type(error).__name__}: {error}")
    return Outcome(tab, phase, "ok", seconds, service=_service_seconds(list(result)[-1]), paths=paths)


def make_clients(url: str, count: int) -> list:
    from gradio_client import Client

    with ThreadPoolExecutor(min(count, 8)) as pool:
        return list(pool.map(lambda _: Client(url, verbose=False, analytics_enabled=False, download_files=False),
                             range(count)))


# --------------------------------------------------------------------------------------------------------------------
# Cancelling


def _fn_index(client, tab: str) -> int:
    for index, dependency in enumerate(client.config["dependencies"]):
        if dependency.get("api_name") == tab:
            return int(dependency.get("id", index))
    raise KeyError(tab)


def _wait_running(job, limit: float) -> bool:
    from gradio_client.utils import Status

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if job.status().code in (Status.PROCESSING, Status.PROGRESS, Status.ITERATING):
            return True
        if job.done():
            return False
        time.sleep(0.01)
    return False


def cancel_by_client(client, args: tuple, delay: float) -> tuple[str, float, float]:
    """Submit a long T2V and cancel it (gradio_client's ``Job.cancel()``: POST /cancel) ``delay`` s after it starts
    running. Returns (what happened, when it started running, when it was cancelled) (``time.perf_counter()``)."""
    job = client.submit(*args, api_name="/t2v")
    if not _wait_running(job, 300):
        return f"never ran ({job.status().code})", float("nan"), float("nan")
    running = time.perf_counter()
    time.sleep(delay)
    cancelled = time.perf_counter()
    try:
        job.cancel()  # gradio answers /cancel once the worker thread has ended (gradio_client waits 5 s at most)
    except Exception as error:  # noqa: BLE001
        return f"the cancel request failed: {type(error).__name__}: {error}", running, cancelled
    with contextlib.suppress(Exception):
        job.result(timeout=30)
    return "cancelled", running, cancelled


def cancel_by_disconnecting(url: str, fn_index: int, data: list, delay: float) -> tuple[str, float, float]:
    """A client that goes away: join the queue with a raw session (as the page does), hold its heartbeat and queue
    stream until the generation runs, wait ``delay`` s, then close both connections. Returns as
    :func:`cancel_by_client` (the time it went away for the time cancelled)."""
    import uuid

    import httpx

    session = uuid.uuid4().hex[:11]
    running = float("nan")
    with httpx.Client(base_url=url, timeout=300) as http:
        with http.stream("GET", f"/gradio_api/heartbeat/{session}") as heartbeat:
            joined = http.post("/gradio_api/queue/join", json={
                "data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None})
            joined.raise_for_status()
            with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
                for line in stream.iter_lines():
                    if '"process_starts"' in line or '"progress"' in line:
                        running = time.perf_counter()
                        break
                    if '"process_completed"' in line:
                        return "finished before it could be cancelled", float("nan"), float("nan")
                time.sleep(delay)
                gone = time.perf_counter()
            heartbeat.close()  # the page closed: its queue stream (left above) and its heartbeat end
    return "cancelled", running, gone


# --------------------------------------------------------------------------------------------------------------------
# The run


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def run(model: str = str(DEFAULT_MODEL), clients: int = 40, requests: int = 300, cancels: int = 20,
        queue_size: int = 16, wave: Optional[int] = None, baseline_after: int = 20, time_limit: float = 1800.0,
        seed: int = 0, workdir: Optional[Path] = None, log=print) -> dict:
    """The whole load run; returns a report (see ``checks`` in it). Bounded: ``clients + requests + 2 * cancels + 10``
    requests at most, and no new wave or cancel starts after ``time_limit`` seconds."""
    own_workdir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="nuwa-web-load-")) if own_workdir else Path(workdir)
    wave = wave or clients
    sizes = model_sizes(model)
    size, frames, upscale = sizes
    inputs = make_inputs(workdir / "inputs", size)
    rng = random.Random(seed)
    tabs = itertools.cycle(TABS)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    memory: list[tuple[int, float]] = []
    report: dict[str, Any] = {"model": str(model), "clients": clients, "requests": requests, "cancels": cancels,
                              "queue_size": queue_size, "wave": wave, "sizes": sizes}
    try:
        server = Server(model, queue_size, workdir)
    except BaseException:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    probe = HealthProbe(server)
    pool_clients = []
    try:
        log(f"server pid {server.pid} at {server.url}; {size}x{size} pixels, {frames} frames")
        page_files = {str(p) for p in server.temp_files()}  # the page's starting values (the editors' pictures)
        pool_clients = make_clients(server.url, clients + 1)
        spare, pool_clients = pool_clients[-1], pool_clients[:-1]
        probe.start()

        def one(client, tab, phase):
            return call(client, tab, request_args(tab, inputs, frames, rng.randrange(1 << 16)), phase, server.url,
                        sizes)

        # 1. warm-up: the first requests one at a time (every tab: its pipeline is built on first use), then one long
        # generation end to end; memory and threads here are the baseline
        for _ in range(max(baseline_after, len(TABS))):
            outcomes.append(one(spare, next(tabs), "warm-up"))
        long_started = time.perf_counter()
        outcomes.append(call(spare, "t2v", request_args("t2v", inputs, frames, 0, long=True), "warm-up", server.url,
                             (size, 3 * frames, upscale)))
        report["long_t2v_seconds"] = time.perf_counter() - long_started
        baseline = (len(outcomes), server.rss_mib())
        memory.append(baseline)
        report["baseline_threads"] = server.threads()
        log(f"warm-up: {sum(o.kind == 'ok' for o in outcomes)}/{len(outcomes)} ok; a {3 * frames}-frame T2V takes "
            f"{report['long_t2v_seconds']:.2f} s; RSS {baseline[1]:.0f} MiB, {report['baseline_threads']} threads")

        # 2. burst: every client at once
        burst_started = time.perf_counter()
        barrier = threading.Barrier(len(pool_clients))

        def burst(client, tab):
            barrier.wait(timeout=60)
            return one(client, tab, "burst")

        with ThreadPoolExecutor(len(pool_clients)) as pool:
            outcomes += list(pool.map(burst, pool_clients, [next(tabs) for _ in pool_clients]))
        report["burst_seconds"] = time.perf_counter() - burst_started
        burst = [o for o in outcomes if o.phase == "burst"]
        log(f"burst of {len(burst)}: {sum(o.kind == 'ok' for o in burst)} ok, {sum(o.kind == 'busy' for o in burst)} "
            f"busy, {sum(o.kind == 'error' for o in burst)} errors in {report['burst_seconds']:.1f} s")

        # 3. waves
        memory.append((len(outcomes), server.rss_mib()))
        made = 0
        waves_started = time.perf_counter()
        while made < requests and time.monotonic() - started < time_limit:
            count = min(wave, requests - made)
            batch = [(pool_clients[i % len(pool_clients)], next(tabs)) for i in range(count)]
            with ThreadPoolExecutor(count) as pool:
                outcomes += list(pool.map(lambda pair: one(pair[0], pair[1], "waves"), batch))
            made += count
            memory.append((len(outcomes), server.rss_mib()))
            log(f"  {made}/{requests} wave requests, RSS {memory[-1][1]:.0f} MiB, {server.threads()} threads")
        report["waves_seconds"] = time.perf_counter() - waves_started
        report["waves_made"] = made
        report["after_waves_rss_mib"] = memory[-1][1]

        # 4. cancels in a row: each long T2V starts running as soon as the one before it was cancelled
        cancel_client = pool_clients[0]
        fn_index = _fn_index(cancel_client, "t2v")
        long_args = request_args("t2v", inputs, frames, 0, long=True)
        cancel_notes: list[str] = []
        freed: list[float] = []
        last_cancel = None
        for index in range(cancels):
            if time.monotonic() - started >= time_limit:
                break
            delay = rng.uniform(0.05, 0.2) * report["long_t2v_seconds"]
            if index % 2 == 0:
                note, running, cancelled = cancel_by_client(cancel_client, long_args, delay)
            else:
                note, running, cancelled = cancel_by_disconnecting(server.url, fn_index, list(long_args), delay)
            cancel_notes.append(note)
            if last_cancel is not None:
                freed.append(running - last_cancel)
            last_cancel = cancelled
        report["cancel_notes"] = cancel_notes
        report["freed_seconds"] = freed
        outcomes.append(one(spare, "t2i", "the end"))
        time.sleep(0.5)
        report["queue_after_cancels"] = server.queue_status().get("queue_size")
        memory.append((len(outcomes), server.rss_mib()))

        # 5. the end
        probe.stop()
        report["final_rss_mib"] = server.rss_mib()
        report["peak_rss_mib"] = server.peak_mib()
        report["final_threads"] = server.threads()
        report["memory"] = memory
        report["baseline"] = baseline
        served = {p for o in outcomes for p in o.paths} | page_files
        files = server.temp_files()
        upload_names = {p.name for p in inputs.iterdir()}
        own = [p for p in files if p.relative_to(server.tmp).parts[:1] == ("nuwa-web-demo",)]
        uploads = [p for p in files if p not in own and str(p) not in served and p.name in upload_names]
        other = [p for p in files if p not in own and p not in uploads and str(p) not in served]
        report["temp_files"] = {"total": len(files), "served": sum(str(p) in served for p in files),
                                "uploads": len(uploads), "app_folders": len({p.parent for p in own}),
                                "other": [str(p.relative_to(server.tmp)) for p in other][:20]}
    finally:  # each step even when one before it fails: the server always stops
        with contextlib.suppress(Exception):
            probe.stop()
        for client in pool_clients:
            with contextlib.suppress(Exception):
                client.close()
        try:
            server.stop()
        finally:
            report["server_log_tail"] = server.log_tail(2000)
            if own_workdir:
                shutil.rmtree(workdir, ignore_errors=True)
    report["seconds"] = time.monotonic() - started
    report["health"] = {"answers": probe.answers, "failures": probe.failures, "slowest_s": probe.slowest,
                        "largest_queue": probe.largest_queue, "errors": probe.errors[:5]}
    report["outcomes"] = [o.__dict__ | {"paths": len(o.paths)} for o in outcomes]
    report["checks"] = checks(report, outcomes, queue_size)
    return report


def checks(report: dict, outcomes: list[Outcome], queue_size: int) -> dict[str, tuple[bool, str]]:
    errors = [o for o in outcomes if o.kind == "error"]
    counted = [o for o in outcomes if o.phase in ("burst", "waves")]
    oks = [o for o in counted if o.kind == "ok"]
    slowest_service = max((o.service or 0.0 for o in oks), default=0.0)
    # A request admitted to the queue waits for at most queue_size generations ahead of it plus its own.
    latency_bound = (queue_size + 2) * max(slowest_service, 0.05) * 1.5 + 10
    busy = [o for o in outcomes if o.kind == "busy"]
    freed = report.get("freed_seconds", [])
    files = report.get("temp_files", {})
    baseline = report.get("baseline")
    final = max(report.get("after_waves_rss_mib") or 0, report.get("final_rss_mib") or 0) or None
    growth = (final / baseline[1] - 1) if baseline and final else float("nan")
    cancel_ok = sum(note == "cancelled" for note in report.get("cancel_notes", []))
    long_seconds = report.get("long_t2v_seconds", 0.0)
    result = {
        "no errors": (not errors, "; ".join(f"{o.phase} {o.tab}: {o.message[:200]}" for o in errors[:5])),
        "every request completed or was told to try again": (
            all(o.kind in ("ok", "busy") for o in counted) and bool(oks),
            f"{len(oks)} ok, {sum(o.kind == 'busy' for o in counted)} busy of {len(counted)}"),
        "busy answers come at once": (all(o.seconds < 5 for o in busy),
                                      f"slowest busy answer {max((o.seconds for o in busy), default=0):.2f} s"),
        "completed within the queue's limit": (
            all(o.seconds <= latency_bound for o in oks),
            f"slowest {max((o.seconds for o in oks), default=0):.1f} s <= {latency_bound:.1f} s "
            f"({queue_size} waiting + 1 running at <= {slowest_service:.2f} s each)"),
        "the queue never held more than its size": (report["health"]["largest_queue"] <= queue_size,
                                                    f"largest {report['health']['largest_queue']}"),
        "health answered throughout": (report["health"]["failures"] == 0 and report["health"]["answers"] > 0
                                       and report["health"]["slowest_s"] < 5,
                                       f"{report['health']['answers']} answers, {report['health']['failures']} "
                                       f"failures, slowest {report['health']['slowest_s']:.2f} s"),
        f"memory within {MEMORY_GROWTH_LIMIT:.0%} of the value after the first requests": (
            growth <= MEMORY_GROWTH_LIMIT,
            f"{baseline[1] if baseline else float('nan'):.0f} MiB after the first {baseline[0] if baseline else '?'} "
            f"requests -> {report.get('after_waves_rss_mib') or float('nan'):.0f} MiB after the waves, "
            f"{report.get('final_rss_mib') or float('nan'):.0f} MiB after the cancels ({growth:+.1%})"),
        "no thread leak": (report.get("final_threads", 0) <= report.get("baseline_threads", 0) + 4,
                           f"{report.get('baseline_threads')} -> {report.get('final_threads')} threads"),
        "temp folder: served outputs, the uploads and the app's newest folders only": (
            files.get("other") == [] and files.get("uploads", 99) <= 3 and files.get("app_folders", 99) <= 8,
            f"{files.get('total')} files: {files.get('served')} served (outputs and the page's pictures), "
            f"{files.get('uploads')} uploads, the app's {files.get('app_folders')} newest output folders; others: "
            f"{files.get('other')}"),
        "cancels free the slot at once": (
            cancel_ok == report["cancels"] and len(freed) == max(report["cancels"] - 1, 0)
            and all(f < max(0.25 * long_seconds, 2.0) for f in freed) and report.get("queue_after_cancels") == 0,
            f"{cancel_ok}/{report['cancels']} cancelled in a row; the slot free again {percentile(freed, .5):.2f} s "
            f"(p50), {max(freed, default=float('nan')):.2f} s (max) after a cancel (a whole long T2V: "
            f"{long_seconds:.2f} s); queue afterwards {report.get('queue_after_cancels')}"),
        "the next request is served": (any(o.phase == "the end" and o.kind == "ok" for o in outcomes),
                                       "".join(f"T2I in {o.seconds:.2f} s" for o in outcomes if o.phase == "the end")),
    }
    return result


def table(report: dict) -> str:
    outcomes = [Outcome(**{**o, "paths": []}) for o in report["outcomes"]]
    counted = [o for o in outcomes if o.phase == "waves"]
    minutes = report["waves_seconds"] / 60
    lines = [f"{sum(o.kind == 'ok' for o in counted)} of {len(counted)} wave requests completed, "
             f"{sum(o.kind == 'busy' for o in counted)} told 'Queue is full ... try again' in "
             f"{report['waves_seconds']:.0f} s: **{sum(o.kind == 'ok' for o in counted) / minutes:.1f} requests per "
             f"minute**; peak RSS {report['peak_rss_mib']:.0f} MiB.", "",
             "| tab | completed | busy | latency p50 s | latency p95 s | generation p50 s |",
             "|---|---|---|---|---|---|"]
    for tab in TABS:
        mine = [o for o in counted if o.tab == tab]
        done = [o.seconds for o in mine if o.kind == "ok"]
        service = [o.service for o in mine if o.kind == "ok" and o.service is not None]
        lines.append(f"| {tab.upper()} | {len(done)} | {sum(o.kind == 'busy' for o in mine)} | "
                     f"{percentile(done, .5):.2f} | {percentile(done, .95):.2f} | "
                     f"{statistics.median(service) if service else float('nan'):.2f} |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="a local model folder (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=40, help="gradio_client clients (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=300, help="requests in waves (default: %(default)s)")
    parser.add_argument("--wave", type=int, default=None, help="concurrent requests per wave (default: --clients)")
    parser.add_argument("--cancels", type=int, default=20, help="cancelled requests (default: %(default)s)")
    parser.add_argument("--queue-size", type=int, default=16, help="the app's queue size (default: %(default)s)")
    parser.add_argument("--baseline-after", type=int, default=20,
                        help="requests one at a time before the memory baseline (default: %(default)s)")
    parser.add_argument("--time-limit", type=float, default=1800,
                        help="seconds after which no new wave or cancel starts (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args(argv)
    report = run(args.model, args.clients, args.requests, args.cancels, args.queue_size, args.wave,
                 args.baseline_after, args.time_limit)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    print()
    print(table(report))
    print()
    for name, (passed, detail) in report["checks"].items():
        print(f"{'PASS' if passed else 'FAIL'} {name}: {detail}")
    return 0 if all(passed for passed, _ in report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
