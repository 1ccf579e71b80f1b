"""Recording for the ``cuda`` tests: with ``NUWA_GPU_TEST_RECORD=path.json`` (benchmarks/gpu_check.sh sets it) the
session writes every test's outcome and the errors the tests measured (``record`` fixture) to that file, with the
date and the device, so the GPU check keeps its error table as raw JSON."""

import json
import os
import sys
import time

import pytest
import torch

_RECORDS = []
_STARTED = time.strftime("%Y-%m-%dT%H:%M:%S%z")
_OUTCOMES = {}


@pytest.fixture
def record(request):
    """``record(**fields)``: one JSON-able entry (e.g. measured max errors) kept under this test's id."""

    def add(**fields):
        _RECORDS.append({"test": request.node.nodeid, **fields})

    return add


def pytest_runtest_logreport(report):
    if report.failed:
        _OUTCOMES[report.nodeid] = "failed" if report.when == "call" else "error"
    elif report.skipped:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _OUTCOMES[report.nodeid] = "skipped: " + str(reason)[:300]
    elif report.when == "call":
        _OUTCOMES.setdefault(report.nodeid, "passed")
    if report.when == "call":
        _write(exit_status=None)  # after every test: a run killed at its time limit keeps what it measured


def pytest_sessionfinish(session, exitstatus):
    _write(exit_status=int(exitstatus))


def _write(exit_status):
    path = os.environ.get("NUWA_GPU_TEST_RECORD")
    if not path:
        return
    from support.cuda_mode import MODE, TINY

    counts = {}
    for outcome in _OUTCOMES.values():
        key = outcome.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    device = torch.cuda.get_device_name(0) if MODE == "cuda" else "cpu"
    data = {"name": "tests", "date": _STARTED, "device": device, "mode": MODE,
            "tiny": TINY, "exit_status": exit_status, "counts": counts, "outcomes": _OUTCOMES,
            "records": _RECORDS, "python": sys.version.split()[0], "torch": torch.__version__}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(tmp, path)
