"""Calibrate `dynface.identity`: same-person vs other-person distances over degradation levels.

CelebRef-HQ (../shared/data/dmdnet_celebref/refs_hq: 9 people, 7-19 aligned 512 photos each).
For each degradation level, the first `--per-person` photos of each person are degraded (the
inputs) and compared with every other clean photo: the same person's other photos, and every
photo of the other people (a restored face gone wrong). Each face goes the way
`dynface.identity.distance` takes it: found by RetinaFace on the (degraded) image, aligned to
512, its blur level s* estimated; the sharper face of a pair is blurred by
gain * sqrt(s_hi^2 - s_lo^2) before dlib's embedding. "plain" is gain 0 (no matching). To share
embeddings between pairs, the matching blur is rounded to 0.5 px here.
Writes benchmarks/results/identity_calibration.json (after every level) and prints the table of
docs/identity.md with --table.

    python benchmarks/identity_calibration.py [--per-person 4] [--gains 0 1 1.5]
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
from dynface.identity.measure import MAX_BLUR_LEVEL, Face, aligned_crop, embedding, face

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


class Embeddings:
    """Embeddings of measured faces at a matching blur rounded to 0.5 px, computed once each."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, float], np.ndarray] = {}

    def __call__(self, key: str, measured: Face, sigma: float) -> np.ndarray:
        sigma = round(sigma * 2) / 2
        if (key, sigma) not in self.cache:
            self.cache[key, sigma] = embedding(measured.crop, sigma)
        return self.cache[key, sigma]


def measured_faces(people, params: Degradation | None, first: int | None) -> dict:
    """Each person's first photos (degraded by `params` when given) as `Face`s (None: no face)."""
    out = {}
    for name, photos in people.items():
        for k, photo in enumerate(photos[:first]):
            crop = aligned_crop(photo if params is None else degraded(photo, params))
            out[name, k] = None if crop is None else face(crop)
    return out


def distances(inputs, clean, embed: Embeddings, gain: float, tag: str) -> tuple[list, list]:
    """Same- and other-person pairs (distance, the pair's larger s*) of every input against
    every other clean photo."""
    same, other = [], []
    for (name, k), a in inputs.items():
        for (name_j, j), b in clean.items():
            if a is None or b is None or (name_j, j) == (name, k):
                continue
            sharp, soft = ((f"{tag}{name}/{k}", a), (f"{name_j}/{j}", b))
            if a.s_star > b.s_star:
                sharp, soft = soft, sharp
            sigma = gain * np.sqrt(max(soft[1].s_star ** 2 - sharp[1].s_star ** 2, 0.0))
            d = float(np.linalg.norm(embed(*sharp, sigma) - embed(*soft, 0.0)))
            (same if name_j == name else other).append((d, soft[1].s_star))
    return same, other


def summary(same: list, other: list, threshold: float) -> dict:
    """Over all pairs: accuracy at `threshold`, the best threshold, the AUC; and over the pairs
    `distance` measures (both faces at most MAX_BLUR_LEVEL): their share and accuracy."""
    s, o = np.array([d for d, _ in same]), np.array([d for d, _ in other])
    grid = np.linspace(0.2, 1.2, 201)
    balanced = [((s <= t).mean() + (o > t).mean()) / 2 for t in grid]
    kept_s = np.array([d for d, level in same if level <= MAX_BLUR_LEVEL])
    kept_o = np.array([d for d, level in other if level <= MAX_BLUR_LEVEL])
    measured = None
    if len(kept_s) and len(kept_o):
        measured = ((kept_s <= threshold).mean() + (kept_o > threshold).mean()) / 2
    return {
        "same_mean": round(float(s.mean()), 3),
        "same_std": round(float(s.std()), 3),
        "other_mean": round(float(o.mean()), 3),
        "other_std": round(float(o.std()), 3),
        "balanced_accuracy": round(
            float(((s <= threshold).mean() + (o > threshold).mean()) / 2), 3
        ),
        "best_threshold": round(float(grid[int(np.argmax(balanced))]), 3),
        "best_balanced_accuracy": round(float(max(balanced)), 3),
        "auc": round(float((s[:, None] < o[None, :]).mean()), 4),
        "pairs": [len(s), len(o)],
        "measured_share": round((len(kept_s) + len(kept_o)) / (len(s) + len(o)), 3),
        "measured_balanced_accuracy": None if measured is None else round(float(measured), 3),
        "distances": {
            "same": [[round(d, 3), round(v, 2)] for d, v in same],
            "other": [[round(d, 3), round(v, 2)] for d, v in other],
        },
    }


