"""The equivalent blur level s*: zero for identical images, monotone in blur, bisect == sweep."""

from __future__ import annotations

import torch

from dynface.data.degrade import DegradationConfig, degrade, sample_degradations
from dynface.data.targets import equivalent_blur_level
from dynface.io import read_image, to_tensor
from dynface.method.blur import gaussian_blur

from .conftest import TEST_DATA


def _face(size_div: int = 2) -> torch.Tensor:
    return to_tensor(read_image(TEST_DATA / "astronaut_face.png").pixels[::size_div, ::size_div])


def test_more_blur_gives_larger_s_star():
    x = _face()  # 128 px: blur levels (px at 512) are applied with std s / 4
    levels = torch.tensor([0.0, 1.0, 2.0, 4.0, 8.0, 12.0])
    y = gaussian_blur(x.repeat(len(levels), 1, 1, 1), levels * 0.25)
    s = equivalent_blur_level(x.expand_as(y), y, pixel_scale=0.25)
    assert s[0] == 0
    assert bool((s[1:] >= s[:-1]).all()), s
    assert s[-1] > s[1] + 2
    assert bool((s <= levels + 0.25).all())  # blurring y by its own blur always suffices


def test_no_level_is_enough_gives_s_max():
    x = torch.zeros(1, 3, 32, 32)
    y = torch.ones(1, 3, 32, 32)
    assert float(equivalent_blur_level(x, y)) == 16.0


def test_bisection_matches_the_sweep():
    x = _face(4).repeat(6, 1, 1, 1)
    params = sample_degradations(6, DegradationConfig(), torch.Generator().manual_seed(5))
    y = degrade(x, params, pixel_scale=0.125)
    fast = equivalent_blur_level(x, y, pixel_scale=0.125)
    slow = equivalent_blur_level(x, y, pixel_scale=0.125, method="sweep")
    assert torch.equal(fast, slow)
