"""Contact sheet of `dynface.photos` on public-domain photos: boxes, landmarks, crops, paste-back.

Rows: each photo with its detected boxes and landmarks; the aligned crops with the FFHQ template
drawn on them; the pasted result. The stand-in restorer `tint` makes the pasted region and its
feathered edge visible; `identity` shows whether paste-back leaves a seam; `tiny-random` (once
`dynface.api` is available) runs the real pipeline with random tiny nets.

    PYTHONPATH=src python benchmarks/restore_contact_sheet.py --restorer tint \
        -o docs/images/restore_contact_sheet.png
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from dynface.faces.align import template
from dynface.faces.detect import FaceDetector
from dynface.io import read_image, write_image
from dynface.photos import RestoreOptions, restore_photos

REPO = Path(__file__).resolve().parents[1]
COLOURS = [(255, 0, 0), (255, 255, 0), (255, 0, 255), (0, 255, 0), (0, 128, 255)]


@dataclass
class _Result:
    images: torch.Tensor
    traces: list


class StandIn:
    """identity: returns the crops; tint: a blue cast and a grid, so the pasted area shows."""

    device = "cpu"

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def restore_aligned(
        self, images: torch.Tensor, seed: int | None = None, progress=None, on_plan=None
    ) -> _Result:
        out = images.clone()
        if self.mode == "tint":
            out[:, 2] = out[:, 2] * 0.5 + 0.5
            out[:, :, ::32, :] = 1.0
            out[:, :, :, ::32] = 1.0
        return _Result(out, [{} for _ in range(len(images))])


def synthetic_group() -> np.ndarray:
    """The two public-domain portraits, rotated and scaled, on one canvas."""
    canvas = np.full((700, 1300, 3), 0.55, np.float32)
    for name, angle, scale, centre in [
        ("astronaut.png", 25.0, 0.9, (330, 330)),
        ("grace_hopper.jpg", -15.0, 0.7, (950, 380)),
    ]:
        image = read_image(REPO / "tests" / "data" / name).pixels
        h, w = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        matrix[:, 2] += (centre[0] - w / 2, centre[1] - h / 2)
        warped = cv2.warpAffine(image, matrix, (1300, 700), flags=cv2.INTER_CUBIC)
        inside = cv2.warpAffine(np.ones((h, w), np.float32), matrix, (1300, 700)) > 0.5
        canvas[inside] = warped[inside]
    return np.clip(canvas, 0, 1)


def annotate(image: np.ndarray, detector: FaceDetector) -> np.ndarray:
    """Boxes and the 5 landmarks (colour per landmark) drawn on a copy."""
    vis = np.ascontiguousarray(np.round(image * 255).astype(np.uint8))
    thick = max(1, round(max(image.shape[:2]) / 400))
    for face in detector.detect(image):
        x1, y1, x2, y2 = face.box.round().astype(int)
        cv2.rectangle(vis, (x1, y1), (x2, y2), (0, 255, 0), thick)
        for point, colour in zip(face.landmarks, COLOURS, strict=True):
            cv2.circle(vis, tuple(point.round().astype(int)), 2 * thick, colour, -1)
    return vis.astype(np.float32) / 255


def with_template(crop: np.ndarray) -> np.ndarray:
    """An aligned crop with the FFHQ template points drawn as rings."""
    vis = np.ascontiguousarray(np.round(crop * 255).astype(np.uint8))
    radius, thick = max(2, crop.shape[0] // 80), max(1, crop.shape[0] // 250)
    for point, colour in zip(template(crop.shape[0]), COLOURS, strict=True):
        cv2.circle(vis, tuple(point.round().astype(int)), radius, colour, thick)
    return vis.astype(np.float32) / 255


def fit(image: np.ndarray, height: int) -> np.ndarray:
    """Resize to a row height."""
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restorer", default="tint", choices=["tint", "identity", "tiny-random"])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--row-height", type=int, default=300)
    args = parser.parse_args()
    if args.restorer == "tiny-random":
        from dynface.api import Restorer

        restorer = Restorer.from_config(
            "tiny-random", device="cpu", overrides={"respacing": "ddim5"}
        )
    else:
        restorer = StandIn(args.restorer)
    detector = FaceDetector()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        write_image(inputs / "group.png", synthetic_group())
        paths = [REPO / "tests/data/astronaut.png", REPO / "tests/data/grace_hopper.jpg"]
        paths.append(inputs / "group.png")
        out = Path(tmp) / "out"
        results = restore_photos(paths, restorer, out, RestoreOptions(upscale=2), detector)
        rows = []
        for path, result in zip(paths, results, strict=True):
            assert result.status == "ok", result.message
            photo = read_image(path).pixels
            final = read_image(out / "final" / f"{path.stem}.png").pixels
            crops = sorted((out / "faces" / "cropped").glob(f"{path.stem}_*.png"))
            tiles = [fit(annotate(photo, detector), args.row_height)]
            tiles += [fit(with_template(read_image(c).pixels), args.row_height) for c in crops]
            tiles.append(fit(final, args.row_height))
            gap = np.ones((args.row_height, 8, 3), np.float32)
            rows.append(np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1))
    width = max(row.shape[1] for row in rows)
    padded = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=1) for r in rows]
    write_image(args.output, np.concatenate(padded, axis=0), overwrite=True)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
