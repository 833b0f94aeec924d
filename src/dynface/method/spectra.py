"""Radially averaged power spectra of image batches, windowed so blur levels read out right.

Each channel has its mean removed and is multiplied by a 2-D Hann window; the power is divided by
the window's energy, so unit white noise has power 1 in every bin. Without the window the
wrap-around edge of the image leaks unblurred power into every frequency.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Highest radial frequency kept, in cycles per pixel (the Nyquist frequency of each axis).
F_MAX = 0.5


def bin_frequencies(bins: int, device: torch.device | None = None) -> Tensor:
    """Centre frequency (cycles/px) of each of `bins` equal radial bins over [0, 0.5], float64."""
    return (torch.arange(bins, dtype=torch.float64, device=device) + 0.5) * (F_MAX / bins)


def hann_window2d(height: int, width: int, device: torch.device | None = None) -> Tensor:
    """Separable 2-D Hann window (symmetric), float64, shape (height, width)."""
    wy = torch.hann_window(height, periodic=False, dtype=torch.float64, device=device)
    wx = torch.hann_window(width, periodic=False, dtype=torch.float64, device=device)
    return wy[:, None] * wx[None, :]


def _radial_bin_index(height: int, width: int, bins: int, device: torch.device) -> Tensor:
    """Bin of every rFFT coefficient (bins = outside the 0.5 cycles/px disc), shape (H, W//2+1)."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64, device=device)
    fx = torch.fft.rfftfreq(width, dtype=torch.float64, device=device)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    index = torch.floor(radius / F_MAX * bins).long()
    return index.clamp_max(bins)


def _rfft_multiplicity(height: int, width: int, device: torch.device) -> Tensor:
    """How many full-spectrum coefficients each rFFT column stands for (1 or 2), (W//2+1,)."""
    mult = torch.full((width // 2 + 1,), 2.0, dtype=torch.float64, device=device)
    mult[0] = 1.0
    if width % 2 == 0:
        mult[-1] = 1.0
    return mult


def power_spectrum2d(x: Tensor) -> Tensor:
    """Windowed power |FFT|^2 / sum(w^2) per channel, rFFT layout, float64, (B, C, H, W//2+1)."""
    if x.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if min(h, w) < 8:
        raise ValueError(f"image of {h}x{w} px is too small for a spectrum (need at least 8x8)")
    window = hann_window2d(h, w, x.device)
    centred = x.to(torch.float64) - x.to(torch.float64).mean(dim=(-2, -1), keepdim=True)
    spectrum = torch.fft.rfft2(centred * window)
    power: Tensor = spectrum.abs().square() / window.square().sum()
    return power


def radial_average(power2d: Tensor, width: int, bins: int) -> Tensor:
    """Average a (..., H, width//2+1) rFFT-layout power over `bins` radial bins -> (..., bins)."""
    h, wr = power2d.shape[-2:]
    if wr != width // 2 + 1:
        raise ValueError(f"{wr} rFFT columns do not belong to an image {width} px wide")
    device = power2d.device
    index = _radial_bin_index(h, width, bins, device).flatten()
    weight = _rfft_multiplicity(h, width, device).expand(h, -1).flatten()
    flat = power2d.reshape(-1, h * wr) * weight
    sums = torch.zeros(flat.shape[0], bins + 1, dtype=flat.dtype, device=device)
    sums.index_add_(1, index, flat)
    counts = torch.zeros(bins + 1, dtype=flat.dtype, device=device).index_add_(0, index, weight)
    if bool((counts[:bins] == 0).any()):
        raise ValueError(f"{bins} radial bins are too many for a {h}x{width} image")
    return (sums[:, :bins] / counts[:bins]).reshape(*power2d.shape[:-2], bins)


def radial_power_spectrum(x: Tensor, bins: int = 64) -> Tensor:
    """Radially averaged windowed power spectrum of each image, averaged over channels: (B, bins).

    Frequencies run up to 0.5 cycles/px (`bin_frequencies(bins)`); float64 on x's device.
    """
    return radial_average(power_spectrum2d(x), x.shape[-1], bins).mean(dim=1)
