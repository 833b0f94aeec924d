"""The screenshot in docs/ui.md: `dynface ui` after restoring a public-domain sample photo.

Starts `dynface ui --config tiny-random` (random smoke-test networks: the faces come out as flat
patches) on a free local port, drives it with Playwright in Debian's chromium (upload the sample,
open *Advanced* so the background upsampler shows beside the fidelity slider, press Restore,
wait for the result) and writes a full-page PNG, reduced to a palette if it is too large.
Run by hand, from the repository root:

    PYTHONPATH=src python benchmarks/ui_screenshot.py -o docs/images/ui_tiny_random.png
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "dynface" / "assets" / "samples" / "grace_hopper_degraded.jpg"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}
MAX_BYTES = 400_000
TIMEOUT_MS = 180_000


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def ui_server(config: str, log: Path) -> Iterator[str]:
    """`dynface ui --config CONFIG` on a free port; yields its address, stops it with SIGTERM."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), DYNFACE_OFFLINE="1")
    command = [sys.executable, "-m", "dynface", "ui", "--config", config, "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dynface ui did not start:\n{log.read_text()}")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def restore_sample(page: Page, url: str) -> None:
    """Upload the sample, show the Advanced settings, press Restore and wait for every output."""
    page.goto(url)
    page.wait_for_selector("#dynface-restore")
    page.locator("#dynface-photos input[type=file]").set_input_files(str(SAMPLE))
    page.locator("#dynface-photos").get_by_text(SAMPLE.stem).wait_for()
    page.get_by_text("Advanced").click()
    page.locator("#dynface-background").wait_for()
    page.click("#dynface-restore")
    page.locator("#dynface-status").get_by_text("Restored").wait_for(timeout=TIMEOUT_MS)
    for selector in ("#dynface-slider img", "#dynface-faces img", "#dynface-traces img"):
        page.locator(selector).first.wait_for()
    page.wait_for_function(
        "() => [...document.images].every(img => img.complete && img.naturalWidth > 0)"
    )
    page.mouse.move(0, 0)  # no hover highlight in the picture


def screenshot(url: str) -> bytes:
    """The whole page, as PNG bytes, after restoring the sample in a fresh headless chromium."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport=VIEWPORT)
        restore_sample(page, url)
        png = page.screenshot(full_page=True)
        browser.close()
    return png


def small_png(png: bytes, max_bytes: int = MAX_BYTES) -> bytes:
    """The screenshot as an optimised PNG; as a 256-colour palette when that is too large."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    encoded = _encoded_png(image)
    if len(encoded) > max_bytes:
        encoded = _encoded_png(image.quantize(256, dither=Image.Dither.NONE))
    return encoded


def _encoded_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o", "--output", type=Path, default=REPO / "docs/images/ui_tiny_random.png"
    )
    parser.add_argument("--config", default="tiny-random")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="dynface-shot-") as tmp,
        ui_server(args.config, Path(tmp) / "server.log") as url,
    ):
        png = screenshot(url)
    args.output.write_bytes(small_png(png))
    saved = Image.open(args.output)
    kilobytes = args.output.stat().st_size // 1000
    print(f"{args.output}: {saved.width}x{saved.height} {saved.mode}, {kilobytes} KB")


if __name__ == "__main__":
    main()
