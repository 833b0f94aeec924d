"""Throughput of `dynface restore` on whole photos: faces per minute and network evaluations.

Copies the two public-domain test photos (one face each) `--copies` times into a folder, runs
`python -m dynface restore` on it in a fresh process with the given config, device, precision,
steps and batch size, and reads what was done from the traces: faces, network evaluations
(face-steps), start steps. Default config: the default architecture with random weights (the
same compute as the real networks, which cannot be downloaded here; the faces come out as noise).
Figures go to benchmarks/results/restore_throughput-<device>.json.

    python benchmarks/restore_throughput.py --device cuda --precision fp16 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut.png", "grace_hopper.jpg")


def random_default_config(path: Path) -> Path:
    """The default config with random weights for the prior and RM (same architecture)."""
    text = (REPO / "src" / "dynface" / "configs" / "default.yaml").read_text()
    text = re.sub(r"(?m)^(  weights: )(iddpm\S+|swinir\S+)", r"\1random", text)
    path.write_text(text)
    return path


def run(args: argparse.Namespace, work: Path, config: Path) -> dict:
    """Restore the photos once; wall time and what the traces say."""
    inputs = work / "in"
    inputs.mkdir()
    for k in range(args.copies):
        for name in PHOTOS:
            shutil.copy(REPO / "tests" / "data" / name, inputs / f"{k:03d}_{name}")
    out = work / "out"
    command = [sys.executable, "-m", "dynface", "restore", str(inputs), "-o", str(out)]
    command += ["--config", str(config), "--device", args.device, "--precision", args.precision]
    command += ["--steps", args.steps, "--batch-size", str(args.batch_size), "--seed", "0"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    started = time.perf_counter()
    done = subprocess.run([*command, "--save-trace"], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
    faces = [
        face["method"]
        for trace in sorted((out / "traces").glob("*.json"))
        for face in json.loads(trace.read_text())["faces"]
    ]
    return {
        "photos": args.copies * len(PHOTOS),
        "faces": len(faces),
        "face_steps": sum(int(face.get("nfe", 0)) for face in faces),
        "wall_s": round(seconds, 1),
        "faces_per_minute": round(60 * len(faces) / seconds, 2),
        "seconds_per_face": round(seconds / max(1, len(faces)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="fp16")
    parser.add_argument("--steps", default="ddim250")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--copies", type=int, default=8, help="copies of each test photo")
    parser.add_argument("--config", type=Path, help="default: default architecture, random")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = args.config or random_default_config(work / "random-default.yaml")
        row = run(args, work, config)
    import torch

    environment = {"torch": torch.__version__, "device": args.device}
    if args.device.startswith("cuda"):
        environment["gpu"] = torch.cuda.get_device_name()
    payload = {
        "benchmark": "restore_throughput",
        "settings": {k: str(v) for k, v in vars(args).items() if k != "out"},
        "environment": environment,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "result": row,
    }
    print(json.dumps(payload, indent=2))
    target = args.out or RESULTS / f"restore_throughput-{args.device.split(':')[0]}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
