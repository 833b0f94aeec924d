"""Where exported graphs live, and the key that says when one is stale.

A graph is keyed by everything that could change its output: the architecture (the module's
repr), every weight (name, dtype, shape and bytes), the non-batch input shapes and dtypes, and the
versions of torch, onnx and dynface. A runtime's compiled artifacts (OpenVINO's blob cache) go in a
sub-folder named after the runtime, its version and the precision.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from dynface.weights import home_dir

#: Bump when the export recipe changes so old graphs are not reused.
EXPORT_RECIPE = 1


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
    """sha256 over the state dict (names, dtypes, shapes, bytes): changes when any weight does."""
    digest = hashlib.sha256()
    for name, value in net.state_dict().items():
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}\n".encode())
        flat = value.detach().to("cpu").contiguous().reshape(-1)
        if flat.numel():
            digest.update(flat.view(torch.uint8).numpy())  # the buffer itself, no copy
    return digest.hexdigest()


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
