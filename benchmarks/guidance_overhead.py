"""Cost of one guidance step (all 3 targets active, closed-form solve, DGSA map) at 512, batch 4,
relative to one forward pass of the official UNet on the same batch. Goal: under 5 %.

    python benchmarks/guidance_overhead.py [--device cuda] [--batch 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from _common import environment, official_params, timed, write_result
from dynface.devices import pick_device
from dynface.method.dblm import guidance_images, guidance_levels
from dynface.method.dgsa import make_dgsa
from dynface.method.guidance import blend, guide
from dynface.nets import build_unet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = pick_device(args.device)
    b, size = args.batch, 512
    r = torch.rand(b, 3, size, size, device=device) * 2 - 1
    s = guidance_levels(torch.tensor([12.0, 8.0, 4.0, 2.5][:b] * (b // 4 + 1))[:b].to(device))
    g = guidance_images(r, s)
    x0 = torch.rand(b, 3, size, size, device=device) * 2 - 1
    active = torch.ones_like(s, dtype=torch.bool)
    dgsa = make_dgsa("heuristic")

    def guidance_step() -> torch.Tensor:
        target = guide(x0, g, s, active, "closed-form")
        return blend(x0, target, dgsa(g[:, 0]))

    with torch.inference_mode():
        guidance = timed(guidance_step, device, args.repeats)
        net = build_unet(official_params(size)).to(device).eval()
        t = torch.full((b,), 500, device=device)
        unet = timed(lambda: net(x0, t), device, args.repeats)
    ratio = guidance["median_s"] / unet["median_s"]
    payload = {
        "benchmark": "guidance_overhead",
        "environment": environment(device),
        "batch": b,
        "image_size": size,
        "guidance_step": guidance,
        "unet_forward": unet,
        "ratio": ratio,
        "note": "DGSA heuristic map recomputed inside the step (a sampler computes it once)",
    }
    print(
        f"guidance {guidance['median_s']:.4f} s, UNet {unet['median_s']:.4f} s, ratio {ratio:.2%}"
    )
    print("written to", write_result("guidance_overhead", payload, args.out))


if __name__ == "__main__":
    main()
