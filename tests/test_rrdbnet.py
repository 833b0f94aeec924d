"""Real-ESRGAN's RRDBNet: the reference golden vector and the official files' exact layouts."""

from __future__ import annotations

import json

import pytest
import torch

from dynface.checkpoints import load_into
from dynface.nets import build_rrdbnet

from .conftest import SHARED, TEST_DATA, shared_path

KEYS_FILE = SHARED / "fixtures" / "realesrgan_keys.json"


def test_golden_vector_from_reference_implementation():
    from safetensors import safe_open

    path = shared_path("fixtures", "rrdbnet_tiny_a.safetensors")
    with safe_open(str(path), "pt") as handle:
        config = json.loads(handle.metadata()["config"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    net = build_rrdbnet(config).eval()
    load_into(
        net, {k[len("rrdbnet.") :]: v for k, v in tensors.items() if k.startswith("rrdbnet.")}
    )
    with torch.no_grad():
        out = net(tensors["io.x"])
    assert out.shape == tensors["io.y"].shape
    torch.testing.assert_close(out, tensors["io.y"], atol=1e-5, rtol=0)


@pytest.fixture(scope="module", params=["shared", "repo copy"])
def official_layouts(request):
    path = KEYS_FILE if request.param == "shared" else TEST_DATA / "realesrgan_keys.json"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", ["RealESRGAN_x2plus", "RealESRGAN_x4plus"])
def test_official_files_match_key_for_key(official_layouts, name):
    reference = official_layouts[name]
    with torch.device("meta"):
        net = build_rrdbnet(reference["config"])
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert ours == reference["keys"]
    assert sum(p.numel() for p in net.parameters()) == reference["params"]


def test_official_x2_file_layout_loads_from_params_ema(tmp_path):
    """A file shaped like the release (`params_ema` wrapper, 12 input channels) loads as is."""
    torch.manual_seed(0)
    config = dict(num_feat=8, num_block=1, num_grow_ch=4, scale=2)
    source = build_rrdbnet(config)
    assert source.conv_first.weight.shape[1] == 12
    torch.save({"params_ema": source.state_dict()}, tmp_path / "RealESRGAN_x2plus.pth")
    loaded = load_into(build_rrdbnet(config), tmp_path / "RealESRGAN_x2plus.pth")
    x = torch.rand(1, 3, 6, 10)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))
        assert loaded(x).shape == (1, 3, 12, 20)


def test_unshuffle_order_is_basicsr_order():
    """The x2 model was trained on basicsr's pixel_unshuffle; torch's must order channels alike."""
    x = torch.randn(2, 3, 8, 6)
    b, c, hh, hw = x.shape
    reference = (
        x.view(b, c, hh // 2, 2, hw // 2, 2)
        .permute(0, 1, 3, 5, 2, 4)
        .reshape(b, c * 4, hh // 2, hw // 2)
    )
    assert torch.equal(torch.nn.functional.pixel_unshuffle(x, 2), reference)
