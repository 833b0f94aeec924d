"""Where exported graphs live, and the key that says when one is stale.

A graph is keyed by everything that could change its output: the architecture (the module's
repr), every weight (name, dtype, shape and bytes), the non-batch input shapes and dtypes, and the
versions of torch, onnx and dynface. A runtime's compiled artifacts (OpenVINO's blob cache) go in a
sub-folder named after the runtime, its version and the precision.

What is written there is verified like the weights: `seal` records the sha256 of the files
when they are written and `seal_problem` checks them before they are loaded, so a tampered,
truncated or unreadable file is rebuilt (with a warning), never run. The prior's weights and
graph are 640 MB each and are hashed at every start, so both digests are computed on all of
torch's threads (per tensor; per 64 MiB chunk of a file, then a sha256 of the chunks' digests).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor, nn

from dynface.weights import home_dir

#: Bump when the export recipe changes so old graphs are not reused.
EXPORT_RECIPE = 2
#: Files are hashed in chunks of this size, a few at a time, in parallel.
CHUNK = 64 << 20


def compiled_home() -> Path:
    """The folder of all exported graphs: `<dynface home>/compiled`."""
    return home_dir() / "compiled"


def library_version(name: str) -> str:
    """Installed version of a distribution, or "absent"."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def weights_digest(net: nn.Module) -> str:
    """sha256 over each tensor's (name, dtype, shape, bytes) sha256: changes with any weight."""
    with ThreadPoolExecutor(_workers()) as pool:
        parts = pool.map(_tensor_digest, net.state_dict().items())
        return hashlib.sha256(b"".join(parts)).hexdigest()


def _tensor_digest(item: tuple[str, Tensor]) -> bytes:
    """sha256 of one state-dict entry (hashlib lets other threads run while it hashes)."""
    name, value = item
    digest = hashlib.sha256(f"{name}|{value.dtype}|{tuple(value.shape)}\n".encode())
    flat = value.detach().to("cpu").contiguous().reshape(-1)
    if flat.numel():
        digest.update(flat.view(torch.uint8).numpy())  # the buffer itself, no copy
    return digest.digest()


def _workers() -> int:
    """Threads for hashing: torch's (the cores a run may use)."""
    return max(1, torch.get_num_threads())


def architecture(net: nn.Module) -> str:
    """The layers (repr) and every plain setting of every submodule (heads, window, ...)."""
    settings = []
    for name, module in net.named_modules():
        plain = {
            key: value
            for key, value in sorted(vars(module).items())
            if not key.startswith("_") and isinstance(value, int | float | str | tuple | list)
        }
        settings.append(f"{name}:{plain}")
    return repr(net) + "\n" + "\n".join(settings)


def graph_key(net: nn.Module, example_inputs: Sequence[Tensor]) -> str:
    """Key of the exported graph of `net` for inputs shaped like `example_inputs` (any batch)."""
    parts = [
        f"recipe={EXPORT_RECIPE}",
        f"arch={architecture(net)}",
        f"weights={weights_digest(net)}",
        *(f"input={tuple(x.shape[1:])}" for x in example_inputs),
        *(f"{lib}={library_version(lib)}" for lib in ("torch", "onnx", "dynface")),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def graph_dir(net: nn.Module, example_inputs: Sequence[Tensor]) -> Path:
    """The cache folder of this net's graph: `<compiled home>/<Class>-<key>`."""
    return compiled_home() / f"{type(net).__name__}-{graph_key(net, example_inputs)}"


def file_digest(path: Path) -> str:
    """sha256 over the sha256 of each CHUNK of a file, hashed a few chunks at a time in
    parallel (raises OSError when it cannot be read)."""
    total = hashlib.sha256()
    workers = _workers()
    with path.open("rb") as handle, ThreadPoolExecutor(workers) as pool:
        while wave := [chunk for chunk in (handle.read(CHUNK) for _ in range(workers)) if chunk]:
            for part in pool.map(lambda chunk: hashlib.sha256(chunk).digest(), wave):
                total.update(part)
    return total.hexdigest()


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file renamed into place."""
    fd, tmp = tempfile.mkstemp(suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def seal(files: Sequence[Path], record: Path) -> None:
    """Record the sha256 of each of `files` (by name) in `record`, a JSON file."""
    digests = {path.name: file_digest(path) for path in sorted(files)}
    write_atomic(record, json.dumps(digests, indent=1) + "\n")


def seal_problem(files: Sequence[Path], record: Path) -> str | None:
    """Why `files` cannot be trusted (no record, another set of files, unreadable, a digest
    mismatch), or None when each matches the digest `seal` recorded."""
    try:
        recorded = json.loads(record.read_text())
    except (OSError, ValueError):
        return "no digest was recorded for it"
    names = {path.name for path in files}
    if not isinstance(recorded, dict) or set(recorded) != names:
        return "its files are not the ones recorded"
    for path in sorted(files):
        try:
            digest = file_digest(path)
        except OSError as exc:
            return f"{path.name} cannot be read ({exc.strerror or exc})"
        if digest != recorded[path.name]:
            return f"{path.name} does not match the digest recorded when it was written"
    return None
