"""NIQE: equal to the MATLAB-faithful basicsr implementation, and rising with degradation."""

from __future__ import annotations

import pytest
import torch

from dynface.io import read_image, to_tensor
from dynface.method.blur import gaussian_blur
from dynface.metrics.niqe import _matlab_half, niqe

from .conftest import shared_path
from .metrics_helpers import degrade, face

# basicsr 1.4.2 `calculate_niqe(img, 0)` (its MATLAB R2021a check: baboon 5.7296), computed once.
BASICSR_GRACE_HOPPER = 3.578052
BASICSR_FFHQ_00000 = 4.317774


def test_matches_basicsr_reference_on_grace_hopper() -> None:
    assert niqe(face("grace_hopper", None)).item() == pytest.approx(BASICSR_GRACE_HOPPER, abs=2e-3)


@pytest.mark.shared_data
def test_matches_basicsr_reference_on_ffhq() -> None:
    path = shared_path("data", "gpen_examples", "ffhq10_hq", "00000.png")
    image = to_tensor(read_image(path).pixels)
    assert niqe(image).item() == pytest.approx(BASICSR_FFHQ_00000, abs=2e-3)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_rises_monotonically_with_blur_and_noise(name: str) -> None:
    clean = face(name, 384)
    blurred = torch.cat([clean] + [gaussian_blur(clean, s) for s in (1.0, 2.0, 3.0)])
    assert (niqe(blurred).diff() > 0).all()
    noisy = torch.cat([degrade(clean, 1.5, noise, 95) for noise in (0.0, 0.02, 0.05)])
    assert (niqe(noisy).diff() > 0).all()


def test_matlab_half_resize_keeps_constants_and_averages_pairs() -> None:
    flat = torch.full((1, 1, 8, 8), 0.25, dtype=torch.float64)
    assert torch.allclose(_matlab_half(flat), torch.full((1, 1, 4, 4), 0.25, dtype=torch.float64))
    ramp = torch.arange(16, dtype=torch.float64).view(1, 1, 1, 16).expand(1, 1, 4, 16)
    half = _matlab_half(ramp)
    assert torch.allclose(
        half[0, 0, 0, 2:-2], torch.tensor([4.5, 6.5, 8.5, 10.5], dtype=half.dtype)
    )


def test_small_images_are_refused() -> None:
    for shape in ((64, 200), (120, 150)):
        with pytest.raises(ValueError, match="two 96x96 blocks"):
            niqe(torch.rand(1, 3, *shape))
