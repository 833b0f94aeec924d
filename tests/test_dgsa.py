"""DGSA: the heuristic map is in [0, 1] and weaker on texture than on smooth regions; the net."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from dynface.method.dgsa import (
    A_HI,
    A_LO,
    HeuristicDGSA,
    LearnedDGSA,
    heuristic_map,
    high_frequency_energy,
    make_dgsa,
)
from dynface.nets.dgsa import DGSANet

from .faces import load_faces


def _texture_next_to_flat() -> torch.Tensor:
    """Left half: random fine texture; right half: a flat area crossed by one sharp contour."""
    gen = torch.Generator().manual_seed(0)
    img = torch.zeros(1, 3, 128, 128)
    img[..., :64] = torch.rand(1, 1, 128, 64, generator=gen) * 1.6 - 0.8
    img[..., 64:] = 0.1
    img[..., 100:, 64:] = 0.9  # a straight contour across the smooth half
    return img


def test_map_is_in_range_and_lower_on_texture_than_on_smooth_areas():
    a = heuristic_map(_texture_next_to_flat())
    assert a.shape == (1, 1, 128, 128)
    assert float(a.min()) >= A_LO - 1e-6 and float(a.max()) <= A_HI + 1e-6
    texture, smooth, contour = a[..., 20:90, 10:50], a[..., 20:80, 80:120], a[..., 96:104, 80:120]
    assert float(texture.mean()) < 0.5 < float(smooth.mean())
    assert float(contour.mean()) > float(texture.mean()) + 0.2


def test_map_on_real_faces_and_flat_images():
    faces = load_faces().float() * 2 - 1
    a = heuristic_map(faces)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert 0.5 < float(a.mean()) < 1.0
    flat = torch.full((2, 3, 64, 64), 0.2)
    assert torch.equal(high_frequency_energy(flat), torch.zeros(2, 1, 64, 64))
    with pytest.raises(ValueError):
        heuristic_map(faces, a_hi=0.2, a_lo=0.5)


def test_learned_net_loads_from_safetensors_and_outputs_a_map(tmp_path):
    torch.manual_seed(0)
    net = DGSANet(hidden=8).requires_grad_(False)
    path = tmp_path / "dgsa.safetensors"
    save_file(net.state_dict(), str(path))
    loaded = DGSANet.from_file(path).requires_grad_(False)
    g0, x0 = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    t = torch.tensor([900, 100])
    a = loaded(g0, x0, t)
    assert a.shape == (2, 1, 32, 32) and float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.allclose(a, net(g0, x0, t))
    assert not torch.allclose(a[0], loaded(g0[:1], x0[:1], 100)[0])  # t matters
    dgsa = make_dgsa({"name": "learned", "weights": str(path)})
    assert isinstance(dgsa, LearnedDGSA) and torch.allclose(dgsa(g0, x0, t), a)
    assert isinstance(make_dgsa(None), HeuristicDGSA)
    with pytest.raises(ValueError, match="body.0.weight"):
        DGSANet.from_state_dict({"x": torch.zeros(1)})
