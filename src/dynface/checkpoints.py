"""Safe checkpoint loading: safetensors or `torch.load(weights_only=True)`, never plain pickle.

Released files wrap their weights in various ways (`state_dict`, `params_ema`, `model`,
`module.` prefixes from DataParallel); these are unwrapped. Loading is strict, and a mismatch
names the file, the missing keys and the unexpected keys. Buffers that a module can recompute
(SwinIR's `attn_mask` and `relative_position_index`) may be absent from a file.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

WRAPPER_KEYS = ("params_ema", "state_dict", "model", "params", "ema")
RECOMPUTED_BUFFERS = ("attn_mask", "relative_position_index")


class CheckpointError(ValueError):
    """A weight file that cannot be used for the requested network; the message says why."""


def load_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from .safetensors or a .pth/.pt/.ckpt file, without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weight file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return unwrap_state_dict(load_file(str(path)))
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load, the file holds more than tensors and plain containers "
            f"({str(exc).splitlines()[0]}); convert it to .safetensors from a trusted source"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch weight file ({exc})") from None
    return unwrap_state_dict(raw)


def unwrap_state_dict(raw: object) -> dict[str, Tensor]:
    """Strip the usual wrappers (`params_ema`, `state_dict`, `model`, `module.`) of a checkpoint."""
    while isinstance(raw, Mapping) and not _is_flat_tensor_dict(raw):
        inner = next((raw[k] for k in WRAPPER_KEYS if isinstance(raw.get(k), Mapping)), None)
        if inner is None:
            raise CheckpointError(
                f"no state dict found: top-level keys are {sorted(map(str, raw))[:10]}"
            )
        raw = inner
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"expected a dict of tensors, got {type(raw).__name__}")
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
