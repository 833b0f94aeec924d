"""A photo's outputs are one set: complete, recognisably incomplete, or absent (ours).

The files of the photo NAME under the output folder, and how they are written:

    final/NAME.png, faces/cropped/NAME_KK.png, faces/restored/NAME_KK.png,
    traces/NAME.json (with --save-trace), compare/NAME.png (with --save-comparison)
    records/NAME.json      the photo's record: "writing" first, "complete" last

1. Claim: lock `records/NAME.lock` (flock; the kernel drops it when a process dies, so a crashed
   run never blocks a rerun, while a live concurrent run keeps the photo to itself). Remove
   what a crash left in `records/NAME.partial/`. Read the record: a complete record whose files
   are unchanged means done; files listed in any record of ours may be replaced; any other file
   in the way is the user's and is kept unless --overwrite.
2. Commit: record "writing" (every file about to be written, and the earlier set's), then each
   file to `records/NAME.partial/`, hard-linked to its real name (a link fails if the name was
   taken meanwhile, so nobody's file is replaced) or renamed over one of ours; then the earlier
   set's files that are not in the new one are removed; then record "complete" with each file's
   size and modification time. A crash at any point leaves a "writing" record: the rerun redoes
   the photo.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dynface.errors import UsageError
from dynface.io import write_image, write_json
from dynface.metadata import ImageMetadata
from dynface.outputs.names import output_names, printable

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent runs there are not guarded
    fcntl = None  # type: ignore[assignment]

#: Folders a run writes to, relative to the output folder.
OUTPUT_DIRS = ("final", "faces/cropped", "faces/restored", "traces", "compare", "records")
RECORD_FORMAT = "dynface-photo-record/1"


@dataclass(frozen=True)
class PhotoFiles:
    """Where the outputs of the photo `name` go under `root`."""

    root: Path
    name: str

    @property
    def final(self) -> Path:
        return self.root / "final" / f"{self.name}.png"

    @property
    def trace(self) -> Path:
        return self.root / "traces" / f"{self.name}.json"

    @property
    def compare(self) -> Path:
        return self.root / "compare" / f"{self.name}.png"

    @property
    def record(self) -> Path:
        return self.root / "records" / f"{self.name}.json"

    @property
    def lock(self) -> Path:
        return self.root / "records" / f"{self.name}.lock"

    @property
    def partial(self) -> Path:
        return self.root / "records" / f"{self.name}.partial"

    def faces(self, count: int, aligned: bool) -> list[tuple[Path, Path]]:
        """(cropped, restored) paths of each face; one unnumbered pair for an aligned crop."""
        suffixes = [""] if aligned else [f"_{k:02d}" for k in range(count)]
        return [
            (
                self.root / "faces" / "cropped" / f"{self.name}{suffix}.png",
                self.root / "faces" / "restored" / f"{self.name}{suffix}.png",
            )
            for suffix in suffixes
        ]

    def relative(self, path: Path) -> str:
        """`path` relative to the output folder, with forward slashes (as records hold it)."""
        return path.relative_to(self.root).as_posix()


@dataclass
class Claim:
    """This run's hold on one photo's output set; `skip` says why there is nothing to do."""

    files: PhotoFiles
    input: str
    skip: str | None = None
    ours: set[str] = field(default_factory=set)
    overwrite: bool = False
    _lock_fd: int | None = None

    def commit(
        self,
        images: dict[Path, np.ndarray],
        data: dict[Path, Any],
        info: dict[str, Any],
        metadata: dict[Path, ImageMetadata] | None = None,
    ) -> list[Path]:
        """Write the images (with the `metadata` given for any of them) and JSON files of the
        set, then the complete record; see the module.

        On any error the files written so far are removed again and the record stays "writing".
        """
        carried = metadata or {}
        planned = [self.files.relative(path) for path in [*images, *data]]
        self._write_record("writing", dict.fromkeys(planned), info, sorted(self.ours))
        written: list[Path] = []
        try:
            for path, pixels in images.items():
                written.append(
                    write_image(
                        path, pixels, self._replaces(path), 95, self.partial, carried.get(path)
                    )
                )
            for path, value in data.items():
                written.append(write_json(path, value, self._replaces(path), self.partial))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        for stale in self.ours - set(planned):
            (self.files.root / stale).unlink(missing_ok=True)
        stats = {rel: _stat(self.files.root / rel) for rel in planned}
        self._write_record("complete", stats, info, [])
        return written

    @property
    def partial(self) -> Path:
        return self.files.partial

    def release(self) -> None:
        """Drop the lock and the temporary folder (idempotent)."""
        if self._lock_fd is None:
            return
        shutil.rmtree(self.files.partial, ignore_errors=True)
        _unlock(self.files.lock, self._lock_fd)
        self._lock_fd = None

    def _replaces(self, path: Path) -> bool:
        return self.overwrite or self.files.relative(path) in self.ours

    def _write_record(
        self, status: str, outputs: dict[str, Any], info: dict[str, Any], previous: list[str]
    ) -> None:
        record = {
            "format": RECORD_FORMAT,
            "status": status,
            "input": self.input,
            "name": self.files.name,
            "outputs": outputs,
            "previous": previous,
            **info,
        }
        write_json(self.files.record, record, overwrite=True, tmp_dir=self.partial)


class OutputFolder:
    """The output folder of a run: checks it, names the photos, and claims their output sets."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def check(self, inputs: Sequence[Path]) -> None:
        """Refuse (UsageError) an output folder that cannot be written or that holds an input.

        Done before any network runs: a wrong -o costs seconds, not the whole run.
        """
        try:
            (self.root / "records").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the output folder {printable(self.root)} ({exc.strerror}); "
                "choose another -o"
            ) from None
        for folder in [self.root / sub for sub in OUTPUT_DIRS]:
            if folder.is_dir():
                _check_writable(folder)
        _refuse_inputs_inside(self.root, inputs)

    def names(self, inputs: Sequence[Path]) -> list[str]:
        """One output name per input; a name an earlier run gave another input is passed over."""
        return output_names(inputs, self._taken_by_other)

    def claim(self, input_path: Path, name: str, wanted: Sequence[Path], overwrite: bool) -> Claim:
        """Lock the photo's set and decide: skip it (done, busy, or a user's file in the way) or
        go ahead. `wanted`: the files this run will write whatever the face count."""
        files = PhotoFiles(self.root, name)
        source = _identity(input_path)
        fd = _lock(files.lock)
        if fd is None:
            return Claim(files, source, skip="another dynface run is restoring it now")
        shutil.rmtree(files.partial, ignore_errors=True)
        files.partial.mkdir()
        claim = Claim(files, source, overwrite=overwrite, _lock_fd=fd)
        ours, foreign, complete = _inspect(_read_record(files.record), files)
        claim.ours = ours
        wanted_rel = {files.relative(path) for path in wanted}
        foreign += [rel for rel in sorted(wanted_rel - ours) if os.path.lexists(self.root / rel)]
        if not overwrite and complete is not None and wanted_rel <= complete:
            claim.skip = f"already restored ({files.relative(files.record)}); --overwrite redoes it"
        elif not overwrite and foreign:
            in_the_way = printable(self.root / foreign[0])
            claim.skip = f"{in_the_way} exists; pass --overwrite to replace it"
        if claim.skip:
            claim.release()
        return claim

    def _taken_by_other(self, name: str, input_path: Path) -> bool:
        record = _read_record(PhotoFiles(self.root, name).record)
        return record is not None and record.get("input") not in (None, _identity(input_path))


