"""The analytic check of the samplers (issue 21): output variance over the true variance.

x0 ~ N(m, v) per pixel, the exact epsilon predictor, started at the respaced step at or below
t = 750 from the exact marginal (`dynface.diffusion.analytic`). For every solver, spacing and
eta: variance / v (1 is exact), the mean's error and the network evaluations. Writes
benchmarks/results/few_steps.json. CPU only, about a minute.

    python benchmarks/few_steps.py
    python benchmarks/few_steps.py --spacings logsnr18 ddim50 --etas 0 1   # a smaller table
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from _common import RESULTS
from dynface.diffusion import FAST, SOLVERS
from dynface.diffusion.analytic import MEAN, START_T, VARIANCE, variance_check

SPACINGS = ("ddim10", "ddim15", "ddim20", "ddim50", "ddim250", "logsnr10", "logsnr14", FAST[1])


def table(spacings: list[str], etas: list[float], start_t: int) -> list[dict]:
    """One row per (solver, spacing, eta)."""
    return [
        asdict(variance_check(solver, spacing, eta, start_t=start_t))
        for solver in SOLVERS
        for spacing in spacings
        for eta in etas
    ]


def main() -> None:
    """Build the table, print it and write it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacings", nargs="+", default=list(SPACINGS))
    parser.add_argument("--etas", nargs="+", type=float, default=[0.0, 0.5, 1.0])
    parser.add_argument("--start-t", type=int, default=START_T)
    parser.add_argument("--out", type=Path, default=RESULTS / "few_steps.json")
    args = parser.parse_args()
    rows = table(args.spacings, args.etas, args.start_t)
    for row in rows:
        print(
            f"{row['solver']:8} {row['respacing']:9} eta {row['eta']:.1f}  nfe {row['nfe']:3}  "
            f"variance/v {row['variance_ratio']:.3f}  mean error {row['mean_error']:+.4f}"
        )
    payload = {
        "model": {"mean": MEAN, "variance": VARIANCE, "start_t": args.start_t},
        "fast": list(FAST),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
