"""FID math against closed forms, ~0 for a set against itself, growing with degradation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dynface.metrics.fid import FeatureCache, FeatureStats, folder_features, frechet_distance
from dynface.metrics.inception import FIDInceptionV3

from .metrics_helpers import degrade, face


def tiny_extractor() -> nn.Module:
    """A small seeded random conv net: 16-D features of images in [0, 1]."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ).eval()  # fmt: skip


def crops(image: torch.Tensor, count: int = 48, size: int = 64) -> torch.Tensor:
    """`count` fixed pseudo-random crops of a 1x3xHxW image."""
    rng = np.random.default_rng(0)
    h, w = image.shape[-2:]
    ys, xs = rng.integers(0, h - size, count), rng.integers(0, w - size, count)
    return torch.cat([image[..., y : y + size, x : x + size] for y, x in zip(ys, xs, strict=True)])


def test_closed_forms() -> None:
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    eye = np.eye(5)
    assert frechet_distance(FeatureStats(mu1, eye, 0), FeatureStats(mu2, eye, 0)) == pytest.approx(
        float(np.sum((mu1 - mu2) ** 2)), rel=1e-9
    )
    a, b = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = float(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    value = frechet_distance(FeatureStats(mu1, np.diag(a), 0), FeatureStats(mu1, np.diag(b), 0))
    assert value == pytest.approx(expected, rel=1e-7)


def test_self_distance_is_zero_and_grows_with_degradation() -> None:
    net = tiny_extractor()
    faces = [face("astronaut"), face("grace_hopper")]
    with torch.inference_mode():
        ref = FeatureStats.of(net(torch.cat([crops(f) for f in faces])).numpy())
        values = [frechet_distance(ref, ref)]
        for level in [(1.0, 0.01, 90), (2.0, 0.03, 60), (3.5, 0.06, 25)]:
            degraded = torch.cat([crops(degrade(f, *level)) for f in faces])
            values.append(frechet_distance(FeatureStats.of(net(degraded).numpy()), ref))
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert all(b > a for a, b in zip(values, values[1:], strict=False)), values


def test_stats_round_trip_and_pytorch_fid_keys(tmp_path) -> None:
    stats = FeatureStats.of(np.random.default_rng(2).normal(size=(10, 4)))
    loaded = FeatureStats.load(stats.save(tmp_path / "s.npz"))
    assert np.array_equal(loaded.mu, stats.mu) and np.array_equal(loaded.sigma, stats.sigma)
    np.savez(tmp_path / "bad.npz", m=np.zeros(3))
    with pytest.raises(ValueError, match="mu and sigma"):
        FeatureStats.load(tmp_path / "bad.npz")


def test_feature_cache_reuses_unchanged_files(tmp_path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for i in range(3):
        path = folder / f"{i}.npy"
        np.save(path, np.full((3, 8, 8), i / 3, dtype=np.float32))
        paths.append(path)
    calls = []

    def extractor(batch: torch.Tensor) -> torch.Tensor:
        calls.append(len(batch))
        return batch.mean(dim=(2, 3))

    def load(path):
        return torch.from_numpy(np.load(path))

    first = folder_features(paths, extractor, load, FeatureCache(tmp_path / "c", folder, "t"))
    again = folder_features(paths, extractor, load, FeatureCache(tmp_path / "c", folder, "t"))
    assert calls == [3] and np.array_equal(first, again)
    np.save(paths[1], np.ones((3, 8, 8), dtype=np.float32))
    changed = folder_features(paths, extractor, load, FeatureCache(tmp_path / "c", folder, "t"))
    assert calls == [3, 1] and changed[1, 0] == pytest.approx(1.0)


def test_inception_layout_matches_pytorch_fid() -> None:
    model = FIDInceptionV3()
    # torchvision inception_v3(aux_logits=False) has 23,834,568 parameters with its 1000-class fc.
    assert sum(p.numel() for p in model.parameters()) == 23_834_568 - (2048 * 1000 + 1000)
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in model.state_dict()
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 80, 80)).shape == (1, 2048)
