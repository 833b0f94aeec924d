"""Beta schedules and timestep respacing, computed in float64 like the reference implementation."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dynface.units import BETA_END, BETA_START


def beta_schedule(name: str, steps: int) -> Tensor:
    """The named beta schedule ("linear" BETA_START..BETA_END of 1000 steps, rescaled to `steps`,
    or "cosine"), float64 on the CPU."""
    if name == "linear":
        scale = 1000 / steps
        return torch.linspace(scale * BETA_START, scale * BETA_END, steps, dtype=torch.float64)
    if name == "cosine":
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        alpha_bar = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown beta schedule {name!r} (use 'linear' or 'cosine')")


def respaced_timesteps(steps: int, respacing: str | int | None) -> list[int]:
    """Kept original timesteps, ascending: "ddimN" (fixed stride), "N" or "N1,N2,..." sections."""
    if respacing in (None, "", steps, str(steps)):
        return list(range(steps))
    spec = str(respacing).strip()
    if spec.startswith("ddim"):
        count = int(spec[len("ddim") :])
        for step in range(1, steps):
            if len(range(0, steps, step)) == count:
                return list(range(0, steps, step))
        raise ValueError(f"cannot take exactly {count} of {steps} steps with an integer stride")
    try:
        sections = [int(part) for part in spec.split(",")]
    except ValueError:
        raise ValueError(
            f"bad respacing {respacing!r}: use 'ddimN' or comma-separated counts such as '250'"
        ) from None
    size_per, extra = divmod(steps, len(sections))
    kept: list[int] = []
    start = 0
    for i, count in enumerate(sections):
        size = size_per + (1 if i < extra else 0)
        if not 0 < count <= size:
            raise ValueError(f"cannot take {count} steps from a section of {size}")
        stride = 1.0 if count <= 1 else (size - 1) / (count - 1)
        kept.extend(start + round(j * stride) for j in range(count))
        start += size
    return sorted(set(kept))
