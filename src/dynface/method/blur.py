"""Isotropic Gaussian blur k(s) * x with a per-sample std, and its exact Fourier transfer.

The blur is separable and batched: one grouped convolution per axis, reflect padding, no Python
loop over samples or pixels. `gaussian_transfer` is the DFT of the very same discrete kernel, so a
Fourier-domain solve built on it is consistent with `gaussian_blur` (up to the boundary handling).
Kernels and transfers are computed in float64 on the CPU (they are small) and only then cast and
moved to the images' device, so no float64 tensor is made on an accelerator (MPS has none).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: Below this std the kernel is a delta: k(s) is the identity.
MIN_SIGMA = 1e-3
#: Kernel half-width in standard deviations.
TRUNCATE = 4.0


CPU = torch.device("cpu")


def _as_sigma(sigma: float | Tensor, batch: int) -> Tensor:
    """Per-sample std as a float64 CPU tensor of shape (batch,)."""
    if isinstance(sigma, Tensor):
        sigma = sigma.detach().to(CPU)
    s = torch.as_tensor(sigma, dtype=torch.float64).flatten()
    if s.numel() == 1:
        s = s.expand(batch)
    if s.numel() != batch:
        raise ValueError(f"got {s.numel()} blur levels for a batch of {batch}")
    if bool((s < 0).any()):
        raise ValueError("a blur std cannot be negative")
    return s


def kernel_radius(sigma: float | Tensor) -> int:
    """Half-width that covers TRUNCATE std of the widest kernel (0 for a delta)."""
    s_max = float(torch.as_tensor(sigma).detach().max())
    return max(0, math.ceil(TRUNCATE * s_max)) if s_max > MIN_SIGMA else 0


def gaussian_kernel1d(sigma: float | Tensor, radius: int) -> Tensor:
    """Normalised 1-D Gaussian taps, shape (B, 2*radius+1), float64 on the CPU; a delta where
    s ~ 0."""
    s = _as_sigma(sigma, torch.as_tensor(sigma).numel())
    n = torch.arange(-radius, radius + 1, dtype=torch.float64)
    safe = s.clamp_min(MIN_SIGMA)[:, None]
    taps = torch.exp(-0.5 * (n[None, :] / safe) ** 2)
    # Each sample keeps its own support, so a kernel does not depend on the rest of the batch.
    taps = taps * (n[None, :].abs() <= torch.ceil(TRUNCATE * safe))
    taps = taps / taps.sum(dim=1, keepdim=True)
    delta = (n == 0).to(taps.dtype).expand_as(taps)
    return torch.where((s <= MIN_SIGMA)[:, None], delta, taps)


def gaussian_blur(x: Tensor, sigma: float | Tensor) -> Tensor:
    """Blur a (B, C, H, W) batch with std `sigma` px (scalar or one per sample), reflect padding."""
    if x.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    s = _as_sigma(sigma, b)
    radius = kernel_radius(s)
    if radius == 0:
        return x.clone()
    taps = gaussian_kernel1d(s, radius).to(x.device, x.dtype)
    taps = taps.repeat_interleave(c, dim=0)
    y = x.reshape(1, b * c, h, w)
    # Reflect padding needs pad < size: repeat it for kernels wider than the image.
    y = _reflect_pad(y, radius, dim=-1)
    y = F.conv2d(y, taps[:, None, None, :], groups=b * c)
    y = _reflect_pad(y, radius, dim=-2)
    y = F.conv2d(y, taps[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


def _reflect_pad(x: Tensor, pad: int, dim: int) -> Tensor:
    """Reflect-pad one spatial axis by `pad`, in several passes when `pad` exceeds the size."""
    while pad > 0:
        step = min(pad, x.shape[dim] - 1)
        if step <= 0:
            raise ValueError("cannot reflect-pad an axis of size 1")
        padding = (step, step, 0, 0) if dim == -1 else (0, 0, step, step)
        x = F.pad(x, padding, mode="reflect")
        pad -= step
    return x


def reflect_pad2d(x: Tensor, pad: int) -> Tensor:
    """Reflect-pad both spatial axes of an (N, C, H, W) tensor by `pad`, as `gaussian_blur` does."""
    return _reflect_pad(_reflect_pad(x, pad, dim=-1), pad, dim=-2)


def gaussian_transfer(
    sigma: float | Tensor,
    height: int,
    width: int,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """DFT of the discrete kernel k(s) on a (height, width) grid: real, (B, height, width//2+1).

    Laid out for `torch.fft.rfft2`. It is exactly the transfer of circular convolution with the
    taps used by `gaussian_blur`. Computed in float64 on the CPU, returned as `dtype` on `device`.
    """
    s = _as_sigma(sigma, torch.as_tensor(sigma).numel())
    radius = kernel_radius(s)
    taps = gaussian_kernel1d(s, radius)
    n = torch.arange(-radius, radius + 1, dtype=torch.float64)

    def axis(freqs: Tensor) -> Tensor:
        phase = torch.cos(2 * math.pi * n[:, None] * freqs[None, :])
        return taps @ phase

    fy = torch.fft.fftfreq(height, dtype=torch.float64)
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)
    transfer = axis(fy)[:, :, None] * axis(fx)[:, None, :]
    return transfer.to(device or CPU, dtype)


def continuous_transfer(sigma: float | Tensor, freq: Tensor) -> Tensor:
    """Continuous Gaussian transfer at radial frequency f (cycles/px): exp(-2 pi^2 s^2 f^2)."""
    s = torch.as_tensor(sigma, dtype=torch.float64, device=freq.device)
    return torch.exp(-2 * math.pi**2 * s[..., None] ** 2 * freq.to(torch.float64) ** 2)
