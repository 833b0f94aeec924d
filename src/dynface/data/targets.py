"""The training target of the blur-level estimator: the equivalent blur level s* (ours).

See docs/training.md#the-training-target-s-ours.

s* of a pair (clean x, degraded y) is the smallest s on a 0.25 px grid in [0, 16] with
PSNR(k(s) * x, k(s) * y) >= 30 dB, 16 if none: the Gaussian blur that removes everything y does
not know. Blur is linear, so k(s) * x - k(s) * y = k(s) * (x - y) and only the difference is
blurred. `method="sweep"` walks the grid in ascending chunks (the batch repeated over the chunk's
levels, one batched `gaussian_blur`) and stops once every image has found its level; the default
`method="bisect"` (ours) bisects the grid per image in about 7 blurs, which gives the same answer
because the blurred error energy falls monotonically as s grows (tested against the sweep).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynface.method.blur import gaussian_blur
from dynface.units import S_MAX

S_STEP = 0.25
PSNR_DB = 30.0
#: Upper bound on the float elements of one blurred chunk (about 128 MB of float32).
CHUNK_ELEMENTS = 2**25


def equivalent_blur_level(
    x: Tensor,
    y: Tensor,
    threshold_db: float = PSNR_DB,
    step: float = S_STEP,
    s_max: float = S_MAX,
    pixel_scale: float = 1.0,
    method: str = "bisect",
) -> Tensor:
    """s* (px at 512) for each pair of (B, C, H, W) batches in [0, 1]; returns a (B,) tensor.

    `pixel_scale` (ours) evaluates the target on images smaller than 512 px: the grid stays in
    512-px units and each level blurs with std s * pixel_scale. That is an approximation of s*,
    used only to make training affordable; validation figures use full 512 px images.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(
            f"x and y must be (B, C, H, W) batches of one shape, got {x.shape}, {y.shape}"
        )
    d = (x.float() - y.float()).contiguous()
    grid = torch.arange(0.0, s_max + step / 2, step, dtype=torch.float64)
    mse_max = 10.0 ** (-threshold_db / 10.0)  # peak 1: PSNR >= T <=> MSE <= 10^(-T/10)
    if method == "bisect":
        return _bisect(d, grid.to(d.device), mse_max, pixel_scale)
    if method != "sweep":
        raise ValueError(f"method must be 'bisect' or 'sweep', not {method!r}")
    b, c, h, w = d.shape
    result = torch.full((b,), s_max, dtype=torch.float64, device=d.device)
    pending = torch.ones(b, dtype=torch.bool, device=d.device)
    per_level = max(1, CHUNK_ELEMENTS // (b * c * h * w))
    for start in range(0, len(grid), per_level):
        levels = grid[start : start + per_level].to(d.device)
        n = len(levels)
        sigma = (levels * pixel_scale).repeat_interleave(b)
        blurred = gaussian_blur(d.repeat(n, 1, 1, 1), sigma)
        mse = blurred.pow(2).mean(dim=(1, 2, 3)).reshape(n, b).to(torch.float64)
        ok = mse <= mse_max
        first = torch.where(ok.any(dim=0), ok.to(torch.int8).argmax(dim=0), -1)
        newly = pending & (first >= 0)
        result = torch.where(newly, levels[first.clamp_min(0)], result)
        pending &= ~newly
        if not bool(pending.any()):
            break
    return result.to(torch.float32)


def _bisect(d: Tensor, grid: Tensor, mse_max: float, pixel_scale: float) -> Tensor:
    """Smallest grid index with MSE(k(s) * d) <= mse_max per image, by bisection (else the last)."""
    b = d.shape[0]
    lo = torch.full((b,), -1, dtype=torch.long, device=d.device)  # MSE above the bound (or -1)
    hi = torch.full((b,), len(grid) - 1, dtype=torch.long, device=d.device)  # below (or last)
    while True:
        active = (hi - lo > 1).nonzero().flatten()
        if active.numel() == 0:
            return grid[hi].to(torch.float32)
        mid = (lo[active] + hi[active]) // 2
        blurred = gaussian_blur(d[active], grid[mid] * pixel_scale)
        ok = blurred.pow(2).mean(dim=(1, 2, 3)) <= mse_max
        hi[active] = torch.where(ok, mid, hi[active])
        lo[active] = torch.where(ok, lo[active], mid)