def _identity(path: Path) -> str:
    """How records name an input: its absolute path."""
    return str(Path(os.path.abspath(path)))


def _inspect(
    record: dict[str, Any] | None, files: PhotoFiles
) -> tuple[set[str], list[str], set[str] | None]:
    """From a record: files of ours (replaceable), files changed since (the user's), and the set
    of files when the record is complete and every one of them is unchanged (else None)."""
    if record is None:
        return set(), [], None
    outputs = record.get("outputs") or {}
    if record.get("status") != "complete":
        return set(outputs) | set(record.get("previous") or []), [], None
    ours, changed, missing = set(), [], False
    for rel, stat in outputs.items():
        path = files.root / rel
        if not os.path.lexists(path):
            missing = True
        elif _stat(path) == stat:
            ours.add(rel)
        else:
            changed.append(rel)
    complete = None if missing or changed else set(outputs)
    return ours, changed, complete


def _stat(path: Path) -> list[int]:
    """What a record remembers of a file to tell later whether it changed: size, mtime (ns)."""
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns]


def _read_record(path: Path) -> dict[str, Any] | None:
    """The record at `path`, or None; an unreadable record counts as one of an unfinished set."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"status": "unreadable"}
    return record if isinstance(record, dict) else {"status": "unreadable"}


def _check_writable(folder: Path) -> None:
    """Raise UsageError unless a file can be created in `folder`."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot write to {printable(folder)} ({exc.strerror}); choose another -o or "
            "fix its permissions"
        ) from None


def _refuse_inputs_inside(root: Path, inputs: Sequence[Path]) -> None:
    """Raise UsageError when an input lies in a folder this run writes to."""
    folders = {os.path.realpath(root / sub) for sub in OUTPUT_DIRS}
    for path in inputs:
        if os.path.realpath(Path(path).parent) in folders or os.path.realpath(path) in folders:
            raise UsageError(
                f"input {printable(path)} is inside the output folder {printable(root)}, where "
                "this run writes its results; choose another -o (outputs never replace inputs)"
            )


def _lock(path: Path) -> int | None:
    """Hold an exclusive lock on `path` (created if needed); None when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
            raise
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # its last holder removed the file: lock the new one


def _unlock(path: Path, fd: int) -> None:
    """Remove the lock file while holding it, then let go (lockers re-check the inode)."""
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
