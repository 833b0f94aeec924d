"""One aligned face through the whole method (RM, plan, guided sampling) before and after the
fast path: eager torch fp32 against the CPU backends, official sizes, random weights, ddim50.

A face takes minutes per setting on a loaded 2-core machine, so with `--steps-measured K` the
sampling stops after K steps and the rest is extrapolated from the median step time and the
planned number of steps (the face's nfe); the JSON says which figures are extrapolated. The
settings run interleaved (A, B, C, then again) so that load from other processes hits them
alike. The restorer is the one `dynface restore --aligned` builds (`Restorer.from_config`).

    python benchmarks/whole_face.py [--steps-measured 3] [--variants torch:fp32,auto:fp32,...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _common import environment, write_result
from dynface.api import Restorer
from dynface.io import to_tensor

FACE = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut_face.png"
RANDOM = {"prior.weights": "random", "restorer.weights": "random"}


class _Stop(Exception):
    """Raised from the progress callback once enough steps were timed."""


def build(
    config: str, backend: str, precision: str, steps: str, solver: str
) -> tuple[Restorer, float]:
    """The restorer `dynface restore` would build (random official-size weights), and its
    build time (export or cache read included)."""
    started = time.perf_counter()
    overrides = {**RANDOM, "respacing": steps, "solver": solver}
    model = Restorer.from_config(config, "cpu", precision, overrides=overrides, backend=backend)
    return model, time.perf_counter() - started


def timed_face(model: Restorer, face: torch.Tensor, measured: int) -> dict:
    """Restore `face` (or its first `measured` sampling steps); the time of each part."""
    marks: dict[str, float] = {}
    step_ends: list[float] = []
    plan: list[int] = []

    def on_plan(total: int) -> None:
        plan.append(total)
        marks["planned"] = time.perf_counter()

    def progress(_: int) -> None:
        step_ends.append(time.perf_counter())
        if measured and len(step_ends) >= measured:
            raise _Stop

    start = time.perf_counter()
    try:
        model.restore_aligned(face, seed=0, progress=progress, on_plan=on_plan)
        complete = True
    except _Stop:
        complete = False
    return {
        "setup_s": marks["planned"] - start,
        "steps_s": np.diff([marks["planned"], *step_ends]).tolist(),
        "nfe": plan[0],
        "total_s": time.perf_counter() - start if complete else None,
    }


def summary(name: str, build_s: float, model: Restorer, runs: list[dict]) -> dict:
    """Medians over the rounds; the face time extrapolated from the median step when partial."""
    setup = statistics.median(run["setup_s"] for run in runs)
    step = statistics.median(s for run in runs for s in run["steps_s"])
    nfe = runs[0]["nfe"]
    totals = [run["total_s"] for run in runs if run["total_s"] is not None]
    return {
        "variant": name,
        "backends_used": model.backends,
        "build_s": round(build_s, 2),
        "rm_and_plan_s": round(setup, 2),
        "step_s_median": round(step, 3),
        "steps_timed": sum(len(run["steps_s"]) for run in runs),
        "nfe": nfe,
        "face_s": round(statistics.median(totals) if totals else setup + nfe * step, 1),
        "extrapolated": not totals,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="torch:fp32,auto:fp32,openvino:bf16")
    parser.add_argument("--steps", default="ddim50")
    parser.add_argument("--solver", default="ddim", choices=("ddim", "dpm2m"))
    parser.add_argument("--steps-measured", type=int, default=3, help="0: run the whole chain")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (A, B, C, A..)")
    parser.add_argument("--config", default="default", help="tiny-random: a smoke test")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    models = {}
    for variant in args.variants.split(","):
        backend, precision = variant.split(":")
        models[variant] = build(args.config, backend, precision, args.steps, args.solver)
        print(variant, "built in", round(models[variant][1], 1), "s", flush=True)
    size = next(iter(models.values()))[0].settings.image_size
    image = Image.open(FACE).convert("RGB").resize((size, size), Image.BICUBIC)
    face = to_tensor(np.asarray(image, np.float32) / 255)
    runs: dict[str, list[dict]] = {name: [] for name in models}
    for r in range(args.rounds):
        for name, (model, _) in models.items():
            runs[name].append(timed_face(model, face, args.steps_measured))
            print(f"round {r + 1} {name}: {runs[name][-1]}", flush=True)
    rows = [summary(name, build_s, model, runs[name]) for name, (model, build_s) in models.items()]
    base = rows[0]["face_s"]
    for row in rows:
        row["ratio_to_first"] = round(row["face_s"] / base, 3)
    payload = {
        "benchmark": "whole_face",
        "config": f"{args.config}, random weights; tests/data/astronaut_face.png",
        "steps": args.steps,
        "solver": args.solver,
        "environment": environment(torch.device("cpu")),
        "results": rows,
    }
    out = args.out or Path(__file__).parent / "results" / "whole_face-cpu.json"
    print("written to", write_result("whole_face", payload, out))


if __name__ == "__main__":
    main()
