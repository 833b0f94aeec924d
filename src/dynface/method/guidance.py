"""Guidance of the predicted clean image x0 towards the blurred guidance images g_j = k(s_j) * r.

Closed form (default): `x0' = argmin_x sum_j w_j ||g_j - k(s_j) * x||^2 + mu ||x - x0||^2`,
solved per channel in the Fourier domain on a reflect-padded grid:
`X' = (sum_j w_j conj(K_j) G_j + mu X0) / (sum_j w_j |K_j|^2 + mu)`.
Gradient variant: `x0' = x0 - lam * sum_j w_j 2 k_j * (k_j * x0 - g_j)`. Then
`x0 <- x0 + A (x0' - x0)` with the DGSA map A. Images are in [-1, 1] inside the sampler.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynface.method.blur import gaussian_blur, gaussian_transfer, kernel_radius, reflect_pad2d
from dynface.units import LAM, MU, S_MAX


def _check(x0: Tensor, g: Tensor, s: Tensor, active: Tensor) -> None:
    """x0 (B,C,H,W), g (B,J,C,H,W), s and active (B,J)."""
    b, c, h, w = x0.shape
    if g.ndim != 5 or g.shape[0] != b or g.shape[2:] != (c, h, w):
        raise ValueError(f"g must be (B, J, C, H, W) matching x0 {tuple(x0.shape)}, got {g.shape}")
    j = g.shape[1]
    if s.shape != (b, j) or active.shape != (b, j):
        raise ValueError(f"s and active must be (B, J) = ({b}, {j}), got {s.shape}, {active.shape}")


def target_weights(active: Tensor) -> Tensor:
    """w_j equal over the active targets and summing to 1 per image (ours); zeros when none.

    float32 on active's device (k / n is exact enough for n <= 8 targets)."""
    a = active.to(torch.float32)
    return a / a.sum(dim=1, keepdim=True).clamp_min(1.0)


def padded_transfer(s: Tensor, height: int, width: int, pad: int, like: Tensor) -> Tensor:
    """|K(s_j)| on the reflect-padded grid of `closed_form_guidance`: (B, J, 1, H', W'//2+1),
    float32 (float64 for float64 images) on like's device; s (B, J) stays fixed, so a sampler
    can compute it once."""
    b, j = s.shape
    hp, wp = height + 2 * pad, width + 2 * pad
    dtype = like.dtype if like.dtype == torch.float64 else torch.float32
    k = gaussian_transfer(s.reshape(-1), hp, wp, device=like.device, dtype=dtype)
    return k.reshape(b, j, 1, hp, wp // 2 + 1)


def active_targets(t: Tensor | int, t_levels: Tensor) -> Tensor:
    """Target j is active once the current step t (1000 scale) is at or below t(s_j): (B, J)."""
    t_b = torch.as_tensor(t, device=t_levels.device).reshape(-1, 1)
    return t_b <= t_levels


def closed_form_guidance(
    x0: Tensor,
    g: Tensor,
    s: Tensor,
    active: Tensor,
    mu: float = MU,
    pad: int | None = None,
    transfer: Tensor | None = None,
) -> Tensor:
    """Closed-form data-consistent x0' over all active targets (see module doc): (B, C, H, W).

    x0 (B,C,H,W), g (B,J,C,H,W) in the same range, s (B,J) blur std in px, active (B,J) bool.
    An image with no active target comes back unchanged. The reflect padding is `pad` px, by
    default the radius of the widest kernel allowed (s = 16), so that a result does not depend on
    the other images of the batch. `transfer` is `padded_transfer(s, H, W, pad, x0)`, when the
    caller has it already.
    """
    _check(x0, g, s, active)
    b, c, h, w = x0.shape
    j = g.shape[1]
    dtype = x0.dtype if x0.dtype == torch.float64 else torch.float32
    if pad is None:
        pad = kernel_radius(S_MAX)
    if pad < kernel_radius(s.detach()):
        raise ValueError(f"pad {pad} px is narrower than the widest kernel; use s <= {S_MAX}")
    hp, wp = h + 2 * pad, w + 2 * pad
    x0p = reflect_pad2d(x0.to(dtype), pad)
    gp = reflect_pad2d(g.reshape(b * j, c, h, w).to(dtype), pad).reshape(b, j, c, hp, wp)
    k = transfer if transfer is not None else padded_transfer(s, h, w, pad, x0)
    wj = target_weights(active).to(x0.device, dtype)[:, :, None, None, None]
    num = (wj * k * torch.fft.rfft2(gp)).sum(1) + mu * torch.fft.rfft2(x0p)
    den = (wj * k.square()).sum(1) + mu
    out: Tensor = torch.fft.irfft2(num / den, s=(hp, wp))
    return out[..., pad : pad + h, pad : pad + w].to(x0.dtype)


def gradient_guidance(x0: Tensor, g: Tensor, s: Tensor, active: Tensor, lam: float = LAM) -> Tensor:
    """One analytic-gradient step on sum_j w_j ||k_j * x - g_j||^2 from x0: (B, C, H, W)."""
    _check(x0, g, s, active)
    b, c, h, w = x0.shape
    j = g.shape[1]
    flat_s = s.reshape(-1)
    stacked = x0[:, None].expand(b, j, c, h, w).reshape(b * j, c, h, w)
    residual = gaussian_blur(stacked, flat_s) - g.reshape(b * j, c, h, w)
    grad = 2 * gaussian_blur(residual, flat_s).reshape(b, j, c, h, w)
    wj = target_weights(active).to(x0.device, x0.dtype)[:, :, None, None, None]
    return x0 - lam * (wj * grad).sum(1)


def data_term(x: Tensor, g: Tensor, s: Tensor, active: Tensor) -> Tensor:
    """sum_j w_j mean ||k(s_j) * x - g_j||^2 per image: (B,), float64 on the CPU."""
    b, j = s.shape
    c, h, w = x.shape[1:]
    stacked = x[:, None].expand(b, j, c, h, w).reshape(b * j, c, h, w)
    err = (gaussian_blur(stacked, s.reshape(-1)) - g.reshape(b * j, c, h, w)).square()
    per = err.mean(dim=(1, 2, 3)).reshape(b, j).cpu().to(torch.float64)
    return (target_weights(active.cpu()).to(torch.float64) * per).sum(1)


def blend(x0: Tensor, x0_new: Tensor, a: Tensor) -> Tensor:
    """x0 + A (x0' - x0): per-pixel guidance strength A in [0, 1], (B, 1, H, W) or broadcastable."""
    return x0 + a.to(x0.dtype) * (x0_new - x0)


def guide(
    x0: Tensor,
    g: Tensor,
    s: Tensor,
    active: Tensor,
    mode: str = "closed-form",
    mu: float = MU,
    lam: float = LAM,
    transfer: Tensor | None = None,
) -> Tensor:
    """x0' by the chosen mode: "closed-form" (default; `transfer` as in `closed_form_guidance`)
    or "gradient"."""
    if mode == "closed-form":
        return closed_form_guidance(x0, g, s, active, mu=mu, transfer=transfer)
    if mode == "gradient":
        return gradient_guidance(x0, g, s, active, lam=lam)
    raise ValueError(f"unknown guidance mode {mode!r}; use 'closed-form' or 'gradient'")
