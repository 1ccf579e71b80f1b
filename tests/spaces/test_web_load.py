"""The web app under load (issue 30, item 1), small: benchmarks/web_load.py's run with 6 clients, 20 requests and 4
cancels against the untrained 16x16 model, the app as a child process on 127.0.0.1 with a temp folder of its own.

A queue of 2 makes the burst of 6 overflow it: some requests must be told "Queue is full ... try again". The full run
(40 clients, 300 requests, 20 cancels, the shipped checkpoint) is benchmarks/web_load.py; its figures are in
benchmarks/README.md.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "web_load.py"


@pytest.fixture(scope="module")
def web_load():
    if "nuwa_web_load" not in sys.modules:
        spec = importlib.util.spec_from_file_location("nuwa_web_load", BENCHMARK)
        module = importlib.util.module_from_spec(spec)
        sys.modules["nuwa_web_load"] = module
        spec.loader.exec_module(module)
    return sys.modules["nuwa_web_load"]


@pytest.mark.slow
def test_clients_at_once_waves_and_cancels(web_load, tiny_model_folder, tmp_path):
    import time

    started = time.monotonic()
    report = web_load.run(tiny_model_folder, clients=6, requests=20, cancels=4, queue_size=2, baseline_after=6,
                          time_limit=50, workdir=tmp_path, log=lambda *_: None)
    failed = {name: detail for name, (passed, detail) in report["checks"].items() if not passed}
    assert not failed, f"{failed}\nserver log: {report['server_log_tail']}"
    outcomes = report["outcomes"]
    kinds = [o["kind"] for o in outcomes if o["phase"] in ("burst", "waves")]
    assert kinds.count("ok") >= 6 and set(kinds) <= {"ok", "busy"}
    busy = [o for o in outcomes if o["kind"] == "busy"]
    assert busy, "a queue of 2 and 6 requests at once: some must be told to try again"
    assert all("Queue is full" in o["message"] and "try again" in o["message"] for o in busy)
    assert {o["tab"] for o in outcomes if o["kind"] == "ok"} == set(web_load.TABS)
    assert report["cancel_notes"] == ["cancelled"] * 4 and report["queue_after_cancels"] == 0
    assert len(report["freed_seconds"]) == 3
    assert report["health"]["failures"] == 0
    table = web_load.table(report)
    assert "requests per minute" in table and table.count("\n| ") == 9  # the header and one row per tab
    assert time.monotonic() - started < 60
