"""How well detection + alignment recovers a face warped by a known similarity into a canvas.

For both public-domain test photos: the aligned crop is warped by a known similarity (scales
0.5-2, rotations -40..30 degrees, sub-pixel shifts) into a larger grey canvas; the face is found
and aligned again and the recovered crop compared with the original (PSNR over the central face
region), for the detector alone, for the previous one-shot refinement (two passes, best box),
and for the fixed-point refinement. Also times `FaceDetector.detect` per canvas. Writes
benchmarks/results/alignment_recovery.json.

    PYTHONPATH=src python benchmarks/alignment_recovery.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

from dynface.faces import detect as detect_module
from dynface.faces.align import align_face
from dynface.faces.detect import FaceDetector
from dynface.faces.paste import paste_back
from dynface.io import read_image

REPO = Path(__file__).resolve().parents[1]
CASES = [
    (1.0, 0.0, 0.0),
    (0.6, 15.0, 0.3),
    (1.3, -20.0, 0.7),
    (0.8, 30.0, 0.5),
    (0.5, -30.0, 0.25),
    (1.2, 10.0, 0.9),
    (0.7, -10.0, 0.4),
    (2.0, 10.0, 0.6),
    (0.5, -40.0, 0.1),
]
FACE = (slice(128, 448), slice(128, 384))
#: name -> (refine, largest number of refinement passes).
VARIANTS = {"detector only": (False, 0), "fixed point": (True, 6)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB for images in [0, 1]."""
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def measure(name: str, refine: bool, passes: int) -> dict:
    """Per case: PSNR of the recovered crop's face region, the transform error, and timing."""
    detect_module._REFINE_MAX_PASSES = passes
    detector = FaceDetector(refine=refine)
    image = read_image(REPO / "tests" / "data" / name).pixels
    crop, _ = align_face(image, detector.detect(image)[0].landmarks)
    crop = np.clip(crop, 0, 1)
    rows = []
    for scale, angle, shift in CASES:
        known = cv2.getRotationMatrix2D((256, 256), angle, scale)
        known[:, 2] += (700 - 256 + shift, 600 - 256 + shift / 2)
        canvas = cv2.warpAffine(
            crop, known, (1400, 1200), flags=cv2.INTER_CUBIC, borderValue=(0.5, 0.5, 0.5)
        )
        canvas = np.clip(canvas, 0, 1)
        oracle = cv2.warpAffine(
            canvas,
            cv2.invertAffineTransform(known),
            (512, 512),
            flags=cv2.INTER_CUBIC,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        started = time.perf_counter()
        found = detector.detect(canvas)[0]
        seconds = time.perf_counter() - started
        recovered, affine = align_face(canvas, found.landmarks)
        composed = affine @ np.vstack([known, [0, 0, 1]])
        pasted = paste_back(canvas, np.clip(recovered, 0, 1)[None], affine[None])
        rows.append(
            {
                "scale": scale,
                "angle": angle,
                "subpixel_shift": shift,
                "crop_face_psnr_db": round(psnr(np.clip(recovered, 0, 1)[FACE], crop[FACE]), 2),
                "known_transform_psnr_db": round(psnr(np.clip(oracle, 0, 1)[FACE], crop[FACE]), 2),
                "shift_px_of_512": round(float(np.abs(composed[:, 2]).max()), 2),
                "scale_error": round(float(np.sqrt(np.linalg.det(composed[:, :2])) - 1), 4),
                "paste_psnr_db": round(psnr(pasted, canvas), 2),
                "detect_s": round(seconds, 3),
            }
        )
    psnrs = [row["crop_face_psnr_db"] for row in rows]
    return {
        "min_psnr_db": min(psnrs),
        "median_psnr_db": float(np.median(psnrs)),
        "median_detect_s": float(np.median([row["detect_s"] for row in rows])),
        "cases": rows,
    }


def main() -> None:
    results = {
        f"{name} {variant}": measure(name, *VARIANTS[variant])
        for name in ("astronaut.png", "grace_hopper.jpg")
        for variant in VARIANTS
    }
    out = REPO / "benchmarks" / "results" / "alignment_recovery.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    for key, result in results.items():
        print(
            f"{key:40s} min {result['min_psnr_db']:5.1f} dB  median {result['median_psnr_db']:5.1f}"
            f" dB  detect {result['median_detect_s']:.2f} s  ",
            [row["crop_face_psnr_db"] for row in result["cases"]],
        )


if __name__ == "__main__":
    main()
