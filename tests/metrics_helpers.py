"""Shared helpers for the metrics tests: public-domain faces and simple degradations."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from dynface.io import read_image, to_tensor
from dynface.method.blur import gaussian_blur

from .conftest import TEST_DATA


def face(name: str, size: int | None = 256) -> torch.Tensor:
    """1x3xHxW tensor of a public-domain test face (`astronaut` or `grace_hopper`), resized."""
    path = TEST_DATA / ("astronaut.png" if name == "astronaut" else "grace_hopper.jpg")
    if size is None:
        return to_tensor(read_image(path).pixels)
    with Image.open(path) as im:
        small = im.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return to_tensor(np.asarray(small, dtype=np.float32) / 255)


def degrade(image: torch.Tensor, sigma: float, noise: float, quality: int, seed: int = 0):
    """Blur, add Gaussian noise and JPEG-compress a 1x3xHxW image in [0, 1]."""
    x = gaussian_blur(image, sigma) if sigma > 0 else image
    generator = torch.Generator().manual_seed(seed)
    x = (x + noise * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    array = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255
    return to_tensor(decoded)
