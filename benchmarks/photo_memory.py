"""Peak memory (RSS) of `dynface restore` on big photos, with the tiny-random nets.

Each case builds a synthetic JPEG of the given size (textured noise with the public-domain
astronaut face pasted in four times, so detection, alignment and paste-back all run), restores
it in a fresh process (`python -m dynface restore ... --config tiny-random --steps ddim5`) and
reads that process's peak resident memory from the kernel (`wait4`). A 256x256 photo (no face)
measures the fixed cost (Python, torch, the nets). Figures go to
benchmarks/results/photo_memory.json.

    python benchmarks/photo_memory.py                # 2, 12, 24 and 48 MP at --upscale 2
    python benchmarks/photo_memory.py --sizes 8000x6000 --upscales 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _common import RESULTS

REPO = Path(__file__).resolve().parents[1]
FACE = REPO / "tests" / "data" / "astronaut.png"


def synthetic_photo(path: Path, width: int, height: int) -> Path:
    """A JPEG of width x height: smooth coloured noise with four copies of a 512 px portrait."""
    rng = np.random.default_rng(0)
    small = rng.integers(60, 200, (max(1, height // 64), max(1, width // 64), 3), np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    face = Image.open(FACE).convert("RGB")
    for k in range(4):
        x = (k + 1) * width // 5 - 256
        y = height // 2 - 256 + (k % 2) * min(600, height // 4)
        image.paste(face, (max(0, x), max(0, y)))
    image.save(path, quality=92)
    return path


def peak_rss(args: list[str]) -> tuple[float, float, int]:
    """Run `python -m dynface ARGS` in a fresh process: peak RSS (MiB), seconds, exit status."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "dynface", *args], env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - started, process.returncode


def measure(work: Path, width: int, height: int, upscale: float) -> dict:
    """One case: build the photo, restore it, report peak RSS and time."""
    photo = synthetic_photo(work / f"photo_{width}x{height}.jpg", width, height)
    out = work / f"out_{width}x{height}_x{upscale:g}"
    tiny = ["--config", "tiny-random", "--steps", "ddim5", "--device", "cpu", "--seed", "0"]
    rss, seconds, status = peak_rss(
        ["restore", str(photo), "-o", str(out), "--upscale", str(upscale), *tiny]
    )
    row = {
        "width": width,
        "height": height,
        "megapixels": round(width * height / 1e6, 1),
        "upscale": upscale,
        "output_megapixels": round(width * height * upscale**2 / 1e6, 1),
        "peak_rss_mib": round(rss),
        "seconds": round(seconds, 1),
        "exit_status": status,
    }
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="+", default=["1600x1200", "4000x3000", "6000x4000", "8000x6000"]
    )
    parser.add_argument("--upscales", nargs="+", type=float, default=[2.0])
    parser.add_argument("--out", type=Path, default=RESULTS / "photo_memory.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        baseline = measure(work, 256, 256, 1.0)  # fixed cost: interpreter, torch, nets, detector
        for size in args.sizes:
            width, height = (int(v) for v in size.lower().split("x"))
            rows += [measure(work, width, height, upscale) for upscale in args.upscales]
    payload = {
        "benchmark": "photo_memory",
        "command": "dynface restore PHOTO --config tiny-random --steps ddim5 --device cpu",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "baseline": baseline,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print("written to", args.out)


if __name__ == "__main__":
    main()
