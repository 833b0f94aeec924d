"""Example evaluation report: simple baselines on synthetically degraded HQ faces.

Degradation (ours, a stand-in until `dynface.data.degrade` lands): Gaussian blur (sigma 2 px at
512), 4x area downsampling to 128 px, Gaussian noise (sigma 0.02), JPEG quality 50. Three
"methods" restore the 128 px input to 512 px: nearest-neighbour (the raw input), bicubic, and
bicubic followed by an unsharp mask. Each is scored with `dynface.metrics.evaluate` against the HQ
faces, then compared (table + scatter plot). HQ faces: FFHQ 512 crops and one photo per
CelebRef-HQ identity from ../shared/data when present, else the two public-domain test faces.
Images go to `outputs/eval_example/` (not committed); reports go to `docs/eval_example/`.

Run from the repository root: `PYTHONPATH=src python benchmarks/eval_example.py`.
"""

from __future__ import annotations

import argparse
import io
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dynface.io import read_image, to_numpy, to_tensor, write_image
from dynface.method.blur import gaussian_blur
from dynface.metrics.evaluate import EvalOptions, evaluate
from dynface.metrics.report import compare, write_report

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def hq_faces() -> list[Path]:
    """HQ 512 face crops: FFHQ (ReDegNet) + one per CelebRef identity, else the PD test faces."""
    ffhq = sorted((SHARED / "redegnet" / "ffhq512_hq").glob("*.png"))
    celebref = [
        sorted(d.glob("*.png"))[0]
        for d in sorted((SHARED / "dmdnet_celebref" / "refs_hq").glob("*"))
    ]
    found = ffhq + celebref
    if found:
        return found
    return [REPO / "tests" / "data" / "astronaut.png", REPO / "tests" / "data" / "grace_hopper.jpg"]


def load_512(path: Path) -> torch.Tensor:
    """1x3x512x512 tensor of an image (resized with antialiasing when it is not 512 px)."""
    x = to_tensor(read_image(path).pixels)
    if x.shape[-2:] != (512, 512):
        x = F.interpolate(x, size=(512, 512), mode="bicubic", antialias=True).clamp(0, 1)
    return x


def degrade(hq: torch.Tensor, seed: int) -> torch.Tensor:
    """Blur, 4x area downsampling, noise, JPEG: 1x3x128x128 in [0, 1]."""
    x = F.interpolate(gaussian_blur(hq, 2.0), scale_factor=0.25, mode="area")
    g = torch.Generator().manual_seed(seed)
    x = (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    buffer = io.BytesIO()
    Image.fromarray((to_numpy(x) * 255).round().astype(np.uint8)).save(buffer, "JPEG", quality=50)
    return to_tensor(np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255)


def baselines(lq: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three 4x "restorations" of a 128 px input."""
    bicubic = F.interpolate(lq, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    sharpened = (bicubic + 1.0 * (bicubic - gaussian_blur(bicubic, 2.0))).clamp(0, 1)
    return {
        "degraded-input": F.interpolate(lq, scale_factor=4, mode="nearest"),
        "bicubic": bicubic,
        "bicubic+unsharp": sharpened,
    }


def main() -> None:
    """Make the images, evaluate every method, write reports and the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("outputs/eval_example"))
    parser.add_argument("--out", type=Path, default=Path("docs/eval_example"))
    parser.add_argument("--weights-dir", type=Path, default=None)
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    faces = hq_faces()
    for index, path in enumerate(faces):
        hq = load_512(path)
        name = f"{index:02d}_{path.parent.name}_{path.stem}"
        write_image(args.work / "gt" / f"{name}.png", to_numpy(hq))
        for method, image in baselines(degrade(hq, seed=index)).items():
            write_image(args.work / method / f"{name}.png", to_numpy(image))
    runs = []
    for method in ("degraded-input", "bicubic", "bicubic+unsharp"):
        start = time.perf_counter()
        options = EvalOptions(weights_dir=args.weights_dir, use_cache=False)
        report = evaluate(args.work / method, args.work / "gt", options, progress=False)
        report.info["seconds"] = round(time.perf_counter() - start, 1)
        runs.append(write_report(report, args.out / method, method, overwrite=True))
        print(method, {k: round(v, 4) for k, v in report.summary.items()}, report.info["seconds"])
    written = compare(runs, args.out / "compare", x="psnr", overwrite=True)
    print("wrote", written["markdown"], written["plot"], f"({len(faces)} faces)")


if __name__ == "__main__":
    main()
