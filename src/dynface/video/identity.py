"""The identity guard for clips, per track: each track's first face decides its fidelity.

Before the restore pass, the first face of every track is restored with the identity guard
(`Restorer.restore_aligned(identity=...)`); the fidelity it was kept at restores every face of
that track, and its identity entry goes into each of the track's traces and the track summary.
Deciding once per track keeps a face from switching fidelity (and look) from frame to frame.
The decisions are kept in the work folder, so a resumed run does not decide again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from dynface.identity.guard import IdentityOptions
from dynface.video.consistency import FacePlan
from dynface.video.io import DecodedFrame

FILE = "identity.json"


def first_faces(plan: Iterator[list[FacePlan]]) -> dict[int, FacePlan]:
    """Each track's first planned face, by track id."""
    firsts: dict[int, FacePlan] = {}
    for faces in plan:
        for face in faces:
            firsts.setdefault(face.track, face)
    return firsts


def decide_tracks(
    frames: Iterator[DecodedFrame],
    firsts: dict[int, FacePlan],
    restorer: Any,
    identity: IdentityOptions,
    fidelity: float,
    crops_of: Callable[[DecodedFrame, list[FacePlan]], torch.Tensor],
) -> dict[int, dict[str, Any]]:
    """Restore each track's first face with the guard: per track, the kept fidelity and the
    identity entry (with the frame it was measured on). `crops_of` aligns a frame's faces as
    the restore pass does: (N, 3, S, S) in [0, 1]."""
    by_frame: dict[int, list[FacePlan]] = {}
    for plan in firsts.values():
        by_frame.setdefault(plan.frame, []).append(plan)
    plans, crops = [], []
    for frame in frames:
        if frame.index in by_frame:
            plans.extend(by_frame[frame.index])
            crops.append(crops_of(frame, by_frame[frame.index]))
        if frame.index >= max(by_frame, default=-1):
            break
    if not plans:
        return {}
    levels = [p.s_star for p in plans]
    result = restorer.restore_aligned(
        torch.cat(crops),
        seed=[p.seed for p in plans],
        s_star=None if None in levels else torch.tensor(levels),
        fidelity=fidelity,
        identity=identity,
    )
    return {
        plan.track: {
            "fidelity": trace.get("fidelity", fidelity),
            "identity": {**trace["identity"], "frame": plan.frame},
        }
        for plan, trace in zip(plans, result.traces, strict=True)
    }


def save(folder: Path, decisions: dict[int, dict[str, Any]]) -> None:
    """Keep the decisions in the work folder (written whole, then renamed)."""
    temporary = folder / f"{FILE}.partial"
    temporary.write_text(json.dumps({str(k): v for k, v in decisions.items()}))
    temporary.replace(folder / FILE)


def load(folder: Path) -> dict[int, dict[str, Any]] | None:
    """The decisions of an earlier run on this work folder, or None."""
    path = folder / FILE
    if not path.exists():
        return None
    return {int(k): v for k, v in json.loads(path.read_text()).items()}
