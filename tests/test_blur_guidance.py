"""Guidance: the closed-form solve recovers blurred faces and equals the explicit least squares."""

from __future__ import annotations

import math

import pytest
import torch

from dynface.method.blur import gaussian_blur, gaussian_kernel1d, kernel_radius, reflect_pad2d
from dynface.method.dblm import guidance_images
from dynface.method.guidance import (
    active_targets,
    blend,
    closed_form_guidance,
    data_term,
    gradient_guidance,
    guide,
    target_weights,
)

from .faces import load_faces, psnr


def _circular_blur_matrix(sigma: float, size: int) -> torch.Tensor:
    """Explicit (size^2, size^2) matrix of 2-D circular convolution with the taps of k(sigma)."""
    radius = kernel_radius(sigma)
    taps = gaussian_kernel1d(sigma, radius)[0]
    one_d = torch.zeros(size, size, dtype=torch.float64)
    for offset, tap in zip(range(-radius, radius + 1), taps, strict=True):
        one_d += tap * torch.roll(torch.eye(size, dtype=torch.float64), offset, dims=1)
    return torch.kron(one_d, one_d)


def test_closed_form_equals_explicit_least_squares_on_small_image():
    """Normal equations of sum_j w_j ||g_j - K_j x||^2 + mu ||x - x0||^2 on the padded grid."""
    gen = torch.Generator().manual_seed(0)
    size, sig, mu = 16, (1.2, 2.0), 0.01
    x = load_faces()[:1, :, 100:116, 110:126] * 2 - 1
    s = torch.tensor([sig], dtype=torch.float64)
    g = guidance_images(x, s) + 0.01 * torch.randn(1, 2, 3, size, size, generator=gen).double()
    x0 = torch.rand(1, 3, size, size, generator=gen, dtype=torch.float64) * 2 - 1
    pad = kernel_radius(max(sig))
    out = closed_form_guidance(x0, g, s, torch.tensor([[True, True]]), mu=mu, pad=pad)
    n = size + 2 * pad
    mats = [_circular_blur_matrix(v, n) for v in sig]
    normal = sum(0.5 * m.T @ m for m in mats) + mu * torch.eye(n * n, dtype=torch.float64)
    g_pad = reflect_pad2d(g[0], pad)  # (J, C, n, n)
    x0_pad = reflect_pad2d(x0, pad)[0]
    for c in range(3):
        rhs = sum(0.5 * m.T @ g_pad[j, c].flatten() for j, m in enumerate(mats))
        rhs = rhs + mu * x0_pad[c].flatten()
        direct = torch.linalg.solve(normal, rhs).reshape(n, n)[pad:-pad, pad:-pad]
        assert torch.allclose(out[0, c], direct, atol=1e-9)


@pytest.mark.parametrize("sigma", [1.5, 3.0])
def test_closed_form_recovers_a_blurred_face(sigma):
    x = load_faces().float() * 2 - 1
    s = torch.full((2, 1), sigma)
    g = guidance_images(x, s)
    out = closed_form_guidance(g[:, 0], g, s, torch.ones(2, 1, dtype=torch.bool))
    for i in range(2):
        before, after = psnr(g[i, 0], x[i], peak=2.0), psnr(out[i], x[i], peak=2.0)
        assert after > before + 1.5, (before, after)


def test_inactive_targets_are_ignored_and_none_active_is_identity():
    x = load_faces().float() * 2 - 1
    s = torch.tensor([[2.0, 1.0], [3.0, 2.0]])
    g = guidance_images(x, s)
    x0 = torch.zeros_like(x)
    both = closed_form_guidance(x0, g, s, torch.tensor([[True, False], [False, False]]))
    only_first = closed_form_guidance(x0[:1], g[:1, :1], s[:1, :1], torch.tensor([[True]]))
    assert torch.allclose(both[:1], only_first, atol=1e-5)  # independent of batch-mates
    assert torch.allclose(both[1], x0[1], atol=1e-6)


def test_weights_and_activity():
    active = active_targets(torch.tensor([800, 600]), torch.tensor([[900, 700], [650, 500]]))
    assert active.tolist() == [[True, False], [True, False]]
    w = target_weights(torch.tensor([[True, True, False], [False, False, False]]))
    assert w.tolist() == [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]


def test_gradient_variant_decreases_the_data_term():
    gen = torch.Generator().manual_seed(1)
    x = load_faces().float() * 2 - 1
    s = torch.tensor([[2.0, 1.0], [4.0, 3.0]])
    active = torch.tensor([[True, True], [True, False]])
    g = guidance_images(x, s)
    x0 = x + 0.2 * torch.randn(x.shape, generator=gen)
    before = data_term(x0, g, s, active)
    after = data_term(gradient_guidance(x0, g, s, active), g, s, active)
    assert bool((after < 0.7 * before).all()), (before, after)
    by_name = guide(x0, g, s, active, mode="gradient")
    assert torch.equal(by_name, gradient_guidance(x0, g, s, active))
    with pytest.raises(ValueError, match="unknown guidance mode"):
        guide(x0, g, s, active, mode="nope")


def test_blend_follows_the_map():
    x0, x1 = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    a = torch.linspace(0, 1, 16).reshape(1, 1, 4, 4)
    out = blend(x0, x1, a)
    assert torch.allclose(out, a.expand_as(out))


def test_guidance_keeps_a_flat_image_and_handles_wide_kernels_on_small_images():
    flat = torch.full((1, 3, 24, 24), 0.3)
    s = torch.tensor([[16.0]])
    g = guidance_images(flat, s)
    out = closed_form_guidance(flat, g, s, torch.tensor([[True]]))
    assert torch.allclose(out, flat, atol=1e-5) and math.isfinite(float(out.sum()))
    assert torch.allclose(gaussian_blur(flat, 16.0), flat, atol=1e-6)
