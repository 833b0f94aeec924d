"""DBLM: map a degraded face onto an equivalent Gaussian blur level s* and its guidance images.

`zero_shot_blur_level` (ours) needs no weights: it fits a blur level `s` and a noise floor `N` so
that the windowed radial power spectrum of `y` matches `|K_s(f)|^2 P_r(f) + N` over the lower half
of the frequencies, where `r = RM(y)` is the restoration module's sharp estimate. A learned
estimator SE = SDE(TM(y)) plugs into the same `BlurLevelEstimator` interface.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from dynface.method.blur import continuous_transfer, gaussian_blur
from dynface.method.spectra import bin_frequencies, power_spectrum2d, radial_average
from dynface.units import S_MAX, S_MIN

#: Power per bin of 8-bit quantisation noise in [0, 1] (variance 1 / (12 * 255^2)), added to the
#: spectrum of y (ours): detail below it is not information, and the flat floor hides the window's
#: leakage, which would otherwise bias s* low on noise-free synthetic inputs.
QUANTISATION_POWER = 1.0 / (12 * 255**2)


def _check_pair(y: Tensor, r: Tensor) -> None:
    """Both (B, C, H, W) with the same shape."""
    if y.ndim != 4 or y.shape != r.shape:
        raise ValueError(
            f"y and r must be (B, C, H, W) batches of one shape, got {tuple(y.shape)} and "
            f"{tuple(r.shape)}; resize r to y's size first"
        )


def _fit_loss(py: Tensor, pr: Tensor, freqs: Tensor, s: Tensor) -> Tensor:
    """Log-spectrum misfit of |K_s|^2 P_r + N to P_y for each candidate s (B, S) -> (B, S).

    N >= 0 is the closed-form least-squares floor for each s, weighted by 1/P_y^2 so that it
    minimises the relative (log) error to first order.
    """
    k2 = continuous_transfer(s, freqs).square()  # (B, S, F)
    model = k2 * pr[:, None, :]
    weight = py.reciprocal().square()[:, None, :]
    floor = ((py[:, None, :] - model) * weight).sum(-1) / weight.sum(-1)
    floor = floor.clamp_min(0)[..., None]
    misfit = torch.log(py)[:, None, :] - torch.log(model + floor)
    return misfit.square().mean(-1)


def zero_shot_blur_level(
    y: Tensor,
    r: Tensor,
    step: float = 0.1,
    s_max: float = S_MAX,
    f_max: float = 0.25,
) -> Tensor:
    """Equivalent blur level s* per image (B,), float32 in [0, s_max], from y and r = RM(y).

    A grid search over s in [0, s_max] at `step` px, then a search at step/10 around the best.
    y and r are (B, C, H, W) in [0, 1] of the same size (ideally 512, where s is defined).
    """
    _check_pair(y, r)
    h, w = y.shape[-2:]
    bins = min(h, w) // 2
    tiny = torch.finfo(torch.float64).tiny
    py = radial_average(power_spectrum2d(y), w, bins).mean(1) + QUANTISATION_POWER
    pr = radial_average(power_spectrum2d(r), w, bins).mean(1).clamp_min(tiny)
    freqs = bin_frequencies(bins, y.device)
    # The lowest bin holds the removed mean and the window's main lobe: not informative.
    keep = (freqs <= f_max) & (torch.arange(bins, device=y.device) > 0)
    py, pr, freqs = py[:, keep], pr[:, keep], freqs[keep]
    batch = y.shape[0]
    coarse = torch.arange(0.0, s_max + step / 2, step, dtype=torch.float64, device=y.device)
    coarse = coarse.expand(batch, -1)
    best = coarse.gather(1, _fit_loss(py, pr, freqs, coarse).argmin(1, keepdim=True))
    offsets = torch.linspace(-step, step, 21, dtype=torch.float64, device=y.device)
    fine = (best + offsets).clamp(0, s_max)
    s_star = fine.gather(1, _fit_loss(py, pr, freqs, fine).argmin(1, keepdim=True))[:, 0]
    return s_star.clamp(0, s_max).to(torch.float32)


def guidance_levels(s_star: Tensor, n: int = 3, s_min: float = S_MIN) -> Tensor:
    """Guidance blur levels s_j = s* - j for j = 0..n-1, clipped below at s_min: (B, n)."""
    j = torch.arange(n, dtype=s_star.dtype, device=s_star.device)
    return (s_star[:, None] - j).clamp_min(s_min)


def guidance_images(r: Tensor, s_levels: Tensor) -> Tensor:
    """Guidance images g_j = k(s_j) * r: (B, J, C, H, W), in r's range ([0,1] or [-1,1])."""
    b, c, h, w = r.shape
    if s_levels.ndim != 2 or s_levels.shape[0] != b:
        raise ValueError(f"s_levels must be (B, J) with B={b}, got {tuple(s_levels.shape)}")
    j = s_levels.shape[1]
    stacked = r[:, None].expand(b, j, c, h, w).reshape(b * j, c, h, w)
    return gaussian_blur(stacked, s_levels.reshape(-1)).reshape(b, j, c, h, w)


