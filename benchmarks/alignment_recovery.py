"""How well detection + alignment recovers a face warped by a known similarity (with and without
landmark refinement). Writes benchmarks/results/alignment_recovery.json.

    PYTHONPATH=src python benchmarks/alignment_recovery.py
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from dynface.faces.align import align_face
from dynface.faces.detect import FaceDetector
from dynface.faces.paste import paste_back
from dynface.io import read_image

REPO = Path(__file__).resolve().parents[1]
CASES = [(1.0, 0.0), (0.6, 15.0), (1.3, -20.0), (0.8, 30.0), (2.0, 10.0), (0.5, -40.0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB for images in [0, 1]."""
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def measure(name: str, refine: bool) -> list[dict]:
    """Per case: PSNR of the recovered crop's face region, and of the pasted-back canvas."""
    detector = FaceDetector(refine=refine)
    image = read_image(REPO / "tests" / "data" / name).pixels
    crop, _ = align_face(image, detector.detect(image)[0].landmarks)
    crop = np.clip(crop, 0, 1)
    face = (slice(128, 448), slice(128, 384))
    rows = []
    for scale, angle in CASES:
        known = cv2.getRotationMatrix2D((256, 256), angle, scale)
        known[:, 2] += (700 - 256, 600 - 256)
        canvas = cv2.warpAffine(
            crop, known, (1400, 1200), flags=cv2.INTER_CUBIC, borderValue=(0.5, 0.5, 0.5)
        )
        canvas = np.clip(canvas, 0, 1)
        found = detector.detect(canvas)[0]
        recovered, affine = align_face(canvas, found.landmarks)
        composed = affine @ np.vstack([known, [0, 0, 1]])
        pasted = paste_back(canvas, np.clip(recovered, 0, 1)[None], affine[None])
        rows.append(
            {
                "scale": scale,
                "angle": angle,
                "crop_face_psnr_db": round(psnr(np.clip(recovered, 0, 1)[face], crop[face]), 2),
                "shift_px_of_512": round(float(np.abs(composed[:, 2]).max()), 2),
                "scale_error": round(float(np.sqrt(np.linalg.det(composed[:, :2])) - 1), 4),
                "paste_psnr_db": round(psnr(pasted, canvas), 2),
            }
        )
    return rows


def main() -> None:
    results = {
        f"{name} refine={refine}": measure(name, refine)
        for name in ("astronaut.png", "grace_hopper.jpg")
        for refine in (False, True)
    }
    out = REPO / "benchmarks" / "results" / "alignment_recovery.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    for key, rows in results.items():
        print(key, [row["crop_face_psnr_db"] for row in rows])


if __name__ == "__main__":
    main()
