"""NIQE (Mittal et al. 2013), the no-reference "naturalness" score; lower is better.

Follows the official MATLAB release as basicsr re-implements it: the Y channel (MATLAB
`rgb2ycbcr`, rounded to integers in [16, 235]), cropped to whole 96x96 blocks without overlap,
MSCN coefficients with the 7x7 Gaussian window (replicate borders), 18 AGGD features per block at
full and at half scale (MATLAB bicubic `imresize` with antialiasing), a multivariate Gaussian fit,
and its distance to the pristine model. The pristine parameters `mu_pris_param`,
`cov_pris_param` and the window are the official MATLAB ones as shipped in basicsr's
`niqe_pris_params.npz` (see `dynface/assets/NIQE_LICENSE.md`). Vectorised over blocks in torch.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import gamma as gamma_fn

from dynface.metrics.fidelity import rgb_to_y

BLOCK = 96
_GAMMAS = np.arange(0.2, 10.001, 0.001)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@cache
def pristine_params() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu_pris, cov_pris, 7x7 window) of the official pristine model."""
    path = resources.files("dynface") / "assets" / "niqe_pris_params.npz"
    with resources.as_file(path) as file, np.load(file, allow_pickle=False) as data:
        return (
            data["mu_pris_param"].reshape(-1),
            data["cov_pris_param"],
            data["gaussian_window"],
        )


def niqe(images: torch.Tensor) -> torch.Tensor:
    """NIQE of each image of a Bx3xHxW RGB batch in [0, 1] (two 96 px blocks or more)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected a Bx3xHxW batch, got {tuple(images.shape)}")
    height, width = (images.shape[-2] // BLOCK) * BLOCK, (images.shape[-1] // BLOCK) * BLOCK
    if not has_enough_blocks(images.shape[-2], images.shape[-1]):
        raise ValueError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks (e.g. 96x192 px)")
    mu_p, cov_p, window = pristine_params()
    device = images.device
    y = (rgb_to_y(images.double()) * 255).round()[..., :height, :width]
    kernel = torch.from_numpy(_separable(window)).to(device)
    features = []
    for scale in (1, 2):
        mscn = _mscn(y, kernel)
        size = BLOCK // scale
        blocks = mscn.unfold(2, size, size).unfold(3, size, size)  # B,1,nh,nw,size,size
        blocks = blocks.permute(0, 3, 2, 1, 4, 5).reshape(-1, size, size)
        features.append(_block_features(blocks).view(images.shape[0], -1, 18))
        if scale == 1:
            y = _matlab_half(y / 255.0) * 255.0
    feats = torch.cat(features, dim=2).cpu().numpy()
    return torch.tensor([_distance(f, mu_p, cov_p) for f in feats], dtype=torch.float64)


def _separable(window: np.ndarray) -> np.ndarray:
    """The 1-D factor of the (separable, normalised) 7x7 Gaussian window."""
    factor = window.sum(axis=1)
    if not np.allclose(np.outer(factor, factor), window, rtol=0, atol=1e-12):
        raise ValueError("the NIQE window is not a separable Gaussian")
    return factor


def has_enough_blocks(height: int, width: int) -> bool:
    """True when an image holds the two whole 96x96 blocks a covariance needs."""
    return (height // BLOCK) * (width // BLOCK) >= 2


def _mscn(y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Mean-subtracted contrast-normalised coefficients (Eq. 1), replicate borders."""
    padded = F.pad(torch.cat([y, y.square()], dim=1), (3, 3, 3, 3), mode="replicate")
    blurred = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(2, 1, 1, -1), groups=2)
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1).expand(2, 1, -1, 1), groups=2)
    mu, squares = blurred.split(1, dim=1)
    sigma = (squares - mu.square()).abs().sqrt()
    return (y - mu) / (sigma + 1)


def _block_features(blocks: torch.Tensor) -> torch.Tensor:
    """The 18 NIQE features of each (N, h, w) block: AGGD fits of MSCN and pairwise products."""
    alpha, left, right = _aggd(blocks)
    out = [alpha, (left + right) / 2]
    for shift in _SHIFTS:
        alpha, left, right = _aggd(blocks * torch.roll(blocks, shifts=shift, dims=(1, 2)))
        mean = (right - left) * torch.exp(torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha))
        out += [alpha, mean, left, right]
    return torch.stack(out, dim=1)


def _aggd(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Moment-matching AGGD fit (alpha, beta_left, beta_right) per block, on NIQE's alpha grid."""
    x = blocks.flatten(1)
    neg, pos = x < 0, x > 0
    left_std = ((x.square() * neg).sum(1) / neg.sum(1)).sqrt()
    right_std = ((x.square() * pos).sum(1) / pos.sum(1)).sqrt()
    ratio = left_std / right_std
    rhat = x.abs().mean(1).square() / x.square().mean(1)
    rhatnorm = rhat * (ratio**3 + 1) * (ratio + 1) / (ratio.square() + 1).square()
    alphas, table = _gamma_table(str(x.device))
    alpha = alphas[(table[None, :] - rhatnorm[:, None]).square().argmin(dim=1)]
    factor = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    return alpha, left_std * factor, right_std * factor


@cache
def _gamma_table(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate alphas and their ratio Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))."""
    inv = 1.0 / _GAMMAS
    ratio = gamma_fn(2 * inv) ** 2 / (gamma_fn(inv) * gamma_fn(3 * inv))
    as_tensor = torch.tensor
    return as_tensor(_GAMMAS, device=device), as_tensor(ratio, device=device)


def _matlab_half(y: torch.Tensor) -> torch.Tensor:
    """MATLAB `imresize(y, 0.5)` (bicubic, antialiased): an 8-tap filter, stride 2, mirrored."""
    d = torch.tensor([3.5, 2.5, 1.5, 0.5, 0.5, 1.5, 2.5, 3.5], dtype=y.dtype, device=y.device)
    x = d / 2
    cubic = torch.where(x <= 1, 1.5 * x**3 - 2.5 * x**2 + 1, -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2)
    taps = cubic / cubic.sum()
    for dim in (2, 3):
        length = y.shape[dim]
        index = torch.arange(-3, length + 3, device=y.device)
        index = torch.where(index < 0, -index - 1, index)
        index = torch.where(index >= length, 2 * length - index - 1, index)
        padded = y.index_select(dim, index)
        kernel = taps.view(1, 1, -1, 1) if dim == 2 else taps.view(1, 1, 1, -1)
        stride = (2, 1) if dim == 2 else (1, 2)
        y = F.conv2d(padded, kernel, stride=stride)
    return y


def _distance(features: np.ndarray, mu_p: np.ndarray, cov_p: np.ndarray) -> float:
    """Eq. 10: Mahalanobis-like distance between the image's MVG fit and the pristine model.

    NaN (no value) when fewer than two blocks have finite features: a constant or black image
    has no contrast to fit (ours; the MATLAB code fails there).
    """
    clean = features[np.isfinite(features).all(axis=1)]
    if len(clean) < 2:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.nanmean(features, axis=0)
        cov = np.cov(clean, rowvar=False)
    diff = mu_p - mu
    if not (np.isfinite(diff).all() and np.isfinite(cov).all()):
        return math.nan
    try:
        return float(np.sqrt(diff @ np.linalg.pinv((cov_p + cov) / 2) @ diff))
    except np.linalg.LinAlgError:
        return math.nan
