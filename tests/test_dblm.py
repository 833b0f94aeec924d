"""DBLM: zero-shot recovery of Gaussian blur levels of real faces; levels, images, eta."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dynface.io import read_image, to_tensor
from dynface.method.blur import gaussian_blur
from dynface.method.dblm import (
    BlurLevelEstimator,
    LearnedEstimator,
    ZeroShotEstimator,
    guidance_images,
    guidance_levels,
    make_estimator,
    zero_shot_blur_level,
)
from dynface.method.eta import dynamic_eta

from .conftest import shared_path
from .faces import load_faces

LEVELS = torch.tensor([1.0, 2.0, 3.5, 5.0, 7.0, 10.0])


def _blurred_pairs(faces: torch.Tensor, noise: float = 0.0, quantise: bool = False):
    """Every face blurred at every level: (y, r, true s)."""
    r = faces.repeat_interleave(len(LEVELS), 0).float()
    s = LEVELS.repeat(len(faces))
    y = gaussian_blur(r, s)
    if noise:
        y = y + noise * torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    if quantise:
        y = (y.clamp(0, 1) * 255).round() / 255
    return y, r, s


@pytest.mark.parametrize(("noise", "quantise"), [(0.0, False), (0.01, True)])
def test_zero_shot_recovers_gaussian_blur_of_real_faces(noise, quantise):
    y, r, s = _blurred_pairs(load_faces(), noise, quantise)
    est = zero_shot_blur_level(y, r)
    assert est.shape == s.shape
    assert float((est - s).abs().max()) < 1.0, list(zip(s.tolist(), est.tolist(), strict=True))


def test_zero_shot_is_clipped_and_sharp_input_gives_about_zero():
    faces = load_faces().float()
    est = zero_shot_blur_level(faces, faces)
    assert bool((est >= 0).all()) and float(est.max()) < 0.3
    flat = gaussian_blur(faces, 40.0)
    assert bool((zero_shot_blur_level(flat, faces) <= 16).all())
    with pytest.raises(ValueError, match="one shape"):
        zero_shot_blur_level(faces, faces[..., :-1])


@pytest.mark.shared_data
def test_zero_shot_on_shared_hq_faces_at_512():
    root = shared_path("data", "gfpgan_inputs", "gt")
    paths = sorted(root.glob("*.png"))[:1]
    faces = torch.cat([to_tensor(read_image(p).pixels) for p in paths])
    faces = F.interpolate(faces, size=(512, 512), mode="bicubic", antialias=True).clamp(0, 1)
    y, r, s = _blurred_pairs(faces, 0.01, quantise=True)
    assert float((zero_shot_blur_level(y, r) - s).abs().max()) < 1.0


def test_guidance_levels_and_images():
    s_star = torch.tensor([0.0, 1.0, 5.5])
    levels = guidance_levels(s_star)
    expected = torch.tensor([[0.3, 0.3, 0.3], [1.0, 0.3, 0.3], [5.5, 4.5, 3.5]])
    assert torch.allclose(levels, expected)
    faces = load_faces().float()
    g = guidance_images(faces, guidance_levels(torch.tensor([4.0, 2.0])))
    assert g.shape == (2, 3, 3, *faces.shape[-2:])
    assert torch.allclose(g[1, 1], gaussian_blur(faces[1:2], 1.0)[0])
    # blurrier levels have less high-frequency energy
    detail = (g - gaussian_blur(g.flatten(0, 1), 1.0).view_as(g)).square().mean(dim=(2, 3, 4))
    assert bool((detail[:, 0] < detail[:, 1]).all())


def test_eta_follows_s_star():
    s_star = torch.tensor([0.0, 2.5, 5.0, 10.0, 14.0])
    assert torch.allclose(dynamic_eta(s_star), torch.tensor([0.0, 0.25, 0.5, 1.0, 1.0]))
    assert dynamic_eta(s_star, override=0.3).tolist() == pytest.approx([0.3] * 5)
    with pytest.raises(ValueError):
        dynamic_eta(s_star, override=2.0)


class _ConstantSDE(nn.Module):
    """Stand-in SDE: predicts the mean intensity times 30 (enough to test the wiring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3))[:, None] * 30


def test_estimator_interface_and_config():
    faces = load_faces().float()
    zero = make_estimator(None)
    assert isinstance(zero, ZeroShotEstimator) and isinstance(zero, BlurLevelEstimator)
    assert isinstance(make_estimator({"name": "zero_shot", "step": 0.2}), ZeroShotEstimator)
    learned = make_estimator({"name": "learned", "sde": _ConstantSDE(), "tm": nn.Identity()})
    assert isinstance(learned, LearnedEstimator)
    out = learned(faces, faces)
    assert out.shape == (2,) and float(out.max()) <= 16.0
    expected = (faces.mean(dim=(1, 2, 3)) * 30).clamp(0, 16)
    assert torch.allclose(out, expected)
    with pytest.raises(ValueError, match="unknown"):
        make_estimator("oracle")
    with pytest.raises(ValueError, match="SDE"):
        make_estimator("learned")