def protocol_levels(count: int) -> dict[str, Degradation]:
    """`count` random draws of the CelebA-Test grid (sigma 4-16, x4-x40, noise, JPEG)."""
    draws = sample_protocol(count, "difface-celeba-test", torch.Generator().manual_seed(0))
    return {
        f"CelebA-Test draw {i} (blur {d.sigma_x:g}/{d.sigma_y:g}, x{d.scale:g}, "
        f"noise {d.noise:g}, jpeg {d.jpeg})": d
        for i, d in enumerate(draws)
    }


def main() -> None:
    """Measure every level, write the JSON after each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-person", type=int, default=4, help="inputs per person and level")
    parser.add_argument("--protocol-draws", type=int, default=4)
    parser.add_argument("--gains", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--only", nargs="*", help="only these levels (names as in the table)")
    parser.add_argument("--table", action="store_true", help="print the table of the last run")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(OUT.read_text())))
        return
    start = time.perf_counter()
    people = load_people()
    clean, embed = measured_faces(people, None, None), Embeddings()
    payload: dict = {"threshold": SAME_PERSON, "per_person": args.per_person, "levels": {}}
    payload["faces"] = sum(f is not None for f in clean.values())
    for name, params in {**LEVELS, **protocol_levels(args.protocol_draws)}.items():
        if args.only and name not in args.only:
            continue
        inputs = measured_faces(people, params, args.per_person)
        entry: dict = {
            "params": params.as_row(),
            "unmeasured": sum(f is None for f in inputs.values()),
        }
        entry["s_star"] = round(float(np.mean([f.s_star for f in inputs.values() if f])), 2)
        for gain in args.gains:
            entry[f"gain {gain:g}"] = summary(
                *distances(inputs, clean, embed, gain, name), SAME_PERSON
            )
            print(f"{name} s* {entry['s_star']} gain {gain:g}: {_row(entry[f'gain {gain:g}'])}")
        payload["levels"][name] = entry
        payload["seconds"] = round(time.perf_counter() - start, 1)
        OUT.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {OUT}")


def table(payload: dict, gains: tuple[str, str] = ("gain 0", "gain 1")) -> str:
    """The markdown table of docs/identity.md: per level, as they are vs blur-matched, and what
    `distance` gives (blur-matched, faces past MAX_BLUR_LEVEL not measured)."""
    rows = [
        "| degradation | s* | same person | other people | AUC | balanced accuracy at "
        f"{payload['threshold']} | pairs measured | balanced accuracy of `distance` |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, level in payload["levels"].items():
        plain, guard = level[gains[0]], level[gains[1]]
        measured = guard["measured_balanced_accuracy"]
        rows.append(
            f"| {name} | {level['s_star']:.1f} "
            f"| {plain['same_mean']:.2f} / {guard['same_mean']:.2f} "
            f"| {plain['other_mean']:.2f} / {guard['other_mean']:.2f} "
            f"| {plain['auc']:.3f} / {guard['auc']:.3f} "
            f"| {plain['balanced_accuracy']:.3f} / {guard['balanced_accuracy']:.3f} "
            f"| {guard['measured_share']:.0%} | "
            + ("-" if measured is None else f"**{measured:.3f}**")
            + " |"
        )
    return "\n".join(rows)


def _row(s: dict) -> str:
    return (
        f"same {s['same_mean']:.2f}±{s['same_std']:.2f} other {s['other_mean']:.2f} "
        f"bacc {s['balanced_accuracy']:.3f} (best {s['best_threshold']:.2f}: "
        f"{s['best_balanced_accuracy']:.3f}) auc {s['auc']:.3f}"
    )


if __name__ == "__main__":
    main()
