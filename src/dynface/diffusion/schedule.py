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


#: Respacing names: "ddimN" (fixed stride in t), "logsnrN" (uniform in log-SNR); else counts.
RESPACING_PREFIXES = ("ddim", "logsnr")


def respaced_timesteps(
    steps: int, respacing: str | int | None, schedule: str = "linear"
) -> list[int]:
    """Kept original timesteps, ascending: "ddimN" (fixed stride), "logsnrN" (uniform in the
    log-SNR of `schedule`), "N" or "N1,N2,..." sections."""
    if respacing in (None, "", steps, str(steps)):
        return list(range(steps))
    spec = str(respacing).strip()
    if spec.startswith("logsnr"):
        return log_snr_timesteps(steps, _count(spec, "logsnr"), schedule)
    if spec.startswith("ddim"):
        count = _count(spec, "ddim")
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


def _count(spec: str, prefix: str) -> int:
    """N of "prefixN" (a positive integer), else ValueError."""
    tail = spec[len(prefix) :]
    if not tail.isdigit() or int(tail) < 1:
        raise ValueError(f"bad respacing {spec!r}: use {prefix}N with N a positive step count")
    return int(tail)


def log_snr(schedule: str, steps: int) -> Tensor:
    """lambda_t = log(alpha_t / sigma_t) of every original timestep, float64 (decreasing)."""
    alphas_cumprod = torch.cumprod(1.0 - beta_schedule(schedule, steps), dim=0)
    return 0.5 * torch.log(alphas_cumprod / (1 - alphas_cumprod))


def log_snr_timesteps(steps: int, count: int, schedule: str = "linear") -> list[int]:
    """`count` timesteps from 0 to steps - 1 whose log-SNR is as near uniform as integer
    timesteps allow (DPM-Solver's "logSNR" spacing, Lu et al. 2022); distinct, ascending."""
    if not 2 <= count <= steps:
        raise ValueError(f"cannot take {count} log-SNR steps of {steps}: use 2 to {steps}")
    lam = log_snr(schedule, steps)
    grid = torch.linspace(float(lam[0]), float(lam[-1]), count, dtype=torch.float64)
    nearest = [int((lam - value).abs().argmin()) for value in grid]
    kept = [nearest[0]]
    for t in nearest[1:]:
        kept.append(max(t, kept[-1] + 1))  # near t = 0 several may round to one step
    if kept[-1] > steps - 1:
        raise ValueError(f"cannot take {count} distinct log-SNR steps of {steps}")
    return kept
