"""Time each backend against eager PyTorch fp32 on the same network, interleaved.

Builds the official DifFace UNet (random weights, seeded) at 512, batch 1, compiles it on every
installed backend and precision, and runs the candidates in rounds (eager, A, B, C, ... then again)
so that load from other processes hits all of them alike. Reports per backend the median of the
per-round time ratios to eager fp32, the max abs error of its output against eager fp32, and the
time to compile (first: export; second: from the cache). Writes
benchmarks/results/backends-<net>-cpu.json.

    python benchmarks/backends.py [--rounds 5] [--net unet|swinir] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

from _common import environment, write_result
from dynface.backends import available_backends, compile_net
from dynface.config import load_config
from dynface.nets import build_swinir, build_unet

CANDIDATES = [
    ("torch", "bf16"),
    ("onnxruntime", "fp32"),
    ("openvino", "fp32"),
    ("openvino", "bf16"),
]


def build(net_name: str, quick: bool) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """The official-size network with seeded random weights and its batch-1 inputs."""
    config = load_config("tiny-random" if quick else "default")
    torch.manual_seed(0)
    size = config["image_size"]
    x = torch.randn(1, 3, size, size)
    if net_name == "unet":
        return build_unet(config["prior"]["params"]).eval(), (x, torch.tensor([500]))
    return build_swinir(config["restorer"]["params"]).eval(), ((x.clamp(-1, 1) + 1) / 2,)


def compile_timed(net, backend, precision, inputs) -> tuple[torch.nn.Module, dict]:
    """Compile twice: the first call exports (cold cache), the second reads the cache."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        compiled = compile_net(copy.deepcopy(net), backend, precision, example_inputs=inputs)
        times.append(time.perf_counter() - start)
    return compiled, {"first_compile_s": round(times[0], 2), "cached_compile_s": round(times[1], 2)}


def once(fn, inputs) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    with torch.inference_mode():
        out = fn(*inputs)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=("unet", "swinir"), default="unet")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny nets: checks the script runs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    net, inputs = build(args.net, args.quick)
    installed = available_backends()
    candidates = {}
    rows = {}
    for backend, precision in CANDIDATES:
        if backend not in installed:
            print(f"skip {backend}: not installed")
            continue
        name = f"{backend}-{precision}"
        candidates[name], rows[name] = compile_timed(net, backend, precision, inputs)
        print(name, rows[name], flush=True)
    _, reference = once(net, inputs)  # warm-up of eager, and the reference output
    for fn in candidates.values():
        once(fn, inputs)
    eager_times, times = [], {name: [] for name in candidates}
    for r in range(args.rounds):
        eager_times.append(once(net, inputs)[0])
        for name, fn in candidates.items():
            seconds, out = once(fn, inputs)
            times[name].append(seconds)
            error = (out.float() - reference).abs().max().item()
            rows[name]["max_abs_error"] = max(rows[name].get("max_abs_error", 0.0), error)
        print(f"round {r + 1}: eager {eager_times[-1]:.2f}s", flush=True)
    for name, row in rows.items():
        ratios = [t / e for t, e in zip(times[name], eager_times, strict=True)]
        row.update(
            median_s=round(statistics.median(times[name]), 3),
            ratio_to_eager_fp32=round(statistics.median(ratios), 3),
            ratio_range=[round(min(ratios), 3), round(max(ratios), 3)],
        )
        print(name, row)
    payload = {
        "benchmark": "backends",
        "net": args.net,
        "config": "tiny-random" if args.quick else "default (official sizes), random weights",
        "batch": 1,
        "rounds": args.rounds,
        "environment": environment(torch.device("cpu")),
        "eager_fp32": {
            "median_s": round(statistics.median(eager_times), 3),
            "times_s": [round(t, 3) for t in eager_times],
        },
        "backends": rows,
    }
    suffix = "-quick" if args.quick else ""
    out = args.out or Path(__file__).parent / "results" / f"backends-{args.net}{suffix}-cpu.json"
    print("written to", write_result("backends", payload, out))


if __name__ == "__main__":
    main()
