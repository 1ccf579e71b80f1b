"""Drive the web demo in headless Chromium: type a text-to-image prompt, press Generate, save a screenshot.

    python spaces/nuwa/screenshot.py                                 # checkpoints/nuwa-tiny -> docs/web_demo.png
    python spaces/nuwa/screenshot.py --model PATH --out shot.png --prompt "the digit seven in blue"

Regenerate docs/web_demo.png this way after the default checkpoint changes. Needs the Debian packages ``chromium``
and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``) and ``selenium`` (the ``test`` extra). The
browser test (tests/spaces/test_web_app.py) uses the same functions. Only the loopback address is contacted.
"""

import argparse
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_OUT = REPO_ROOT / "docs" / "web_demo.png"
MAX_PNG_BYTES = 300_000


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def chrome_driver(width: int = 1280, height: int = 1000):
    """A headless Chromium WebDriver from the Debian packages (no driver download: the paths are given)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        raise RuntimeError("Chromium or chromedriver is missing: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--disable-extensions", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-default-apps", "--disable-sync",
                     "--hide-scrollbars", f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def generate_text_to_image(driver, url: str, prompt: str, timeout: float = 120.0) -> str:
    """Open the page, type ``prompt`` into the T2I tab, press Generate and wait for the image; returns its src."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    driver.get(url)
    box = wait.until(expected_conditions.element_to_be_clickable(
        (By.CSS_SELECTOR, "#t2i-prompt textarea, #t2i-prompt input")))
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(prompt)
    driver.find_element(By.CSS_SELECTOR, "#t2i-generate").click()

    def generated(drv):
        for image in drv.find_elements(By.CSS_SELECTOR, "#t2i-output img"):
            source = image.get_attribute("src") or ""
            if "t2i" in source and drv.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                                      image):
                return source
        return False

    source = wait.until(generated)
    time.sleep(0.5)  # let the info box and the progress indicator settle
    return source


def save_screenshot(driver, path: str | os.PathLike, max_bytes: int = MAX_PNG_BYTES) -> Path:
    """Save the window as PNG; if it is larger than ``max_bytes``, reduce it to 256 colours."""
    import PIL.Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    if path.stat().st_size > max_bytes:
        with PIL.Image.open(path) as shot:
            reduced = shot.convert("RGB").quantize(colors=256, method=PIL.Image.Quantize.MEDIANCUT)
        reduced.save(path, optimize=True)
    return path


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO_ROOT / "checkpoints" / "nuwa-tiny"))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--prompt", default="a red 7")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    sys.path.insert(0, str(HERE))
    import app

    blocks = app.build_demo(args.model)
    port = free_port()
    _, url, _ = app.launch(blocks, port=port, prevent_thread_lock=True, quiet=True)
    driver = chrome_driver()
    try:
        generate_text_to_image(driver, url, args.prompt)
        path = save_screenshot(driver, args.out)
    finally:
        driver.quit()
        blocks.close()
    print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
