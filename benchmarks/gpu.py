"""Per-face time and faces/s of the whole aligned-face method on a GPU, ready to run in one go.

Official network sizes with random weights (no downloads), the published settings (DDIM,
`ddim250` respacing, DSST start steps), for each precision (fp16, bf16; fp32 for reference) and
batch size, on the eager `torch` backend and on `torch-compile`. CUDA graphs are not used: the
batch under way changes from step to step (faces start at their own steps), and each new size
would be recorded again. Also times one UNet forward per precision and batch. Each setting of
`--steps` is timed: the published `ddim250` and `fast` (dynface.diffusion.FAST: DPM-Solver++(2M)
on 18 log-SNR steps, at most 16 evaluations a face). Writes benchmarks/results/gpu-<device>.json.

    python benchmarks/gpu.py                       # a GPU: all settings (~15-30 min)
    python benchmarks/gpu.py --device cpu --quick  # smoke test of this script on tiny nets
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _common import environment, timed, write_result
from dynface.api import Restorer
from dynface.devices import pick_device
from dynface.diffusion import SOLVERS
from dynface.io import to_tensor

FACES = Path(__file__).resolve().parents[1] / "tests" / "data"
RANDOM = {"prior.weights": "random", "restorer.weights": "random"}


def faces(count: int, size: int) -> torch.Tensor:
    """`count` aligned test faces (the two public-domain crops, repeated) at `size` px."""
    crops = []
    for name in ("astronaut_face.png", "grace_hopper_face.png"):
        image = Image.open(FACES / name).convert("RGB").resize((size, size), Image.BICUBIC)
        crops.append(to_tensor(np.asarray(image, np.float32) / 255))
    return torch.cat([crops[k % 2] for k in range(count)])


def restorer(args, precision: str, backend: str, steps: str) -> Restorer:
    overrides = {**RANDOM, "respacing": steps, "solver": args.solver}
    config = "tiny-random" if args.quick else "default"
    return Restorer.from_config(
        config, args.device, precision, overrides=overrides, backend=backend
    )


def time_faces(model: Restorer, images: torch.Tensor, batch: int) -> dict:
    """Restore `images` in batches of `batch` after one warm-up batch; seconds and faces/s."""
    model.restore_aligned(images[:batch], seed=0, batch_size=batch)
    device = model.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = model.restore_aligned(images, seed=0, batch_size=batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    nfe = [trace["nfe"] for trace in result.traces]
    return {
        "faces": len(images),
        "seconds": round(seconds, 3),
        "per_face_s": round(seconds / len(images), 4),
        "faces_per_s": round(len(images) / seconds, 4),
        "mean_nfe": sum(nfe) / len(nfe),
    }


def time_unet(model: Restorer, batch: int, repeats: int) -> dict:
    """One forward of the prior on `batch` faces at the working size."""
    size = model.settings.image_size
    x = torch.randn(batch, 3, size, size, device=model.device)
    t = torch.full((batch,), 500, device=model.device)
    timing = timed(lambda: model.pipeline.prior(x, t), model.device, repeats)
    return {**timing, "per_face_s": timing["median_s"] / batch}


def time_setting(args, precision: str, backend: str, steps: str, batches: list[int]) -> list:
    """The rows of one precision, backend and steps setting: one per batch size."""
    started = time.perf_counter()
    model = restorer(args, precision, backend, steps)
    build_s = round(time.perf_counter() - started, 2)
    images = faces(args.faces, model.settings.image_size)
    rows = []
    for batch in batches:
        row = {"precision": precision, "backend": backend, "batch": batch, **model.sampling}
        row["steps"], row["build_s"] = steps, build_s
        row["unet_forward"] = time_unet(model, batch, repeats=3 if args.quick else 10)
        row["whole_face"] = time_faces(model, images, batch)
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny nets, few faces: a smoke test")
    parser.add_argument("--faces", type=int, default=16)
    parser.add_argument("--batches", default="1,4,8,16")
    parser.add_argument("--precisions", default=None, help="default: fp16,bf16,fp32 on a GPU")
    parser.add_argument("--backends", default="torch,torch-compile")
    parser.add_argument(
        "--steps", default="ddim250,fast", help="respacings, comma-separated (published: ddim250)"
    )
    parser.add_argument("--solver", default=None, choices=SOLVERS, help="default: each steps'")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = pick_device(args.device)
    if args.quick:
        args.faces, args.batches, args.steps = 2, "1,2", "ddim5,fast"
        args.backends = "torch"
    on_gpu = device.type == "cuda"
    precisions = (args.precisions or ("fp16,bf16,fp32" if on_gpu else "fp32")).split(",")
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    for precision in precisions:
        for backend in args.backends.split(","):
            for steps in args.steps.split(","):
                rows += time_setting(args, precision, backend, steps, batches)
                if on_gpu:
                    torch.cuda.empty_cache()
    payload = {
        "benchmark": "gpu",
        "config": "tiny-random" if args.quick else "default (official sizes), random weights",
        "steps": args.steps.split(","),
        "environment": environment(device),
        "results": rows,
    }
    suffix = "-quick" if args.quick else ""
    out = args.out or Path(__file__).parent / "results" / f"gpu{suffix}-{device.type}.json"
    print("written to", write_result("gpu", payload, out))


if __name__ == "__main__":
    main()
