"""DGSA losses: the stationary Haar wavelet transform and DISTS with user-supplied VGG16 weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from dynface.train.losses import DISTS, SWTLoss, haar_swt


def test_swt_is_undecimated_shift_invariant_and_flat_on_constants():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    bands = haar_swt(x, levels=2)
    assert len(bands) == 7 and all(b.shape == x.shape for b in bands)
    shifted = haar_swt(torch.roll(x, (3, 5), dims=(2, 3)), levels=2)
    for b, s in zip(bands, shifted, strict=True):
        assert torch.allclose(torch.roll(b, (3, 5), dims=(2, 3)), s, atol=1e-6)
    flat = haar_swt(torch.full((1, 1, 8, 8), 0.3), levels=2)
    assert all(float(b.abs().max()) < 1e-7 for b in flat[:-1])
    assert torch.allclose(flat[-1], torch.full_like(flat[-1], 0.3))
    loss = SWTLoss(levels=2)
    assert float(loss(x, x)) == 0 and float(loss(x, x + 0.1)) > 0
    with pytest.raises(ValueError, match="7 sub-bands"):
        SWTLoss(levels=2, weights=[1.0, 2.0])


def test_dists_from_a_vgg16_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    layers = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128)}
    layers |= {12: (256, 256), 14: (256, 256), 17: (512, 256), 19: (512, 512), 21: (512, 512)}
    layers |= {24: (512, 512), 26: (512, 512), 28: (512, 512)}
    state = {}
    for i, (cout, cin) in layers.items():
        state[f"features.{i}.weight"] = (
            torch.randn(cout, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        )
        state[f"features.{i}.bias"] = torch.zeros(cout)
    save_file(state, str(tmp_path / "vgg16.safetensors"))
    dists = DISTS(tmp_path / "vgg16.safetensors")
    x = torch.rand(2, 3, 32, 32, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1).requires_grad_()
    assert abs(float(dists(x, x))) < 1e-4
    d = dists(y, x)
    assert d.item() > 0.01
    d.backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
    del state["features.28.weight"]
    save_file(state, str(tmp_path / "broken.safetensors"))
    with pytest.raises(ValueError, match="features.28"):
        DISTS(tmp_path / "broken.safetensors")
