"""LPIPS structure and weight handling (the real trunk weights cannot be fetched in tests)."""

from __future__ import annotations

import hashlib

import pytest
import torch

from dynface.metrics.lpips import LPIPS
from dynface.metrics.weights import METRIC_WEIGHTS, WeightsCorrupted, load_state_dict


def _random_files(net: str) -> tuple[dict, dict]:
    """A torchvision-style trunk dict (with classifier keys) and LPIPS-style head dict."""
    torch.manual_seed(0)
    model = LPIPS(net)
    trunk = {f"features.{k}": torch.randn_like(v) for k, v in model.features.state_dict().items()}
    trunk["classifier.1.weight"] = torch.zeros(4, 4)
    heads = {f"lin{i}.model.1.weight": torch.rand_like(m.weight) for i, m in enumerate(model.lins)}
    return trunk, heads


def test_trunk_layouts_match_torchvision_features() -> None:
    assert [lin.weight.shape[1] for lin in LPIPS("alex").lins] == [64, 192, 384, 256, 256]
    vgg = LPIPS("vgg")
    assert [lin.weight.shape[1] for lin in vgg.lins] == [64, 128, 256, 512, 512]
    assert vgg.taps == (3, 8, 15, 22, 29)  # relu1_2 ... relu5_3 in torchvision's vgg16.features


def test_loads_upstream_key_layouts_and_behaves_as_a_distance() -> None:
    model = LPIPS("alex")
    model.load_weights(*_random_files("alex"))
    a, b = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model(a, a), torch.zeros(2))
        assert torch.allclose(model(a, b), model(b, a), atol=1e-6)
        near = (a + 0.02 * torch.randn_like(a)).clamp(0, 1)
        assert (model(a, near) < model(a, b)).all()


def test_missing_trunk_key_is_an_error() -> None:
    trunk, heads = _random_files("alex")
    del trunk["features.10.weight"]
    with pytest.raises(RuntimeError, match="10.weight"):
        LPIPS("alex").load_weights(trunk, heads)


def test_missing_weights_raise_unavailable_with_the_url(tmp_path) -> None:
    from dynface.metrics.weights import WeightsUnavailable

    with pytest.raises(WeightsUnavailable, match="alexnet-owt-7be5be79.pth"):
        LPIPS.from_files("alex", weights_dir=tmp_path)


def test_published_hash_prefix_is_checked(tmp_path) -> None:
    spec = METRIC_WEIGHTS["lpips_alex_backbone"].spec
    trunk, _ = _random_files("alex")
    torch.save(trunk, tmp_path / spec.filename)
    digest = hashlib.sha256((tmp_path / spec.filename).read_bytes()).hexdigest()
    assert not digest.startswith("7be5be79")
    with pytest.raises(WeightsCorrupted, match="7be5be79"):
        load_state_dict("lpips_alex_backbone", tmp_path)


def test_metric_entries_keep_their_urls_and_published_hashes() -> None:
    hub = {
        "lpips_alex_backbone": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "lpips_vgg_backbone": "https://download.pytorch.org/models/vgg16-397923af.pth",
        "fid_inception_v3": "https://github.com/mseitzer/pytorch-fid/releases/download/"
        "fid_weights/pt_inception-2015-12-05-6726825d.pth",
    }
    for name, url in hub.items():  # no full sha256: the hash prefix in the file name is checked
        entry = METRIC_WEIGHTS[name]
        assert (entry.spec.url, entry.spec.sha256, entry.spec.size) == (url, None, None)
        assert entry.sha256_prefix == url.rsplit("-", 1)[1].removesuffix(".pth")
    raw = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1"
    heads = {
        "alex": ("df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", 6009),
        "vgg": ("a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", 7289),
    }
    for net, (sha256, size) in heads.items():  # the full sha256 and size are published
        spec = METRIC_WEIGHTS[f"lpips_{net}_lin"].spec
        assert (spec.url, spec.filename) == (f"{raw}/{net}.pth", f"lpips_v0.1_{net}.pth")
        assert (spec.sha256, spec.size) == (sha256, size)
        assert METRIC_WEIGHTS[f"lpips_{net}_lin"].sha256_prefix is None


def test_an_entry_without_sha256_must_carry_its_hash_in_the_file_name() -> None:
    from dynface.metrics import weights as metric_weights
    from dynface.weights import published

    spec = published("https://h", "net.pth", "arch", "a net", name="unchecked", size_range=(1, 2))
    with pytest.raises(ValueError, match="no hash prefix"):
        metric_weights._add(spec)
    assert "unchecked" not in METRIC_WEIGHTS
