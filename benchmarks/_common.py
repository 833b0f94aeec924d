"""Shared helpers for the hand-run benchmarks: timing, environment description, result files."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from dynface.config import load_config

RESULTS = Path(__file__).resolve().parent / "results"


def official_params(image_size: int = 512) -> dict:
    """The official DifFace UNet parameters, optionally at another working size."""
    params = dict(load_config("default")["prior"]["params"])
    params["image_size"] = image_size
    return params


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> dict:
    """Median and min wall time of `fn` over `repeats` runs after `warmup` runs, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"median_s": times[len(times) // 2], "min_s": times[0], "repeats": repeats}


def environment(device: torch.device) -> dict:
    """What the figures were measured on."""
    info = {
        "cpu_model": cpu_model(),
        "torch": torch.__version__,
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_avg_1m": load_average(),  # other work on the machine skews timings
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def cpu_model() -> str:
    """The CPU's model name (and a digest of its feature flags), as `--backend auto` keys it."""
    from dynface.backends.autotune import cpu_model as model

    return model()


def load_average() -> float:
    """The 1-minute load average: above ~0.5 on a 2-core machine the timings are not figures."""
    return round(os.getloadavg()[0], 2)


def write_result(name: str, payload: dict, out: Path | None) -> Path:
    """Write the figures as JSON (to `out`, or benchmarks/results/<name>-<device>.json)."""
    target = out or RESULTS / f"{name}-{payload['environment']['device'].split(':')[0]}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n")
    return target
