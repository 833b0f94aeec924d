"""One aligned face on this machine's CPU: `--steps fast` vs `ddim50` vs one eager prior forward.

Issue 21's bar: with `fast` (dynface.diffusion.FAST, at most 16 network evaluations) one aligned
face at the official network sizes takes at most 8x one eager forward of the prior, timed alone
in the same run. Random weights (the same compute as the real ones; no downloads) and the
shipped learned blur-level estimator, so s*, the start step and the evaluations are those the
real run plans. Order: the eager forward, then each steps setting in turn (after one untimed
build, which also exports a runtime's graph once), repeated `--rounds` times interleaved.
Writes benchmarks/results/face_time-cpu.json. Run it on an idle machine:

    PYTHONPATH=src:benchmarks python benchmarks/face_time.py                  # official sizes
    PYTHONPATH=src:benchmarks python benchmarks/face_time.py --quick          # tiny smoke test
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
from dynface.io import to_tensor

FACE = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut_face.png"
RANDOM = {"prior.weights": "random", "restorer.weights": "random"}


def face(size: int) -> torch.Tensor:
    """The astronaut test crop at `size` px, (1, 3, size, size) in [0, 1]."""
    image = Image.open(FACE).convert("RGB").resize((size, size), Image.BICUBIC)
    return to_tensor(np.asarray(image, np.float32) / 255)


def eager_forward(model: Restorer) -> float:
    """Seconds of one forward of the prior on one face at the working size (median of 3)."""
    size = model.settings.image_size
    x, t = torch.randn(1, 3, size, size), torch.full((1,), 500)
    with torch.no_grad():
        return float(timed(lambda: model.pipeline.prior(x, t), torch.device("cpu"), 3)["median_s"])


def time_face(model: Restorer, image: torch.Tensor) -> dict:
    """Wall time of restoring one aligned face, with its plan."""
    started = time.perf_counter()
    trace = model.restore_aligned(image, seed=0).traces[0]
    seconds = time.perf_counter() - started
    keep = ("solver", "respacing", "s_star", "start_t", "nfe")
    return {"wall_s": round(seconds, 2), **{k: trace[k] for k in keep}}


def main() -> None:
    """Time the eager forward and each steps setting, interleaved over `--rounds`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", default=["fast", "ddim50"])
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny nets: a smoke test")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    config = "tiny-random" if args.quick else "default"
    models = {
        steps: Restorer.from_config(
            config, "cpu", overrides={**RANDOM, "steps": steps}, backend=args.backend
        )
        for steps in args.steps
    }
    eager = Restorer.from_config(config, "cpu", overrides=RANDOM, backend="torch")
    image = face(eager.settings.image_size)
    rounds = []
    for _ in range(args.rounds):
        row: dict = {"eager_forward_s": round(eager_forward(eager), 3)}
        row.update({steps: time_face(model, image) for steps, model in models.items()})
        eager_s = row["eager_forward_s"]
        row["ratio_to_eager"] = {s: round(row[s]["wall_s"] / eager_s, 2) for s in args.steps}
        rounds.append(row)
        print(row, flush=True)
    payload = {
        "benchmark": "face_time",
        "what": f"one aligned face, {config} nets with random weights, backend {args.backend}",
        "environment": environment(torch.device("cpu")),
        "rounds": rounds,
    }
    print(write_result("face_time", payload, args.out))


if __name__ == "__main__":
    main()
