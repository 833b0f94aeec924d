"""Time each backend against eager PyTorch fp32 on the same network, interleaved.

Builds the official DifFace UNet (random weights, seeded) at 512, batch 1, compiles it on every
installed backend and precision, and on "auto" (what it measures and picks, at fp32 and at bf16),
and runs the candidates in rounds (eager, A, B, C, ... then again) so that load from other
processes hits all of them alike. Reports per backend the median of the per-round time ratios
to eager fp32, its disagreement with eager fp32 (max |diff| / max(1, max |eager|), auto's
agreement measure), the time to compile (first: export; second: from the cache), the CPU model
and the load average before and after, and the verdict of bar H-cpu-speed: the fastest fp32
runtime at most 0.8x eager at a disagreement of at most 1e-4; bf16 at most 0.45x eager, or,
where the CPU cannot make it faster, auto at bf16 no slower than the fastest fp32 (5% margin).
Writes benchmarks/results/backends-<net>-cpu.json.

    python benchmarks/backends.py [--rounds 5] [--net unet|swinir|rrdbnet] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

from _common import environment, load_average, write_result
from dynface.backends import available_backends, compile_net
from dynface.backends.autotune import disagreement
from dynface.background import CPU_TILES
from dynface.config import load_config
from dynface.nets import build_rrdbnet, build_swinir, build_unet

CANDIDATES = [
    ("torch", "bf16"),
    ("onnxruntime", "fp32"),
    ("openvino", "fp32"),
    ("openvino", "bf16"),
    ("auto", "fp32"),
    ("auto", "bf16"),
]
FP32_BAR, BF16_BAR, FP32_AGREEMENT, NOISE = 0.8, 0.45, 1e-4, 1.05


def build(net_name: str, quick: bool) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """The official-size network with seeded random weights and its batch-1 inputs (Real-ESRGAN
    x4 on one CPU tile)."""
    config = load_config("tiny-random" if quick else "default")
    torch.manual_seed(0)
    size = config["image_size"]
    x = torch.randn(1, 3, size, size)
    if net_name == "unet":
        return build_unet(config["prior"]["params"]).eval(), (x, torch.tensor([500]))
    if net_name == "rrdbnet":
        params = {"scale": 4, **config["background"]["x4"].get("params", {})}
        tile = 32 if quick else CPU_TILES.tile
        return build_rrdbnet(params).eval(), (torch.rand(1, 3, tile, tile),)
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
    parser.add_argument("--net", choices=("unet", "swinir", "rrdbnet"), default="unet")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny nets: checks the script runs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    load_before = load_average()
    net, inputs = build(args.net, args.quick)
    installed = [*available_backends(), "auto"]
    candidates = {}
    rows = {}
    for backend, precision in CANDIDATES:
        if backend not in installed:
            print(f"skip {backend}: not installed")
            continue
        name = f"{backend}-{precision}"
        candidates[name], rows[name] = compile_timed(net, backend, precision, inputs)
        rows[name]["ran"] = f"{candidates[name].backend} {candidates[name].precision}"
        rows[name]["reason"] = getattr(candidates[name], "reason", "")
        print(name, rows[name], flush=True)
    eager_times, times = interleaved(net, inputs, candidates, rows, args.rounds)
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
        "load_avg_1m_before_after": [load_before, load_average()],
        "eager_fp32": {
            "median_s": round(statistics.median(eager_times), 3),
            "times_s": [round(t, 3) for t in eager_times],
        },
        "backends": rows,
        "H-cpu-speed": verdict(rows),
    }
    print("H-cpu-speed", payload["H-cpu-speed"])
    suffix = "-quick" if args.quick else ""
    out = args.out or Path(__file__).parent / "results" / f"backends-{args.net}{suffix}-cpu.json"
    print("written to", write_result("backends", payload, out))


def interleaved(net, inputs, candidates, rows, rounds) -> tuple[list[float], dict]:
    """Eager fp32 and every candidate in turn, `rounds` times; records each one's disagreement."""
    _, reference = once(net, inputs)  # warm-up of eager, and the reference output
    for fn in candidates.values():
        once(fn, inputs)
    eager_times, times = [], {name: [] for name in candidates}
    for r in range(rounds):
        eager_times.append(once(net, inputs)[0])
        for name, fn in candidates.items():
            seconds, out = once(fn, inputs)
            times[name].append(seconds)
            error = disagreement(out, reference)
            rows[name]["disagreement"] = max(rows[name].get("disagreement", 0.0), error)
        print(f"round {r + 1}: eager {eager_times[-1]:.2f}s", flush=True)
    return eager_times, times


def verdict(rows: dict) -> dict:
    """Bar H-cpu-speed from the measured rows (see the module docstring)."""
    runtimes = {n: r for n, r in rows.items() if not n.startswith(("auto", "torch"))}
    fp32 = {n: r for n, r in runtimes.items() if n.endswith("fp32")}
    bf16 = {n: r for n, r in runtimes.items() if n.endswith("bf16")}
    result: dict = {}
    if fp32:
        name = min(fp32, key=lambda n: fp32[n]["ratio_to_eager_fp32"])
        row = fp32[name]
        ok = row["ratio_to_eager_fp32"] <= FP32_BAR and row["disagreement"] <= FP32_AGREEMENT
        result["fp32"] = {"fastest": name, "ratio": row["ratio_to_eager_fp32"], "pass": ok}
    if bf16 and fp32 and "auto-bf16" in rows:
        name = min(bf16, key=lambda n: bf16[n]["ratio_to_eager_fp32"])
        ratio = bf16[name]["ratio_to_eager_fp32"]
        auto = rows["auto-bf16"]["ratio_to_eager_fp32"]
        never_slower = auto <= result["fp32"]["ratio"] * NOISE
        result["bf16"] = {
            "fastest": name,
            "ratio": ratio,
            "auto_bf16_ran": rows["auto-bf16"]["ran"],
            "auto_bf16_ratio": auto,
            "pass": ratio <= BF16_BAR or never_slower,
        }
    return result


if __name__ == "__main__":
    main()
