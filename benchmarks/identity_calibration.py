"""Calibrate `dynface.identity`: same-person vs other-person distances over degradation levels.

CelebRef-HQ (../shared/data/dmdnet_celebref/refs_hq: 9 people, 7-19 aligned 512 photos each).
For each degradation level, photo i of person A is degraded (the input) and compared with every
other clean photo: photo j != i of A (same person) and every photo of another person (the
restored face gone wrong). The input's face box is found on its clean photo, as the guard finds
it on the restored face of a pixel-aligned pair. Two ways are measured: "plain" (degraded input
vs clean photo) and "s*-matched" (what the guard does: the clean photo blurred by a Gaussian of
the input's blur level s*, estimated by the shipped estimator and rounded to 1 px here so that
blurred embeddings can be shared).
Writes benchmarks/results/identity_calibration.json and prints the table of docs/identity.md.

    python benchmarks/identity_calibration.py [--per-person 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dynface.data.degrade import Degradation, degrade, sample_protocol
from dynface.identity import SAME_PERSON
from dynface.identity.guard import blur_to
from dynface.identity.measure import embedding, face_box
from dynface.method.learned_se import learned_blur_level

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dmdnet_celebref" / "refs_hq"
OUT = Path(__file__).resolve().parent / "results" / "identity_calibration.json"


def level(sigma: float = 0.1, scale: float = 1.0, noise: float = 0.0, jpeg: int = 100):
    """A fixed degradation (isotropic blur std px at 512, down factor, noise 0-255, JPEG)."""
    return Degradation(sigma, sigma, 0.0, scale, noise, jpeg, False, 0)


LEVELS = {
    "clean": level(),
    "blur 2": level(2.0),
    "blur 4": level(4.0),
    "blur 8": level(8.0),
    "blur 12": level(12.0),
    "x4 down": level(scale=4.0),
    "x8 down": level(scale=8.0),
    "x16 down": level(scale=16.0),
    "noise 20": level(noise=20.0),
    "jpeg 30": level(jpeg=30),
    "blur 4 x4 noise 10 jpeg 50": level(4.0, 4.0, 10.0, 50),
    "blur 8 x8 noise 15 jpeg 40": level(8.0, 8.0, 15.0, 40),
}


def load_people() -> dict[str, list[np.ndarray]]:
    """Each person's photos as RGB uint8 arrays."""
    people: dict[str, list[np.ndarray]] = {}
    for folder in sorted(p for p in DATA.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.png"), key=lambda p: int(p.stem))
        people[folder.name] = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    return people


def degraded(image: np.ndarray, params: Degradation) -> np.ndarray:
    """`image` through one fixed degradation of the CelebA-Test chain (dynface.data.degrade)."""
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
    y = degrade(x, [params])[0]
    return np.ascontiguousarray((y.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def embed_all(
    people, boxes, params: Degradation | None, first: int | None = None
) -> dict[tuple[str, int], np.ndarray]:
    """Embeddings of each person's photos (the `first` ones; degraded by `params` when given)
    in the clean photo's box."""
    out = {}
    for name, photos in people.items():
        for k, photo in enumerate(photos[:first]):
            if boxes[name, k] is not None:
                image = photo if params is None else degraded(photo, params)
                out[name, k] = embedding(image, boxes[name, k])
    return out


class BlurredEmbeddings:
    """Embeddings of clean photos blurred to a whole-px blur level, computed once each."""

    def __init__(self, people, boxes) -> None:
        self.people, self.boxes, self.cache = people, boxes, {}

    def __call__(self, name: str, k: int, level: int) -> np.ndarray:
        if (name, k, level) not in self.cache:
            image = blur_to(self.people[name][k], float(level))
            self.cache[name, k, level] = embedding(image, self.boxes[name, k])
        return self.cache[name, k, level]


def blur_levels(people, params: Degradation, per_person: int) -> dict[tuple[str, int], float]:
    """The shipped estimator's s* of each degraded input (px at 512)."""
    levels = {}
    for name, photos in people.items():
        for k, photo in enumerate(photos[:per_person]):
            x = torch.from_numpy(degraded(photo, params).copy()).permute(2, 0, 1)[None] / 255
            levels[name, k] = float(learned_blur_level(x.float())[0])
    return levels


def s_matched_distances(inputs, clean, levels, blurred) -> tuple[list[float], list[float]]:
    """Same- and other-person distances with each clean photo blurred to the input's s*."""
    same, other = [], []
    for (name, k), level in levels.items():
        if (name, k) not in inputs:
            continue
        for name_j, j in clean:
            if (name_j, j) != (name, k):
                d = float(np.linalg.norm(inputs[name, k] - blurred(name_j, j, round(level))))
                (same if name_j == name else other).append(d)
    return same, other


def pair_distances(inputs, others, per_person: int) -> tuple[list[float], list[float]]:
    """Same-person and other-person distances from the first `per_person` inputs of each person."""
    same, other = [], []
    for (name, k), e in inputs.items():
        if k >= per_person:
            continue
        for (name_j, j), f in others.items():
            if (name_j, j) == (name, k):
                continue
            (same if name_j == name else other).append(float(np.linalg.norm(e - f)))
    return same, other


def summary(same: list[float], other: list[float], threshold: float) -> dict:
    """Accuracy at `threshold`, the best threshold and its balanced accuracy, and the AUC."""
    s, o = np.array(same), np.array(other)
    grid = np.linspace(0.2, 1.2, 201)
    balanced = [((s <= t).mean() + (o > t).mean()) / 2 for t in grid]
    auc = float((s[:, None] < o[None, :]).mean())
    return {
        "same_mean": round(float(s.mean()), 3),
        "same_std": round(float(s.std()), 3),
        "other_mean": round(float(o.mean()), 3),
        "other_std": round(float(o.std()), 3),
        "same_accepted": round(float((s <= threshold).mean()), 3),
        "other_rejected": round(float((o > threshold).mean()), 3),
        "balanced_accuracy": round(
            float(((s <= threshold).mean() + (o > threshold).mean()) / 2), 3
        ),
        "best_threshold": round(float(grid[int(np.argmax(balanced))]), 3),
        "best_balanced_accuracy": round(float(max(balanced)), 3),
        "auc": round(auc, 4),
        "pairs": [len(s), len(o)],
        "distances": {"same": [round(v, 3) for v in same], "other": [round(v, 3) for v in other]},
    }


def protocol_levels(count: int) -> dict[str, Degradation]:
    """`count` random draws of the CelebA-Test grid (sigma 4-16, x4-x40, noise, JPEG)."""
    draws = sample_protocol(count, "difface-celeba-test", torch.Generator().manual_seed(0))
    return {f"celeba-test draw {i}": d for i, d in enumerate(draws)}


def main() -> None:
    """Measure every level, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-person", type=int, default=4, help="inputs per person and level")
    parser.add_argument("--protocol-draws", type=int, default=4)
    args = parser.parse_args()
    start = time.perf_counter()
    people = load_people()
    boxes = {(n, k): face_box(p) for n, ps in people.items() for k, p in enumerate(ps)}
    clean = embed_all(people, boxes, None)
    blurred = BlurredEmbeddings(people, boxes)
    payload = {
        "threshold": SAME_PERSON,
        "faces": sum(b is not None for b in boxes.values()),
        "per_person": args.per_person,
        "levels": {},
    }
    for name, params in {**LEVELS, **protocol_levels(args.protocol_draws)}.items():
        inputs = embed_all(people, boxes, params, args.per_person)
        plain = summary(*pair_distances(inputs, clean, args.per_person), SAME_PERSON)
        levels = blur_levels(people, params, args.per_person)
        guard = summary(*s_matched_distances(inputs, clean, levels, blurred), SAME_PERSON)
        guard["s_star_mean"] = round(float(np.mean(list(levels.values()))), 2)
        payload["levels"][name] = {
            "params": params.as_row(),
            "plain": plain,
            "s_star_matched": guard,
        }
        payload["seconds"] = round(time.perf_counter() - start, 1)
        OUT.write_text(json.dumps(payload, indent=1) + "\n")  # after every level
        print(f"{name}: s* {guard['s_star_mean']}", flush=True)
        for way, row in (("plain", plain), ("s*-matched", guard)):
            print(f"  {way:10s} {_row(row)}", flush=True)
    print(f"wrote {OUT}")


def pooled(payload: dict, way: str, levels: list[str]) -> dict:
    """Balanced accuracy over several levels' pairs pooled (each level weighted by its pairs)."""
    same = [d for name in levels for d in payload["levels"][name][way]["distances"]["same"]]
    other = [d for name in levels for d in payload["levels"][name][way]["distances"]["other"]]
    return summary(same, other, payload["threshold"])


def _row(s: dict) -> str:
    return (
        f"same {s['same_mean']:.2f}±{s['same_std']:.2f} other {s['other_mean']:.2f} "
        f"bacc {s['balanced_accuracy']:.3f} (best {s['best_threshold']:.2f}: "
        f"{s['best_balanced_accuracy']:.3f}) auc {s['auc']:.3f}"
    )


if __name__ == "__main__":
    main()
