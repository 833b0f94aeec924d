"""Before/after picture of a whole photo: input, `--bg-upsampler none`, then `realesrgan`.

Runs the real photo path (`restore_photos`) on a public-domain photo with the `tiny-random`
preset, whose restorer and Real-ESRGAN networks carry random weights: the picture shows the
plumbing (which pixels come from the background upsampler, where the face is pasted), not the
quality of the official weights. Pass `--config default` where the weights are downloaded.

    PYTHONPATH=src python benchmarks/background_before_after.py \
        -o docs/images/background_before_after.jpg
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from dynface.api import Restorer
from dynface.io import read_image, write_image
from dynface.photos import RestoreOptions, restore_photos

REPO = Path(__file__).resolve().parents[1]
PANEL_WIDTH = 360


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """`image` resized to the panel width with a caption bar above it."""
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    height = round(image.shape[0] * PANEL_WIDTH / image.shape[1])
    panel = cv2.resize(image, (PANEL_WIDTH, height), interpolation=cv2.INTER_AREA)
    bar = np.full((28, PANEL_WIDTH, 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=REPO / "tests/data/grace_hopper.jpg")
    parser.add_argument("--config", default="tiny-random")
    parser.add_argument("--steps", default="ddim5")
    parser.add_argument("--upscale", type=float, default=2.0)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    restorer = Restorer.from_config(args.config, device="cpu", overrides={"steps": args.steps})
    photo = read_image(args.photo).pixels
    panels = [labelled(photo, f"input {photo.shape[1]}x{photo.shape[0]}")]
    for choice in ("none", "realesrgan"):
        with tempfile.TemporaryDirectory() as folder:
            options = RestoreOptions(upscale=args.upscale, seed=0, bg_upsampler=choice)
            [result] = restore_photos([args.photo], restorer, Path(folder), options)
            assert result.status == "ok", result.message
            final = read_image(Path(folder) / "final" / f"{args.photo.stem}.png").pixels
        caption = f"x{args.upscale:g}, --bg-upsampler {choice}"
        panels.append(labelled(final, caption + (" (random)" if choice != "none" else "")))
    height = max(panel.shape[0] for panel in panels)
    padded = [
        np.pad(p, ((0, height - p.shape[0]), (0, 8), (0, 0)), constant_values=255) for p in panels
    ]
    sheet = np.concatenate(padded, axis=1)[:, :-8].astype(np.float32) / 255.0
    write_image(args.output, sheet, overwrite=True)
    print("written", args.output)


if __name__ == "__main__":
    main()
