"""Peak memory of a video restore against clip size and length: frames are streamed, so the
peak should stay flat in length and bounded in resolution.

Usage (on an idle machine; 8K x 100 frames writes a ~1 GB input and takes a while):
    PYTHONPATH=src:benchmarks python benchmarks/video_memory.py \
        --sizes 1920x1080 3840x2160 7680x4320 --lengths 10 100
Smoke run (seconds): ... --sizes 320x180 --lengths 3 6 -o /tmp/video_memory.json

Each clip is the content of video_stability.py (two faces, one moving) scaled to the size and
encoded frame by frame (H.264, CRF 12). Each restore runs in a fresh process with a stand-in
restorer (inverts the 512 px face crops: the networks' memory does not depend on the clip) and
the real face detector; the figure is the process's peak resident memory (ru_maxrss) and, for
the Python/numpy share of it, the peak traced allocation during `restore_video`.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import cv2
import torch

from dynface.video import VideoOptions, restore_video
from video_stability import build_frames

#: Frames of the source content; longer clips repeat it (the face keeps moving back and forth).
SOURCE_FRAMES = 60


class InvertingRestorer:
    """Stands in for `Restorer`: 1 - face, with a trace; no networks."""

    config = {"image_size": 512}

    def estimate_blur(self, images: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(images))

    def restore_aligned(self, images: torch.Tensor, **_: object) -> SimpleNamespace:
        return SimpleNamespace(images=1 - images, traces=[{"start_t": 0}] * len(images))


def write_clip(path: Path, size: tuple[int, int], frames: int) -> None:
    """Encode `frames` frames of the source content scaled to `size`, one frame at a time."""
    import av

    source = build_frames(SOURCE_FRAMES)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=12)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.options = {"crf": "12", "rc-lookahead": "4", "threads": "4"}
    for index in range(frames):
        image = cv2.resize(source[index % SOURCE_FRAMES], size, interpolation=cv2.INTER_CUBIC)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()


def measure_one(clip: Path, out: Path) -> dict[str, float]:
    """Restore `clip` in this process; its peak RSS and peak traced allocation (MiB)."""
    tracemalloc.start()
    started = time.perf_counter()
    result = restore_video(clip, InvertingRestorer(), out, VideoOptions())
    seconds = time.perf_counter() - started
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.status == "ok", result.message
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_traced_mib": round(traced / 2**20, 1),
        "seconds": round(seconds, 1),
        "faces_restored": result.faces_restored,
    }


def measure(size: tuple[int, int], frames: int, folder: Path) -> dict[str, float]:
    """Write the clip here, restore it in a fresh process, return that process's figures."""
    clip = folder / f"clip-{size[0]}x{size[1]}-{frames}.mp4"
    write_clip(clip, size, frames)
    command = [sys.executable, __file__, "--one", str(clip), str(folder / clip.stem)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    clip.unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure every size and length and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1920x1080", "3840x2160", "7680x4320"])
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 100])
    parser.add_argument("-o", "--output", default="benchmarks/results/video_memory.json")
    parser.add_argument("--one", nargs=2, metavar=("CLIP", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(Path(args.one[0]), Path(args.one[1]))))
        return
    figures: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for text in args.sizes:
            width, height = (int(side) for side in text.lower().split("x"))
            figures[text] = {
                str(n): measure((width, height), n, Path(folder)) for n in args.lengths
            }
            print(text, json.dumps(figures[text]), flush=True)
    payload = {
        "what": "peak RSS (MiB) of a fresh process running restore_video (stand-in restorer, "
        "real detector, 512 px crops), by clip size and frame count",
        "figures": figures,
        "machine": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
