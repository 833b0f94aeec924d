"""Peak memory of a video restore against clip length: frames are streamed, so it stays flat.

Usage: PYTHONPATH=src:benchmarks python benchmarks/video_memory.py [--lengths 30 120]

Restores clips of the same content and different lengths (the 480x272 clip of video_stability.py)
with a stand-in restorer (inverts the face crop; the networks' memory does not depend on the
clip) and reports the peak of Python and numpy allocations (tracemalloc) during
`restore_video`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import torch

from dynface.video import VideoOptions, restore_video
from video_stability import build_frames, write_input


class InvertingRestorer:
    """Stands in for `Restorer`: 1 - face, with a trace; no networks."""

    config = {"image_size": 128}

    def estimate_blur(self, images: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(images))

    def restore_aligned(self, images: torch.Tensor, seed=None, s_star=None) -> SimpleNamespace:
        return SimpleNamespace(images=1 - images, traces=[{"start_t": 0}] * len(images))


def peak_mib(frames: int, folder: Path) -> float:
    """Peak traced allocation (MiB) while restoring a clip of `frames` frames."""
    clip = folder / f"clip{frames}.mp4"
    write_input(clip, build_frames(frames))
    tracemalloc.start()
    result = restore_video(clip, InvertingRestorer(), folder / f"out{frames}", VideoOptions())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.status == "ok", result.message
    return round(peak / 2**20, 2)


def main() -> None:
    """Measure each length and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[30, 120])
    parser.add_argument("-o", "--output", default="benchmarks/results/video_memory.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        peaks = {str(n): peak_mib(n, Path(folder)) for n in args.lengths}
    payload = {
        "what": "peak traced allocation (MiB) of restore_video, 480x272 clip, stand-in restorer",
        "peak_mib_by_frames": peaks,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