@runtime_checkable
class BlurLevelEstimator(Protocol):
    """Anything that maps (y, r) batches in [0, 1] to one blur level s* per image, (B,)."""

    def __call__(self, y: Tensor, r: Tensor) -> Tensor: ...


class ZeroShotEstimator:
    """The spectral fit of `zero_shot_blur_level` (ours); needs no weights. It runs in float64,
    so it always runs on the CPU (the images are copied there) and answers there."""

    def __init__(self, step: float = 0.1, s_max: float = S_MAX, f_max: float = 0.25) -> None:
        self.step, self.s_max, self.f_max = step, s_max, f_max

    def __call__(self, y: Tensor, r: Tensor) -> Tensor:
        """s* per image, (B,), on the CPU."""
        y, r = y.detach().float().cpu(), r.detach().float().cpu()
        return zero_shot_blur_level(y, r, step=self.step, s_max=self.s_max, f_max=self.f_max)


class LearnedEstimator:
    """SE(y) = SDE(TM(y)) from trained modules (`dynface.nets.estimator`); r is not used.

    `sde` regresses s from a Gaussian-blurred face; `tm` (optional) maps a degraded face to its
    own blurred version first. Both take (B, 3, H, W) in [0, 1]; the output is clipped to [0, 16].
    The modules stay float32; `to(device)` moves them.
    """

    def __init__(self, sde: nn.Module, tm: nn.Module | None = None, s_max: float = S_MAX) -> None:
        self.sde, self.tm, self.s_max = sde, tm, s_max

    def modules(self) -> dict[str, nn.Module]:
        """The networks this estimator holds, by name."""
        return {"sde": self.sde} | ({"tm": self.tm} if self.tm is not None else {})

    def to(self, device: torch.device) -> LearnedEstimator:
        """Move the networks to `device` (in place); returns self."""
        for module in self.modules().values():
            module.to(device)
        return self

    @torch.no_grad()
    def __call__(self, y: Tensor, r: Tensor | None = None) -> Tensor:
        """s* per image, (B,)."""
        y = y.float()
        z = self.tm(y) if self.tm is not None else y
        s: Tensor = self.sde(z).reshape(y.shape[0], -1)
        if s.shape[1] != 1:
            raise ValueError(f"the SDE must output one value per image, got shape {tuple(s.shape)}")
        return s[:, 0].float().clamp(0, self.s_max)


def make_estimator(config: str | dict[str, Any] | None = None) -> BlurLevelEstimator:
    """Estimator from a name or a config dict: "zero-shot" (default) or "learned".

    Config keys: `name`; for zero-shot `step`, `s_max`, `f_max`; for learned the modules `sde`
    and optionally `tm` (already built and loaded).
    """
    cfg = {"name": config} if isinstance(config, str) or config is None else dict(config)
    name = (cfg.pop("name", None) or "zero-shot").replace("_", "-").lower()
    if name in ("zero-shot", "zeroshot"):
        return ZeroShotEstimator(**cfg)
    if name == "learned":
        if "sde" not in cfg:
            raise ValueError("the learned estimator needs its SDE module: config['sde']")
        return LearnedEstimator(**cfg)
    raise ValueError(f"unknown blur-level estimator {name!r}; use 'zero-shot' or 'learned'")
