"""The shipped learned blur-level estimator: loads offline, batched, and tracks the blur."""

from __future__ import annotations

import pytest
import torch

from dynface.io import read_image, to_tensor
from dynface.method.blur import gaussian_blur
from dynface.method.learned_se import learned_blur_level, load_estimator, shipped_weights
from dynface.nets.estimator import SE
from dynface.resize import resize

from .conftest import TEST_DATA


def test_shipped_weights_are_small_and_hold_tm_and_sde():
    assert shipped_weights().stat().st_size < 5_000_000
    assert isinstance(load_estimator(), SE)


def test_more_blur_gives_a_larger_estimate_and_batches_agree():
    x = resize(to_tensor(read_image(TEST_DATA / "astronaut_face.png").pixels), 512, mode="bilinear")
    levels = torch.tensor([1.0, 4.0, 10.0])
    y = gaussian_blur(x.expand(3, -1, -1, -1), levels).clamp(0, 1)
    s = learned_blur_level(y)
    assert s.shape == (3,) and s.dtype == torch.float32
    assert bool((s >= 0).all() and (s <= 16).all())
    assert s[0] < s[1] < s[2] and float(s[2] - s[0]) > 3, s
    assert torch.allclose(learned_blur_level(y[2:]), s[2:], atol=1e-4)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="RGB"):
        learned_blur_level(torch.rand(2, 1, 64, 64))
