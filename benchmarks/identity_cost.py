"""What the identity check costs per face on this machine: one attempt of the guard's meter on an
aligned 512 face (find the face, blur levels, blur matching, two embeddings).

    PYTHONPATH=src:benchmarks python benchmarks/identity_cost.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from _common import RESULTS, environment, write_result
from dynface.identity.guard import IdentityOptions, InputFaces
from dynface.identity.measure import resized

FACE = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut_face.png"


def main() -> None:
    """Time the first attempt (the input face measured too) and a retry (input cached)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    restored = resized(np.array(Image.open(FACE).convert("RGB")))
    blurred = cv2.GaussianBlur(restored, (0, 0), 6.0)
    meter = IdentityOptions().meter
    sources = InputFaces([blurred])
    meter.check(restored, lambda: sources.face(0))  # loads the models
    first, retry = [], []
    for _ in range(args.repeats):
        sources = InputFaces([blurred])
        start = time.perf_counter()
        check = meter.check(restored, lambda s=sources: s.face(0))
        first.append(time.perf_counter() - start)
        start = time.perf_counter()
        meter.check(restored, lambda s=sources: s.face(0))
        retry.append(time.perf_counter() - start)
    payload = {
        "environment": environment(torch.device("cpu")),
        "what": "identity check of one aligned 512 face against its blurred input",
        "distance": check.distance,
        "first_attempt_s": round(float(np.median(first)), 3),
        "retry_s": round(float(np.median(retry)), 3),
        "repeats": args.repeats,
    }
    print(payload)
    write_result("identity_cost", payload, RESULTS / "identity_cost-cpu.json")


if __name__ == "__main__":
    main()
