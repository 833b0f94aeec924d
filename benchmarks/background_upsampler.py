"""Time the Real-ESRGAN background upsampler (official x2 architecture, random weights).

Times the whole tiled upscale of a photo (tiles, blending, uint8 out) against the bicubic
resize, per precision the device allows, and reports seconds per input megapixel and the peak
GPU memory (and on a CPU the CPU-seconds per megapixel, which a busy machine does not
inflate). Random weights cost exactly what the official ones do. Figures go to
benchmarks/results/background_upsampler-<device>.json.

    python benchmarks/background_upsampler.py [--device cuda] [--size 256] [--scale 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from _common import environment, timed, write_result
from dynface.background import BicubicUpsampler, RealESRGANUpsampler
from dynface.config import NetworkConfig
from dynface.devices import pick_device
from dynface.tiling import TileSpec

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=256, help="side of the square input photo")
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--tile", type=int, default=None, help="default: the device's default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = pick_device(args.device)
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), np.uint8)
    megapixels = args.size * args.size / 1e6
    precisions = ["fp32", "fp16", "bf16"] if device.type == "cuda" else ["fp32"]
    net_scale = 2 if args.scale <= 2 else 4
    section = {net_scale: NetworkConfig("random", {"scale": net_scale}, f"background.x{net_scale}")}
    figures = {}
    for name in precisions:
        tiles = TileSpec(tile=args.tile or (512 if device.type == "cuda" else 256), overlap=32)
        upsampler = RealESRGANUpsampler(section, device, PRECISIONS[name], tiles)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        timing = timed(lambda u=upsampler: u.upscale(image, args.scale), device, args.repeats)
        timing["s_per_input_mp"] = timing["median_s"] / megapixels
        cpu_started = time.process_time()
        upsampler.upscale(image, args.scale)
        timing["cpu_s_per_input_mp"] = (time.process_time() - cpu_started) / megapixels
        if device.type == "cuda":
            timing["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        figures[f"realesrgan-{name}"] = timing
        print(name, timing)
    bicubic = timed(lambda: BicubicUpsampler().upscale(image, args.scale), device, args.repeats)
    figures["bicubic"] = bicubic
    payload = {
        "environment": environment(device),
        "input": f"{args.size}x{args.size} uint8",
        "scale": args.scale,
        "network": f"RRDBNet x{net_scale} (official architecture, random weights)",
        "figures": figures,
        "load_average_1min": os.getloadavg()[0],
    }
    print("written", write_result("background_upsampler", payload, args.out))


if __name__ == "__main__":
    main()
