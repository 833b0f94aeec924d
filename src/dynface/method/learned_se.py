"""The shipped learned blur-level estimator: s* = SDE(TM(y)) (or SDE(y) when no TM is shipped).

Weights live in `dynface/assets/learned_se.safetensors` (keys `sde.*` and optionally `tm.*`; the
metadata holds each net's constructor arguments). See docs/training.md for data, recipe and
validation figures.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor, nn

from dynface.nets.estimator import SDE, SE, TM

ASSET = "learned_se.safetensors"


def shipped_weights() -> Path:
    """Path of the estimator weights shipped with the package."""
    return Path(str(resources.files("dynface") / "assets" / ASSET))


def load_estimator(path: str | Path | None = None) -> nn.Module:
    """Build SE (or the SDE alone) from a weights file; the shipped one by default."""
    path = Path(path) if path is not None else shipped_weights()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no learned blur-level estimator weights there")
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
        state = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    sde = SDE(**json.loads(meta.get("sde", "{}")))
    sde.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("sde.")})
    if not any(k.startswith("tm.") for k in state):
        return sde.eval()
    tm = TM(**json.loads(meta.get("tm", "{}")))
    tm.load_state_dict({k[3:]: v for k, v in state.items() if k.startswith("tm.")})
    return SE(tm, sde).eval()


@lru_cache(maxsize=4)
def _cached(path: str | None) -> nn.Module:
    return load_estimator(path)


@torch.no_grad()
def learned_blur_level(y: Tensor, weights: str | Path | None = None) -> Tensor:
    """Equivalent blur level s* (px at 512), (B,), of degraded faces y (B, 3, H, W) in [0, 1]."""
    if y.ndim != 4 or y.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) RGB faces in [0, 1], got {tuple(y.shape)}")
    model = _cached(str(weights) if weights is not None else None)
    param = next(model.parameters())
    if param.device != y.device:
        model.to(y.device)
    s_star: Tensor = model(y.to(param.dtype)).float()
    return s_star


def save_estimator(
    sde: SDE, path: str | Path, tm: TM | None = None, dtype: torch.dtype = torch.float16
) -> Path:
    """Write SDE (and TM) weights, cast to `dtype`, with their constructor arguments (metadata)."""
    from safetensors.torch import save_file

    def tensors(prefix: str, module: nn.Module) -> dict[str, Tensor]:
        return {
            f"{prefix}.{k}": v.detach().cpu().to(dtype).contiguous()
            for k, v in module.state_dict().items()
        }

    state = tensors("sde", sde)
    meta = {"sde": json.dumps({"work_size": sde.work_size, "channels": sde.channels})}
    if tm is not None:
        state.update(tensors("tm", tm))
        meta["tm"] = json.dumps({"work_size": tm.work_size, "channels": tm.channels})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=meta)
    return path
