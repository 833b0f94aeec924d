"""Learned blur-level estimator vs the zero-shot one on held-out faces at 512 px (MAE in px).

Usage: python benchmarks/learned_se_eval.py [--sde W] [--se W] [--shipped] [-o result.json]
Held-out faces: redegnet/ffhq512_hq and CelebRef identities 00005 and 00022 (never trained on).
Pure Gaussian blur: every face blurred with s in LEVELS, noise std 0.01, 8-bit quantisation;
target s (and, separately, the pair's s*, which is what SE is trained to output).
Full mix: DRAWS random DiffBIR-range degradations per face (seeded); target s* at 512.
The zero-shot estimator gets r = the clean face, its best case (an upper bound on its accuracy).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from dynface.data.datasets import manifest_faces
from dynface.data.degrade import DegradationConfig, degrade, sample_degradations
from dynface.data.targets import equivalent_blur_level
from dynface.io import read_image, to_tensor
from dynface.method.blur import gaussian_blur
from dynface.method.dblm import zero_shot_blur_level
from dynface.method.learned_se import load_estimator
from dynface.nets.estimator import SDE, SE, TM
from dynface.resize import resize

LEVELS = torch.tensor([1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0])
HELD_OUT = ["redegnet/ffhq512_hq", "dmdnet_celebref/refs_hq/00005", "dmdnet_celebref/refs_hq/00022"]
DRAWS = 2


def _load(kind: str, path: str, config: dict) -> torch.nn.Module:
    """A trained SDE or SE from a training run's final.safetensors."""
    if kind == "sde":
        net = SDE(**config.get("sde", {}))
    else:
        net = SE(TM(**config.get("tm", {})), SDE(**config.get("sde", {})))
    net.load_state_dict(load_file(path))
    return net.eval()


def _mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred - target).abs().mean())


@torch.no_grad()
def main() -> None:
    """Run the comparison and write its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--sde", help="final.safetensors of `dynface train sde`")
    parser.add_argument("--se", help="final.safetensors of `dynface train se`")
    parser.add_argument("--shipped", action="store_true", help="also the shipped estimator")
    parser.add_argument("-o", "--output", default="benchmarks/results/learned_se_eval.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    estimators: dict = {}
    if args.sde:
        estimators["learned_sde"] = _load("sde", args.sde, {"sde": {"work_size": 256}})
    if args.se:
        cfg = {"tm": {"work_size": 128}, "sde": {"work_size": 256}}
        estimators["learned_se"] = _load("se", args.se, cfg)
    if args.shipped:
        estimators["shipped"] = load_estimator()
    paths = manifest_faces(args.data, only=HELD_OUT)
    gen = torch.Generator().manual_seed(0)
    blur = {name: [] for name in [*estimators, "zero_shot_r_clean"]}
    mix = {name: [] for name in blur}
    blur_target, blur_s_star, mix_target = [], [], []
    start = time.perf_counter()
    for path in paths:
        x = resize(to_tensor(read_image(path).pixels), 512, mode="bilinear").clamp(0, 1)
        r = x.expand(len(LEVELS), -1, -1, -1)
        y = gaussian_blur(r, LEVELS) + 0.01 * torch.randn(r.shape, generator=gen)
        y = (y.clamp(0, 1) * 255).round() / 255
        blur_target.append(LEVELS)
        blur_s_star.append(equivalent_blur_level(r, y))
        blur["zero_shot_r_clean"].append(zero_shot_blur_level(y, r))
        for name, net in estimators.items():
            blur[name].append(net(y).float())
        params = sample_degradations(DRAWS, DegradationConfig(), gen)
        xm = x.expand(DRAWS, -1, -1, -1)
        ym = (degrade(xm, params) * 255).round() / 255
        mix_target.append(equivalent_blur_level(xm, ym))
        mix["zero_shot_r_clean"].append(zero_shot_blur_level(ym, xm))
        for name, net in estimators.items():
            mix[name].append(net(ym).float())
    bt, mt = torch.cat(blur_target), torch.cat(mix_target)
    per_level = {
        name: [
            _mae(torch.cat(v).view(-1, len(LEVELS))[:, i], LEVELS[i]) for i in range(len(LEVELS))
        ]
        for name, v in blur.items()
    }
    result = {
        "faces": len(paths),
        "held_out": HELD_OUT,
        "seconds": round(time.perf_counter() - start, 1),
        "pure_blur": {
            "levels": LEVELS.tolist(),
            "mae_px": {name: _mae(torch.cat(v), bt) for name, v in blur.items()},
            "s_star_mean_per_level": torch.cat(blur_s_star).view(-1, len(LEVELS)).mean(0).tolist(),
            "mae_px_vs_s_star": {
                name: _mae(torch.cat(v), torch.cat(blur_s_star)) for name, v in blur.items()
            },
            "mae_px_per_level": per_level,
        },
        "full_mix": {
            "pairs": len(mt),
            "s_star_mean": float(mt.mean()),
            "s_star_range": [float(mt.min()), float(mt.max())],
            "mae_px": {name: _mae(torch.cat(v), mt) for name, v in mix.items()},
        },
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
