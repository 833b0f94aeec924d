"""Stand-in for `dynface.weights` until the shared registry is merged: same names, no downloads.

Looks for a registered file in `weights_dir`, then in `$DYNFACE_HOME/weights` (default
`~/.cache/dynface/weights`), checks a known sha256, and otherwise says where to put the file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


class WeightsUnavailable(RuntimeError):
    """A weight file that is not on disk; the message says where to put it."""


class WeightsCorrupted(RuntimeError):
    """A weight file whose sha256 differs from the expected one."""


@dataclass(frozen=True)
class WeightSpec:
    """One weight file: where it comes from, how to check it and which network it fits."""

    name: str
    filename: str
    url: str
    sha256: str | None
    size: int | None
    architecture: str
    description: str


REGISTRY: dict[str, WeightSpec] = {}


def register(spec: WeightSpec, replace: bool = False) -> WeightSpec:
    """Add a weight file to the registry."""
    if spec.name in REGISTRY and REGISTRY[spec.name] != spec and not replace:
        raise ValueError(f"a different weight file is already registered as {spec.name!r}")
    REGISTRY[spec.name] = spec
    return spec


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(
    name_or_path: str | os.PathLike[str],
    weights_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Path:
    """Path of an existing file, or of a registered name found on disk (never downloaded here)."""
    given = Path(name_or_path).expanduser()
    if given.is_file():
        return given
    spec = REGISTRY.get(str(name_or_path))
    if spec is None:
        raise WeightsUnavailable(f"{name_or_path!r} is neither a file nor a known weight name")
    home = Path(os.environ.get("DYNFACE_HOME") or Path.home() / ".cache" / "dynface")
    folders = ([Path(weights_dir).expanduser()] if weights_dir else []) + [home / "weights"]
    for folder in folders:
        path = folder / spec.filename
        if path.is_file():
            if spec.sha256 and sha256_file(path) != spec.sha256:
                raise WeightsCorrupted(f"{path}: sha256 differs from {spec.sha256}; fetch it again")
            return path
    where = " or ".join(str(f) for f in folders)
    raise WeightsUnavailable(
        f"{spec.name}: {spec.filename} not found; download {spec.url} into {where}"
    )
