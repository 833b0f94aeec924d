"""Time one forward pass of DifFace's UNet prior (random weights, same architecture).

On CPU it times a mid-size setting (the official architecture at 256 px) and, with --full, the
official 512 config; on a GPU the official 512 config in fp32, fp16 and bf16. Figures go to
benchmarks/results/unet_forward-<device>.json.

    python benchmarks/unet_forward.py [--device cuda] [--batch 4] [--full]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from _common import environment, official_params, timed, write_result
from dynface.devices import pick_device
from dynface.nets import build_unet

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also the official 512 config on CPU")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = pick_device(args.device)
    if device.type == "cuda":
        cases = [(512, p) for p in ("fp32", "fp16", "bf16")]
    else:
        cases = [(256, "fp32")] + ([(512, "fp32")] if args.full else [])
    rows = []
    for size, precision in cases:
        net = build_unet(official_params(size)).to(device, DTYPES[precision]).eval()
        x = torch.randn(args.batch, 3, size, size, device=device)
        t = torch.full((args.batch,), 500, device=device)
        with torch.inference_mode():
            timing = timed(lambda net=net, x=x, t=t: net(x, t), device, args.repeats)
        row = {
            "image_size": size,
            "precision": precision,
            "batch": args.batch,
            **timing,
            "per_image_s": timing["median_s"] / args.batch,
        }
        rows.append(row)
        print(row)
    payload = {"benchmark": "unet_forward", "environment": environment(device), "results": rows}
    print("written to", write_result("unet_forward", payload, args.out))


if __name__ == "__main__":
    main()
