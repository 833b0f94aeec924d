"""Training checkpoints: weights as safetensors, optimizer state loaded without unpickling code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CKPT_PREFIX = "step_"


def save_weights(module: nn.Module, path: Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write a module's state dict as safetensors (atomic rename), with JSON metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_weights(module: nn.Module, path: str | Path) -> nn.Module:
    """Load a safetensors state dict strictly; a mismatch names the missing/unexpected keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    state = load_file(str(path))
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit {type(module).__name__}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return module


def save_checkpoint(
    folder: Path, step: int, model: nn.Module, ema: nn.Module | None, state: dict, keep: int
) -> Path:
    """Write checkpoints/step_N/{model,ema}.safetensors + state.pt; keep the newest `keep`."""
    target = folder / f"{CKPT_PREFIX}{step:08d}"
    tmp = folder / f".{CKPT_PREFIX}{step:08d}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    save_weights(model, tmp / "model.safetensors")
    if ema is not None:
        save_weights(ema, tmp / "ema.safetensors")
    torch.save({"step": step, **state}, tmp / "state.pt")
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    for old in sorted(folder.glob(f"{CKPT_PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    found = sorted(p for p in folder.glob(f"{CKPT_PREFIX}*") if (p / "state.pt").is_file())
    return found[-1] if found else None


def load_state(path: Path) -> dict:
    """The optimizer/scheduler/step state of a checkpoint (tensors and numbers only)."""
    return torch.load(path / "state.pt", map_location="cpu", weights_only=True)
