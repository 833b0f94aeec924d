"""Accuracy of the zero-shot blur-level estimator on Gaussian blurs of clean faces at 512 px.

Usage: python benchmarks/zero_shot_blur.py [MANIFEST_OR_FOLDER] [--faces 20] [-o result.json]
Each face is blurred with s in LEVELS, given noise of std 0.01 and 8-bit quantisation, and the
estimate is compared with s (r = the sharp face). Writes mean and max absolute error per level.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dynface.io import read_image, to_tensor
from dynface.method.blur import gaussian_blur
from dynface.method.dblm import zero_shot_blur_level
from dynface.method.dsst import face_paths

LEVELS = torch.tensor([1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0])


def main() -> None:
    """Run the benchmark and write its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faces", nargs="?", default="../shared/data/manifest.csv")
    parser.add_argument("--faces-count", type=int, default=20)
    parser.add_argument("-o", "--output", default="benchmarks/results/zero_shot_blur.json")
    args = parser.parse_args()
    paths = face_paths([args.faces])
    paths = paths[:: max(1, len(paths) // args.faces_count)][: args.faces_count]
    gen = torch.Generator().manual_seed(0)
    errors = []
    start = time.perf_counter()
    for path in paths:
        x = to_tensor(read_image(path).pixels)
        x = F.interpolate(x, size=(512, 512), mode="bicubic", antialias=True).clamp(0, 1)
        r = x.expand(len(LEVELS), -1, -1, -1)
        y = gaussian_blur(r, LEVELS) + 0.01 * torch.randn(r.shape, generator=gen)
        y = (y.clamp(0, 1) * 255).round() / 255
        errors.append(zero_shot_blur_level(y, r) - LEVELS)
    err = torch.stack(errors)
    result = {
        "faces": len(paths),
        "source": args.faces,
        "seconds_per_image": (time.perf_counter() - start) / err.numel(),
        "levels": LEVELS.tolist(),
        "mean_error": err.mean(0).tolist(),
        "mean_abs_error": err.abs().mean(0).tolist(),
        "max_abs_error": err.abs().amax(0).tolist(),
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
