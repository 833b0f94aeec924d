"""Synthetic face degradations: blur, downsample, noise, JPEG, resize back, random grayscale.

The chain is the classic blind-face-restoration one (GFPGAN / DiffBIR / DifFace):
`y = resize_back(jpeg(down(k * x) + n))`. Blur runs batched on the device (one grouped
convolution with a per-sample 41x41 kernel, reflect padding as OpenCV's default border); the
resizes and the noise run per image on the device because every image has its own size; JPEG uses
the real codec (OpenCV's libjpeg, as the reference implementations do) on the host, one image at a
time. Every random draw comes from a `torch.Generator`, and each image's parameters, including the
seed of its noise, are kept in a `Degradation` record, so any image can be re-derived exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from kornia.filters import filter2d
from torch import Tensor

from dynface.data.protocols import PROTOCOLS


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges of the random degradation; defaults are DiffBIR's face stage 1 (noise in 0-255)."""

    kernel_size: int = 41
    iso_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 12.0)
    downsample: tuple[float, float] = (1.0, 12.0)
    noise: tuple[float, float] = (0.0, 15.0)
    jpeg: tuple[int, int] = (30, 100)
    gray_prob: float = 0.0

    def __post_init__(self) -> None:
        if self.kernel_size % 2 != 1 or self.kernel_size < 3:
            raise ValueError("kernel_size must be odd and at least 3")
        for name in ("blur_sigma", "downsample", "noise", "jpeg"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: lower bound {lo} exceeds upper bound {hi}")
        if self.downsample[0] < 1:
            raise ValueError("downsample factors must be >= 1")
        if not (self.jpeg[0] >= 1 and self.jpeg[1] <= 100):
            raise ValueError("JPEG quality must lie in [1, 100]")


@dataclass(frozen=True)
class Degradation:
    """One image's degradation: blur stds (px) and angle (rad), scale, noise (0-255), JPEG, gray."""

    sigma_x: float
    sigma_y: float
    theta: float
    scale: float
    noise: float
    jpeg: int
    gray: bool
    noise_seed: int

    def as_row(self) -> dict[str, str]:
        """CSV-ready strings; floats with repr precision so a row re-derives the image exactly."""
        return {
            k: (str(int(v)) if isinstance(v, bool) else repr(v)) for k, v in asdict(self).items()
        }

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Degradation:
        """Parse a row written by `as_row`."""
        kinds = {f.name: f.type for f in fields(cls)}
        values = {}
        for name, kind in kinds.items():
            text = row[name]
            values[name] = (
                bool(int(text)) if kind == "bool" else int(text) if kind == "int" else float(text)
            )
        return cls(**values)


#: DifFace's CelebA-Test grid (journal version), one random draw per image.
DIFFACE_GRID = {
    "sigma": (4.0, 8.0, 12.0, 16.0),
    "theta": tuple(k * math.pi / 4 for k in range(4)),
    "scale": tuple(float(s) for s in range(4, 41, 4)),
    "noise": (1.0, 5.0, 10.0, 15.0, 20.0),
    "jpeg": (30, 40, 50, 60, 70),
}


def _uniform(lo: float, hi: float, n: int, g: torch.Generator) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


def _seeds(n: int, g: torch.Generator) -> list[int]:
    return torch.randint(0, 2**62, (n,), generator=g).tolist()


def sample_degradations(
    n: int, config: DegradationConfig, generator: torch.Generator
) -> list[Degradation]:
    """Draw `n` random degradations from the ranges of `config` (deterministic under the seed)."""
    iso = torch.rand(n, generator=generator, dtype=torch.float64) < config.iso_prob
    sx = _uniform(*config.blur_sigma, n, generator)
    sy = torch.where(iso, sx, _uniform(*config.blur_sigma, n, generator))
    theta = torch.where(
        iso, torch.zeros(n, dtype=torch.float64), _uniform(-math.pi, math.pi, n, generator)
    )
    scale = _uniform(*config.downsample, n, generator)
    noise = _uniform(*config.noise, n, generator)
    jpeg = torch.randint(config.jpeg[0], config.jpeg[1] + 1, (n,), generator=generator)
    gray = torch.rand(n, generator=generator, dtype=torch.float64) < config.gray_prob
    seeds = _seeds(n, generator)
    return [
        Degradation(
            float(sx[i]),
            float(sy[i]),
            float(theta[i]),
            float(scale[i]),
            float(noise[i]),
            int(jpeg[i]),
            bool(gray[i]),
            seeds[i],
        )
        for i in range(n)
    ]


def sample_protocol(n: int, protocol: str, generator: torch.Generator) -> list[Degradation]:
    """Draw `n` degradations of a named test protocol (one random grid point per image)."""
    if protocol != "difface-celeba-test":
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")

    def pick(values: Sequence) -> list:
        idx = torch.randint(0, len(values), (n,), generator=generator).tolist()
        return [values[i] for i in idx]

    sx, sy = pick(DIFFACE_GRID["sigma"]), pick(DIFFACE_GRID["sigma"])
    theta, scale = pick(DIFFACE_GRID["theta"]), pick(DIFFACE_GRID["scale"])
    noise, jpeg = pick(DIFFACE_GRID["noise"]), pick(DIFFACE_GRID["jpeg"])
    seeds = _seeds(n, generator)
    return [
        Degradation(sx[i], sy[i], theta[i], scale[i], noise[i], int(jpeg[i]), False, seeds[i])
        for i in range(n)
    ]


def blur_kernels(params: Sequence[Degradation], size: int, device=None) -> Tensor:
    """Normalised bivariate Gaussian kernels (B, size, size): cov = R diag(sx^2, sy^2) R^T."""
    p = torch.tensor(
        [[d.sigma_x, d.sigma_y, d.theta] for d in params], dtype=torch.float64, device=device
    )
    sx, sy, th = p[:, 0, None, None], p[:, 1, None, None], p[:, 2, None, None]
    r = torch.arange(size, dtype=torch.float64, device=device) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    cos, sin = torch.cos(th), torch.sin(th)
    u = cos * xx + sin * yy  # coordinates along the kernel's principal axes
    v = -sin * xx + cos * yy
    k = torch.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    return k / k.sum(dim=(1, 2), keepdim=True)


def _jpeg(image: Tensor, quality: int) -> Tensor:
    """Round-trip one (3, H, W) image in [0, 1] through OpenCV's JPEG codec at `quality`."""
    rgb = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)
    return tensor.to(image.device, torch.float32) / 255.0


