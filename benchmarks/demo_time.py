"""Wall time of the README's first command (`dynface demo`) on this machine's CPU, full-size nets.

The real weights cannot be downloaded here, so the demo's two sample photos are restored with the
default config's networks at full size but random weights (same compute per step), the shipped
learned blur-level estimator (so s*, start steps and network evaluations are those the real run
would plan) and the demo's CPU steps (ddim50). Each runtime runs in a fresh process; the ONNX
export is done once beforehand and not timed. Figures go to benchmarks/results/demo_time-cpu.json.

    python benchmarks/demo_time.py                       # torch (plain install) and onnxruntime
    python benchmarks/demo_time.py --backends torch
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from _common import environment, write_result
from dynface.api import Restorer
from dynface.cli.demo import sample_photos_dir
from dynface.cli.restore import CPU_STEPS
from dynface.config import load_config


def full_size_random_config(folder: Path) -> Path:
    """The default config with random prior and RM weights (seeded): full-size compute."""
    config = load_config("default")
    config["name"] = "default-random-weights"
    config["random_weights_seed"] = 0
    config["prior"]["weights"] = config["restorer"]["weights"] = "random"
    path = folder / "default-random.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def demo_command(config: Path, out: Path, backend: str) -> list[str]:
    """`dynface restore` with exactly the demo's settings on a CPU, and the given runtime."""
    return [
        sys.executable, "-m", "dynface", "restore", str(sample_photos_dir()), "-o", str(out),
        "--config", str(config), "--device", "cpu", "--steps", CPU_STEPS, "--seed", "0",
        "--save-trace", "--save-comparison", "--backend", backend,
    ]  # fmt: skip


def timed_run(config: Path, out: Path, backend: str) -> dict:
    """One demo run in a fresh process: wall time, and each face's s*, start step and NFE."""
    started = time.perf_counter()
    done = subprocess.run(demo_command(config, out, backend), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    faces = [
        {"photo": path.stem, **{k: face["method"][k] for k in ("s_star", "start_t", "nfe")}}
        for path in sorted((out / "traces").glob("*.json"))
        for face in json.loads(path.read_text())["faces"]
    ]
    return {"backend": backend, "wall_s": round(seconds, 1), "faces": faces}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = full_size_random_config(folder)
        for backend in args.backends:  # untimed: the one-off ONNX export
            Restorer.from_config(str(config), device="cpu", backend=backend)
        runs = [timed_run(config, folder / backend, backend) for backend in args.backends]
    payload = {
        "benchmark": "demo_time",
        "what": f"dynface demo's two sample photos, default nets with random weights, {CPU_STEPS}",
        "environment": environment(torch.device("cpu")),
        "runs": runs,
    }
    print(json.dumps(payload, indent=2))
    print(write_result("demo_time", payload, args.out))


if __name__ == "__main__":
    main()
