"""PSNR/SSIM (RGB and Y) agree with scikit-image's reference functions on real face pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dynface.metrics.fidelity import psnr, rgb_to_y, ssim

from .metrics_helpers import degrade, face

SKIMAGE_SSIM = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
LEVELS = [(1.0, 0.01, 90), (2.5, 0.03, 60), (4.0, 0.06, 30)]


def _hwc(x: torch.Tensor) -> np.ndarray:
    """1x3xHxW tensor to an HxWx3 float64 array."""
    return x[0].permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_rgb_matches_skimage(name: str) -> None:
    gt = face(name)
    for level in LEVELS:
        lq = degrade(gt, *level)
        ref_psnr = peak_signal_noise_ratio(_hwc(gt), _hwc(lq), data_range=1)
        ref_ssim = structural_similarity(
            _hwc(gt), _hwc(lq), data_range=1, channel_axis=-1, **SKIMAGE_SSIM
        )
        assert psnr(lq, gt).item() == pytest.approx(ref_psnr, abs=1e-3)
        assert ssim(lq, gt).item() == pytest.approx(ref_ssim, abs=1e-3)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_y_channel_matches_skimage_bt601(name: str) -> None:
    gt = face(name)
    lq = degrade(gt, 2.0, 0.02, 70)
    y_gt, y_lq = rgb2ycbcr(_hwc(gt))[..., 0], rgb2ycbcr(_hwc(lq))[..., 0]  # Y in [16, 235]
    ref_psnr = peak_signal_noise_ratio(y_gt, y_lq, data_range=255)
    ref_ssim = structural_similarity(y_gt, y_lq, data_range=255, **SKIMAGE_SSIM)
    assert psnr(rgb_to_y(lq), rgb_to_y(gt)).item() == pytest.approx(ref_psnr, abs=1e-3)
    assert ssim(rgb_to_y(lq), rgb_to_y(gt)).item() == pytest.approx(ref_ssim, abs=1e-3)
    assert (rgb_to_y(gt) * 255).amin() >= 16 - 1e-4
    assert (rgb_to_y(gt) * 255).amax() <= 235 + 1e-4


def test_batched_equals_one_by_one_and_orders_degradations() -> None:
    gt = face("astronaut")[..., :256, :256]
    lqs = torch.cat([degrade(gt, *level) for level in LEVELS])
    gts = gt.expand(len(LEVELS), -1, -1, -1)
    batch_psnr, batch_ssim = psnr(lqs, gts), ssim(lqs, gts)
    for i in range(len(LEVELS)):
        assert batch_psnr[i].item() == pytest.approx(psnr(lqs[i : i + 1], gt).item(), abs=1e-9)
        assert batch_ssim[i].item() == pytest.approx(ssim(lqs[i : i + 1], gt).item(), abs=1e-9)
    assert (batch_psnr.diff() < 0).all() and (batch_ssim.diff() < 0).all()
    assert ssim(gt, gt).item() == pytest.approx(1.0, abs=1e-12)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="one shape"):
        psnr(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 33))