def to_gray(x: Tensor) -> Tensor:
    """ITU-R 601 luma repeated over three channels (OpenCV's RGB2GRAY weights)."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
    return (x * w[:, None, None]).sum(dim=-3, keepdim=True).expand_as(x)


def degrade(
    x: Tensor, params: Sequence[Degradation], kernel_size: int = 41, pixel_scale: float = 1.0
) -> Tensor:
    """Apply one degradation per image to a (B, 3, H, W) batch in [0, 1]; output in [0, 1].

    `pixel_scale` (ours) runs the chain on images smaller than the 512 px the parameters are
    defined at (e.g. 0.25 for 128 px): blur stds scale with it, the low-resolution size stays
    512/scale (never above the working size) and the noise is attenuated as the downscale of the
    512 px result would.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) batch, got shape {tuple(x.shape)}")
    if len(params) != x.shape[0]:
        raise ValueError(f"got {len(params)} degradations for a batch of {x.shape[0]}")
    x = x.float()
    if pixel_scale != 1.0:
        params = [
            replace(d, sigma_x=d.sigma_x * pixel_scale, sigma_y=d.sigma_y * pixel_scale)
            for d in params
        ]
    k = blur_kernels(params, kernel_size, x.device).to(x.dtype)
    blurred = filter2d(x, k, border_type="reflect")
    h, w = x.shape[-2:]
    out = []
    for img, d in zip(blurred, params, strict=True):
        factor = d.scale * pixel_scale
        noise_gain = min(1.0, factor)
        lr = img[None]
        if factor > 1.0:
            size = (max(1, int(h // factor)), max(1, int(w // factor)))
            lr = F.interpolate(lr, size=size, mode="bilinear", align_corners=False)
        gen = torch.Generator(device=x.device).manual_seed(d.noise_seed)
        noise = torch.randn(lr.shape, generator=gen, device=x.device, dtype=lr.dtype)
        lr = (lr + noise * (d.noise * noise_gain / 255.0)).clamp(0, 1)
        lr = _jpeg(lr[0], d.jpeg)[None]
        if lr.shape[-2:] != (h, w):
            lr = F.interpolate(lr, size=(h, w), mode="bilinear", align_corners=False)
        lr = lr.clamp(0, 1)
        out.append(to_gray(lr) if d.gray else lr)
    return torch.cat(out)


class RandomDegradation:
    """Callable that degrades a batch with fresh random parameters drawn from a config."""

    def __init__(self, config: DegradationConfig | None = None, pixel_scale: float = 1.0):
        self.config = config or DegradationConfig()
        self.pixel_scale = pixel_scale

    def __call__(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, list[Degradation]]:
        """Degrade `x`; return the degraded batch and each image's parameters."""
        params = sample_degradations(x.shape[0], self.config, generator)
        return degrade(x, params, self.config.kernel_size, self.pixel_scale), params
