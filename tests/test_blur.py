"""Gaussian blur operator: per-sample std, identity at s=0, agreement with its Fourier transfer."""

from __future__ import annotations

import torch

from dynface.method.blur import gaussian_blur, gaussian_transfer


def test_zero_sigma_is_identity_and_mean_is_kept():
    x = torch.rand(2, 3, 40, 40, dtype=torch.float64)
    assert torch.equal(gaussian_blur(x, 0.0), x)
    y = gaussian_blur(x, torch.tensor([1.0, 3.0]))
    assert torch.allclose(y.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=2e-2)


def test_per_sample_sigma_matches_single_calls():
    x = torch.rand(3, 3, 48, 48, dtype=torch.float64)
    s = torch.tensor([0.5, 2.0, 6.0])
    batched = gaussian_blur(x, s)
    for i in range(3):
        assert torch.allclose(batched[i : i + 1], gaussian_blur(x[i : i + 1], float(s[i])))
    assert batched[2].std() < batched[1].std() < batched[0].std()


def test_transfer_equals_circular_convolution_in_the_interior():
    """On a periodic image (a centred bump), spatial blur and rFFT-domain multiply agree."""
    h = w = 64
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    bump = torch.exp(-((yy - 32.0) ** 2 + (xx - 32.0) ** 2) / 30.0).double()[None, None]
    s = 2.5
    spatial = gaussian_blur(bump, s)
    fourier = torch.fft.irfft2(
        torch.fft.rfft2(bump) * gaussian_transfer(s, h, w)[:, None], s=(h, w)
    )
    assert torch.allclose(spatial, fourier, atol=1e-6)


def test_wide_kernel_on_a_small_image():
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    y = gaussian_blur(x, 5.0)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert y.std() < x.std()
