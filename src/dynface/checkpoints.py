"""Safe checkpoint loading: safetensors or `torch.load(weights_only=True)`, never plain pickle.

Released files wrap their weights in various ways (`state_dict`, `params_ema`, `model`,
`module.` prefixes from DataParallel); these are unwrapped. Loading is strict, and a mismatch
names the file, the missing keys and the unexpected keys. Buffers that a module can recompute
(SwinIR's `attn_mask` and `relative_position_index`) may be absent from a file. A file that
cannot be read is described in plain words (a web page, text, damaged, code in a pickle) with how
to replace it; torch's own advice to unpickle it is never passed on.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from dynface import weights
from dynface.errors import ResourceError

WRAPPER_KEYS = ("params_ema", "state_dict", "model", "params", "ema")
RECOMPUTED_BUFFERS = ("attn_mask", "relative_position_index")
REPLACE = "replace it with a weight file made for this network (.safetensors or a .pth of tensors)"


class CheckpointError(ResourceError):
    """A weight file that cannot be used for the requested network; the message says why."""


def load_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from .safetensors or a .pth/.pt/.ckpt file, without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weight file")
    kind = weights.file_kind(path)
    what = weights.describe_kind(kind)
    if what is not None:
        raise CheckpointError(f"{path} cannot be loaded: {what}; {REPLACE}")
    if kind == "safetensors":
        from safetensors.torch import load_file

        try:
            return unwrap_state_dict(load_file(str(path)))
        except Exception:
            raise CheckpointError(f"{path} is a damaged safetensors file; {REPLACE}") from None
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} was refused: it holds Python objects besides tensors, which could run code "
            f"when loaded; {REPLACE}, from a source you trust"
        ) from None
    except (RuntimeError, EOFError, OSError):
        raise CheckpointError(f"{path} is a damaged or truncated PyTorch file; {REPLACE}") from None
    return unwrap_state_dict(raw)


def load_weights(
    module: nn.Module,
    name_or_path: str | os.PathLike[str],
    weights_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> nn.Module:
    """Find (or download) a registry file or a path, load it strictly, trust it on first use."""
    path = weights.resolve(name_or_path, weights_dir=weights_dir, download=download)
    return load_resolved(module, str(name_or_path), path)


def load_resolved(module: nn.Module, name: str, path: str | Path) -> nn.Module:
    """Load the file `weights.resolve(name)` returned strictly, then record its first-use sha256.

    The record is written only after the strict load, so a web page or a wrong file is never
    trusted; a file that does not load says how to replace that registry entry.
    """
    try:
        load_into(module, path)
    except CheckpointError as exc:
        spec = weights.find_spec(name)
        if spec is None:
            raise
        raise CheckpointError(f"{exc}; {weights.replace_hint(spec, Path(path))}") from None
    weights.record_loaded(name, path)
    return module


def unwrap_state_dict(raw: object) -> dict[str, Tensor]:
    """Strip the usual wrappers (`params_ema`, `state_dict`, `model`, `module.`) of a checkpoint."""
    while isinstance(raw, Mapping) and not _is_flat_tensor_dict(raw):
        inner = next((raw[k] for k in WRAPPER_KEYS if isinstance(raw.get(k), Mapping)), None)
        if inner is None:
            raise CheckpointError(
                f"no state dict found: top-level keys are {sorted(map(str, raw))[:10]}; {REPLACE}"
            )
        raw = inner
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"expected a dict of tensors, got {type(raw).__name__}; {REPLACE}")
    state = {str(k): v for k, v in raw.items() if isinstance(v, Tensor)}
    while state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _is_flat_tensor_dict(raw: Mapping) -> bool:
    return bool(raw) and all(isinstance(v, Tensor) for v in raw.values())


def load_into(module: nn.Module, source: str | Path | Mapping[str, Tensor]) -> nn.Module:
    """Load weights strictly into `module`; recomputable buffers may be missing from the file."""
    name = str(source) if isinstance(source, str | Path) else "the given state dict"
    state = load_state_dict(source) if isinstance(source, str | Path) else unwrap_state_dict(source)
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(RECOMPUTED_BUFFERS)]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong_shape:
        raise CheckpointError(
            _mismatch_message(name, type(module).__name__, missing, unexpected, wrong_shape)
        )
    kept = {k: v for k, v in state.items() if not k.endswith(RECOMPUTED_BUFFERS)}
    module.load_state_dict(kept, strict=False)
    return module


def _mismatch_message(
    name: str, arch: str, missing: list[str], unexpected: list[str], wrong_shape: list[str]
) -> str:
    def show(items: list[str]) -> str:
        head = ", ".join(items[:8])
        return head + (f", ... ({len(items)} in all)" if len(items) > 8 else "")

    parts = [f"{name} does not fit the {arch} network (is it the right file for this model?)"]
    if missing:
        parts.append(f"missing keys: {show(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {show(unexpected)}")
    if wrong_shape:
        parts.append(f"shape mismatches: {show(wrong_shape)}")
    return "; ".join(parts)
