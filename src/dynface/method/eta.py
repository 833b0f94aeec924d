"""Dynamic DDIM eta: blurrier inputs get more stochastic sampling, eta = clip(s* / 10, 0, 1)."""

from __future__ import annotations

import torch
from torch import Tensor

from dynface.units import ETA_SCALE


def dynamic_eta(s_star: Tensor, override: float | None = None, scale: float = ETA_SCALE) -> Tensor:
    """Per-image eta (B,): clip(s* / scale, 0, 1), or `override` for every image when given."""
    if override is not None:
        if not 0 <= override <= 1:
            raise ValueError(f"eta must be in [0, 1], got {override}")
        return torch.full_like(s_star, float(override), dtype=torch.float32)
    return (s_star.float() / scale).clamp(0, 1)
