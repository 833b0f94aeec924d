"""The run manifest: `manifest.jsonl` in the output folder, one JSON line per photo and run.

Every process and job of a run appends its photos' lines as they finish (under a lock, so
lines never interleave), so the manifest survives a crash and tells what each attempt did:
input, output name, status, message, faces, outputs (relative paths), seconds, share, host,
process id and time. Read it with `read_manifest`, or line by line with any JSON reader.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: appends of short lines are not guarded there
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.jsonl"


def append_line(root: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line to the manifest of the output folder `root`."""
    stamped = {
        **entry,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    data = (json.dumps(stamped, default=str, ensure_ascii=True) + "\n").encode("utf-8")
    fd = os.open(root / MANIFEST, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def read_manifest(root: str | Path) -> list[dict[str, Any]]:
    """Every line of the manifest in `root`, oldest first (a torn last line is left out)."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries
