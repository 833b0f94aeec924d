"""PSNR and SSIM on RGB or on BT.601 luma, batched in torch, equal to scikit-image's functions.

Settings (the ones scikit-image's reference calls use, see docs/evaluation.md):
`peak_signal_noise_ratio(gt, x, data_range=1)` on float images in [0, 1], and
`structural_similarity(gt, x, data_range=1, channel_axis=-1, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`: an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma),
K1 = 0.01, K2 = 0.03, the mean taken over the valid region (5 px borders dropped) and over channels.
The Y channel follows basicsr (MATLAB `rgb2ycbcr`): Y = 16 + 65.481 R + 128.553 G + 24.966 B on
RGB in [0, 1], i.e. Y in [16, 235] / 255, not rounded; PSNR/SSIM on Y use data_range 1 (the
same numbers as basicsr's 0-255 convention).
"""

from __future__ import annotations

import torch

_Y_WEIGHTS = (65.481, 128.553, 24.966)
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5


def rgb_to_y(images: torch.Tensor) -> torch.Tensor:
    """BT.601 studio-swing luma (MATLAB/basicsr convention) of Bx3xHxW RGB in [0, 1], as Bx1xHxW."""
    weights = images.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1)
    return (16.0 + (images * weights).sum(dim=1, keepdim=True)) / 255.0


def psnr(restored: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB of BxCxHxW batches (inf for identical images)."""
    _check_pair(restored, target)
    diff = restored.double() - target.double()
    mse = diff.square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def ssim(restored: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM of BxCxHxW batches: Gaussian window, population covariance, mean over C."""
    _check_pair(restored, target)
    x = restored.double()
    y = target.double()
    channels = x.shape[1]
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(x.shape[-2:]) < 2 * radius + 1:
        raise ValueError(f"SSIM needs images of at least {2 * radius + 1}x{2 * radius + 1} px")
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    kernel = kernel / kernel.sum()
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    blurred = _valid_filter(_valid_filter(stack, kernel, dim=3), kernel, dim=2)
    mu_x, mu_y, xx, yy, xy = blurred.split(channels, dim=1)
    var_x = xx - mu_x.square()
    var_y = yy - mu_y.square()
    cov = xy - mu_x * mu_y
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)
    return (num / den).flatten(1).mean(dim=1)


def _valid_filter(x: torch.Tensor, taps: torch.Tensor, dim: int) -> torch.Tensor:
    """1-D correlation along `dim` without padding (sliding windows times the taps)."""
    windows = x.unfold(dim, taps.numel(), 1)
    return windows @ taps


def _check_pair(restored: torch.Tensor, target: torch.Tensor) -> None:
    """Refuse batches that are not the same BxCxHxW shape."""
    if restored.ndim != 4 or restored.shape != target.shape:
        raise ValueError(
            f"expected two BxCxHxW batches of one shape, got {tuple(restored.shape)} and "
            f"{tuple(target.shape)}"
        )
