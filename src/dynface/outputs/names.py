"""Output names: one per input, unique in the run, safe for every file system and terminal."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

#: Longest output name in bytes (UTF-8); with "_00.png" and a temporary suffix a file name stays
#: under the 255 bytes that common file systems allow.
MAX_NAME_BYTES = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """`text` with control characters (ANSI escapes, newlines) shown as \\xNN, safe to print."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))


def safe_name(stem: str) -> str:
    """A file-name stem without control characters or path separators, at most MAX_NAME_BYTES.

    A long stem keeps its start and ends with a short hash of the whole, so names stay unique.
    """
    name = _CONTROL.sub("_", stem).replace("/", "_").replace("\\", "_") or "_"
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(stem.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    head = name.encode("utf-8")[: MAX_NAME_BYTES - len(digest) - 1].decode("utf-8", "ignore")
    return f"{head}~{digest}"


def name_candidates(path: Path) -> Iterator[str]:
    """Names for one input, best first: its stem, stem_suffix, then stem_suffix_2, _3..."""
    stem = safe_name(path.stem)
    yield stem
    base = safe_name(f"{path.stem}_{path.suffix.lstrip('.').lower()}")
    yield base
    counter = 2
    while True:
        yield f"{base}_{counter}"
        counter += 1


def output_names(
    paths: Sequence[Path], taken_by_other: Callable[[str, Path], bool] | None = None
) -> list[str]:
    """Distinct output names, in input order: the file stem, made unique when inputs share it.

    `taken_by_other(name, path)` says a name already belongs to another input (an earlier run's
    record); such names are passed over too, so a second photo called x.png gets its own name.
    """
    names: list[str] = []
    taken: set[str] = set()
    for path in paths:
        for name in name_candidates(Path(path)):
            if name not in taken and not (taken_by_other and taken_by_other(name, path)):
                break
        taken.add(name)
        names.append(name)
    return names
