"""The work folder of one clip, so an interrupted run restarts where it stopped.

    OUT/.dynface-work/NAME/run.json          what the run is (input file, settings): its key
    OUT/.dynface-work/NAME/plan.jsonl        tracks and smoothed landmarks / s*, one line a frame
    OUT/.dynface-work/NAME/faces/FFFFFFF.npz restored faces (uint8) and method traces of a frame

Every file is written under a temporary name and renamed, so a run killed at any moment leaves
only complete files. A run with a different input or different settings starts afresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dynface.video.consistency import FacePlan

WORK_FOLDER = ".dynface-work"


class WorkFolder:
    """Checkpoints of one clip's run under OUT/.dynface-work/NAME."""

    def __init__(self, outdir: Path, name: str) -> None:
        self.root = outdir / WORK_FOLDER / name
        self.faces = self.root / "faces"

    def open(self, key: dict[str, Any]) -> bool:
        """Use the folder for the run described by `key`; True when earlier work is reused."""
        run_file = self.root / "run.json"
        if run_file.exists():
            try:
                same = json.loads(run_file.read_text()) == _normalized(key)
            except (OSError, ValueError):
                same = False
            if same:
                return True
            shutil.rmtree(self.root)
        self.faces.mkdir(parents=True, exist_ok=True)
        _write_atomic(run_file, json.dumps(_normalized(key), indent=1).encode())
        return False

    def remove(self) -> None:
        """Delete the folder (after the output is complete), and its parent when empty."""
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.parent.rmdir()

    @property
    def plan_file(self) -> Path:
        return self.root / "plan.jsonl"

    def has_plan(self) -> bool:
        return self.plan_file.exists()

    def save_plan(self, frames: int, plans: dict[int, list[FacePlan]]) -> None:
        """One line per frame (also frames without faces), written atomically."""
        lines = (
            json.dumps({"frame": f, "faces": [p.to_json() for p in plans.get(f, [])]})
            for f in range(frames)
        )
        _write_atomic(self.plan_file, ("\n".join(lines) + "\n").encode())

    def read_plan(self) -> Iterator[list[FacePlan]]:
        """The faces of each frame, in frame order (streamed line by line)."""
        with self.plan_file.open() as handle:
            for line in handle:
                yield [FacePlan.from_json(face) for face in json.loads(line)["faces"]]

    def face_file(self, frame: int) -> Path:
        return self.faces / f"{frame:07d}.npz"

    def has_faces(self, frame: int) -> bool:
        return self.face_file(frame).exists()

    def save_faces(self, frame: int, faces: np.ndarray, traces: Iterable[Any]) -> None:
        """Restored faces (N, S, S, 3) uint8 and their method traces, atomically."""
        temporary = self.face_file(frame).with_suffix(".partial.npz")
        np.savez_compressed(temporary, faces=faces, traces=np.array(json.dumps(list(traces))))
        os.replace(temporary, self.face_file(frame))

    def load_faces(self, frame: int) -> tuple[np.ndarray, list[Any]]:
        """What `save_faces` stored for this frame."""
        with np.load(self.face_file(frame), allow_pickle=False) as data:
            return data["faces"], json.loads(str(data["traces"]))

    def restored_frames(self) -> int:
        """How many frames' faces are done."""
        return sum(1 for _ in self.faces.glob("*[0-9].npz"))


def _normalized(key: dict[str, Any]) -> Any:
    """The key as JSON would give it back (tuples become lists), for comparison."""
    return json.loads(json.dumps(key, sort_keys=True, default=str))


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(data)
    os.replace(temporary, path)
