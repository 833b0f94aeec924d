"""Does a CPU runtime's thread pool slow the torch work between its calls?

The sampler alternates runtime calls (the prior) with torch work (guidance, the RM). A runtime
whose pool busy-waits after each call keeps the cores torch needs. This times one eager torch
forward of the UNet alone, and right after a call of each runtime's session (ONNX Runtime,
OpenVINO, both), with the library's default thread settings and with dynface's quiet ones
(`quiet_threads`: no spinning, one inter-op thread, OpenVINO threads not pinned). Each setting
runs in its own process (a fresh thread pool), in rounds; the eager-alone case is run first and
last to show drift. Writes benchmarks/results/thread_spin-cpu.json.

    python benchmarks/thread_spin.py            # official UNet at 512 (the figure; idle machine)
    python benchmarks/thread_spin.py --quick    # tiny nets: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from _common import environment, load_average, official_params, write_result
from dynface.backends import onnx_export, runtime_onnx, runtime_openvino
from dynface.config import load_config
from dynface.nets import build_unet

#: name -> (runtimes whose sessions are alive and called between the eager forwards, quiet?)
SETTINGS = {
    "alone": ((), True),
    "onnxruntime-default": (("onnxruntime",), False),
    "onnxruntime-quiet": (("onnxruntime",), True),
    "openvino-default": (("openvino",), False),
    "openvino-quiet": (("openvino",), True),
    "both-default": (("onnxruntime", "openvino"), False),
    "both-quiet": (("onnxruntime", "openvino"), True),
    "alone-again": ((), True),
}
LOADERS = {"onnxruntime": runtime_onnx, "openvino": runtime_openvino}


def build(quick: bool) -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """The UNet (official sizes, or tiny) with seeded random weights, and batch-1 inputs."""
    torch.manual_seed(0)
    params = load_config("tiny-random")["prior"]["params"] if quick else official_params(512)
    size = params["image_size"]
    return build_unet(params).eval(), (torch.randn(1, 3, size, size), torch.tensor([500.0]))


def run_setting(name: str, rounds: int, quick: bool) -> dict:
    """In this process: the eager forward times (and the runtime call times) of one setting."""
    net, inputs = build(quick)
    runtimes, quiet = SETTINGS[name]
    graph = onnx_export.exported_graph(net, inputs) if runtimes else None
    arrays = [x.numpy() for x in inputs]
    runners = [LOADERS[r].load(graph, "fp32", quiet_threads=quiet) for r in runtimes]
    eager, calls = [], []
    for r in range(rounds + 1):  # round 0 warms up
        start = time.perf_counter()
        for runner in runners:
            runner(arrays)
        call = time.perf_counter() - start
        start = time.perf_counter()
        with torch.no_grad():
            net(*inputs)
        if r:
            eager.append(time.perf_counter() - start)
            calls.append(call)
    row = {"eager_median_s": round(statistics.median(eager), 3), "eager_s": eager}
    if runners:
        row["runtime_calls_median_s"] = round(statistics.median(calls), 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny nets: checks the script runs")
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.setting:
        print(json.dumps(run_setting(args.setting, args.rounds, args.quick)))
        return
    build(args.quick)  # fail early on a bad setup; the children export the graph once (cached)
    rows = {"load_avg_1m_before": load_average()}
    for name in SETTINGS:
        command = [sys.executable, __file__, "--setting", name, "--rounds", str(args.rounds)]
        done = subprocess.run(command + ["--quick"] * args.quick, capture_output=True, text=True)
        if done.returncode:
            rows[name] = {"error": done.stderr.strip().splitlines()[-1]}
        else:
            rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(name, rows[name], flush=True)
    rows["load_avg_1m_after"] = load_average()
    payload = {
        "benchmark": "thread_spin",
        "config": "tiny-random" if args.quick else "official UNet at 512, random weights, batch 1",
        "rounds": args.rounds,
        "environment": environment(torch.device("cpu")),
        "settings": rows,
    }
    suffix = "-quick" if args.quick else ""
    out = args.out or Path(__file__).parent / "results" / f"thread_spin{suffix}-cpu.json"
    print("written to", write_result("thread_spin", payload, out))


if __name__ == "__main__":
    main()
