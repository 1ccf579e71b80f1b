"""Fixtures of the web demo tests: one torch thread, no telemetry, and Chromium (installed with apt-get if missing).

The app runs in-process on a free loopback port; nothing but 127.0.0.1 is contacted (gradio's and gradio_client's
analytics are off).
"""

import os
import shutil
import subprocess

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM_PACKAGES = ("chromium", "chromium-driver")
# What apt-get prints when it cannot reach a package registry (DNS, routing, proxy, mirror down).
NO_REGISTRY_SIGNS = (
    "Temporary failure resolving", "Could not resolve", "Failed to fetch", "Unable to fetch", "Unable to connect",
    "Network is unreachable", "Connection failed", "Could not connect", "Connection timed out", "No route to host",
    "Cannot initiate the connection",
)


@pytest.fixture(autouse=True)
def one_thread(single_threaded_torch):
    yield


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


@pytest.fixture(scope="session")
def chromium():
    """Paths of Chromium and chromedriver (Debian packages `chromium`, `chromium-driver`), installed when missing.

    Skips only when the install fails because no package registry can be reached; any other failure fails the test.
    """
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        if shutil.which("apt-get") is None:
            pytest.fail("Chromium is missing and there is no apt-get to install it: install the Debian packages "
                        f"{' and '.join(CHROMIUM_PACKAGES)} (or the distribution's equivalents).")
        logs = []
        result = _apt_get("install", "-y", *CHROMIUM_PACKAGES)
        logs.append(result.stdout + result.stderr)
        if result.returncode != 0:  # a fresh machine has no package lists yet
            update = _apt_get("update")
            logs.append(update.stdout + update.stderr)
            result = _apt_get("install", "-y", *CHROMIUM_PACKAGES)
            logs.append(result.stdout + result.stderr)
        output = "\n".join(logs)
        if result.returncode != 0:
            if any(sign in output for sign in NO_REGISTRY_SIGNS):
                pytest.skip("Chromium is not installed and no package registry is reachable to install it "
                            f"(apt-get install -y {' '.join(CHROMIUM_PACKAGES)} failed: {output.strip()[-300:]})")
            pytest.fail(f"apt-get install -y {' '.join(CHROMIUM_PACKAGES)} failed (exit {result.returncode}); run it "
                        f"as root. Output:\n{output[-2000:]}")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(f"apt-get installed {' '.join(CHROMIUM_PACKAGES)} but chromium / chromedriver is not on PATH.")
    return browser, driver
