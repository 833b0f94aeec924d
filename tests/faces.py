"""Real public-domain faces for the method tests, as (B, 3, 256, 256) float64 in [0, 1]."""

from __future__ import annotations

import torch

from dynface.io import read_image, to_tensor

from .conftest import TEST_DATA

FACE_FILES = ("astronaut_face.png", "grace_hopper_face.png")


def load_faces() -> torch.Tensor:
    """Both test faces stacked."""
    return torch.cat([to_tensor(read_image(TEST_DATA / f).pixels) for f in FACE_FILES]).double()


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> float:
    """PSNR in dB of two images of the same range."""
    return float(10 * torch.log10(peak**2 / (a - b).square().mean()))
