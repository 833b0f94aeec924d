"""Background upsampler: Real-ESRGAN (random tiny weights here) or bicubic, chosen as asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynface.background import (
    BicubicUpsampler,
    RealESRGANUpsampler,
    make_background_upsampler,
)
from dynface.errors import UsageError
from dynface.nets import build_rrdbnet

TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
RANDOM_SECTION = {
    "x2": {"weights": "random", "params": {"scale": 2, **TINY}},
    "x4": {"weights": "random", "params": {"scale": 4, **TINY}},
}


def photo(height: int = 37, width: int = 50) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("scale", "network"), [(1.0, 2), (1.5, 2), (2.0, 2), (2.5, 4), (3.0, 4), (4.0, 4)]
)
def test_any_factor_from_1_to_4_uses_the_right_network(scale, network):
    upsampler = make_background_upsampler("realesrgan", RANDOM_SECTION, "cpu", scale=scale)
    assert isinstance(upsampler, RealESRGANUpsampler)
    out, report = upsampler.upscale(photo(), scale)
    assert out.dtype == np.uint8
    assert out.shape == (round(37 * scale), round(50 * scale), 3)
    assert report.upsampler == "realesrgan" and report.seconds > 0
    assert upsampler.network_scale(scale) == network
    assert set(upsampler._nets) == {network}  # only the network needed was built


def test_real_esrgan_output_is_the_networks_output():
    """At the network's own scale the background is exactly RRDBNet's output, rounded."""
    upsampler = make_background_upsampler("realesrgan", RANDOM_SECTION, "cpu", scale=2)
    image = photo()
    out, _ = upsampler.upscale(image, 2)
    net = upsampler.network(2)
    padded = np.pad(image, ((0, 1), (0, 0), (0, 0)), mode="reflect")  # 37 rows -> even
    with torch.no_grad():
        direct = net(torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255)
    expected = (direct[0].permute(1, 2, 0).numpy()[:74] * 255 + 0.5).clip(0, 255).astype(np.uint8)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_weights_from_a_release_shaped_file(tmp_path):
    """A `params_ema` .pth named in the config section loads and is used."""
    torch.manual_seed(3)
    source = build_rrdbnet({"scale": 4, **TINY})
    path = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": source.state_dict()}, path)
    section = {"x4": {"weights": str(path), "params": {"scale": 4, **TINY}}}
    upsampler = make_background_upsampler("realesrgan", section, "cpu", scale=4)
    upsampler.upscale(photo(16, 16), 4)
    for key, value in source.state_dict().items():
        assert torch.equal(upsampler.network(4).state_dict()[key], value)


def test_none_is_the_bicubic_resize():
    upsampler = make_background_upsampler("none", RANDOM_SECTION, "cpu")
    assert isinstance(upsampler, BicubicUpsampler)
    out, report = upsampler.upscale(photo(), 2)
    assert out.shape == (74, 100, 3) and report.upsampler == "bicubic"


def test_auto_on_a_cpu_keeps_bicubic_and_says_why():
    upsampler = make_background_upsampler("auto", RANDOM_SECTION, "cpu")
    assert isinstance(upsampler, BicubicUpsampler)
    _, report = upsampler.upscale(photo(), 2)
    assert "no GPU" in report.note and "--bg-upsampler realesrgan" in report.note


def test_auto_with_a_missing_weight_path_keeps_bicubic_and_says_why(tmp_path):
    section = {"x2": {"weights": str(tmp_path / "absent.pth"), "params": {"scale": 2}}}
    upsampler = make_background_upsampler("auto", section, "cpu")
    assert isinstance(upsampler, BicubicUpsampler)
    assert upsampler.note == f"auto: {tmp_path / 'absent.pth'} does not exist"


def test_bf16_stays_close_to_fp32():
    fp32 = make_background_upsampler("realesrgan", RANDOM_SECTION, "cpu", "fp32")
    bf16 = make_background_upsampler("realesrgan", RANDOM_SECTION, "cpu", "bf16")
    assert bf16.dtype == torch.bfloat16
    image = photo()
    a, _ = fp32.upscale(image, 2)
    b, _ = bf16.upscale(image, 2)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 8


def test_unknown_choice_is_a_usage_error():
    with pytest.raises(UsageError, match="realesrgan"):
        make_background_upsampler("esrgan")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"background.x2.params.scale": 4}, "background.x2.params.scale must be 2"),
        ({"background.x4.params.num_feet": 8}, "unknown background.x4.params key(s) num_feet"),
        ({"background.x3": {}}, "unknown config key(s) background.x3"),
        ({"background.tile": 4}, "background.tile must be an integer"),
    ],
)
def test_bad_background_config_names_the_key(override, message):
    from dynface.config import ConfigError, load_config

    with pytest.raises(ConfigError) as err:
        load_config("tiny-random", override)
    assert message in str(err.value)


def test_presets_name_the_official_files_and_tiny_random_nets():
    from dynface.config import load_config

    assert load_config("default")["background"]["x2"]["weights"] == "RealESRGAN_x2plus"
    assert load_config("default")["background"]["x4"]["weights"] == "RealESRGAN_x4plus"
    tiny = load_config("tiny-random")["background"]
    assert tiny["x2"]["weights"] == tiny["x4"]["weights"] == "random"


def _tiled(backend: str, tile: int = 32) -> RealESRGANUpsampler:
    section = {**RANDOM_SECTION, "tile": tile, "overlap": 8}
    upsampler = make_background_upsampler("realesrgan", section, "cpu", scale=4, backend=backend)
    assert isinstance(upsampler, RealESRGANUpsampler)
    return upsampler


def test_real_esrgan_runs_on_the_cpu_runtime_with_one_graph_for_every_tile(monkeypatch):
    pytest.importorskip("onnxruntime")
    from dynface.backends import onnx_export

    exported = []
    real = onnx_export.export_onnx

    def spy(net, inputs, path):
        exported.append(tuple(inputs[0].shape))
        real(net, inputs, path)

    monkeypatch.setattr(onnx_export, "export_onnx", spy)
    image = photo(37, 50)  # tiles of 32 with an overlap of 8: six tiles, all full size
    on_torch, torch_report = _tiled("torch").upscale(image, 4)
    upsampler = _tiled("onnxruntime")
    on_runtime, report = upsampler.upscale(image, 4)
    assert torch_report.backend == "torch"
    assert report.backend.startswith("onnxruntime") and report.precision == "fp32"
    assert np.abs(on_runtime.astype(int) - on_torch.astype(int)).max() <= 1
    small = photo(20, 24)  # smaller than a tile: edge-padded to 32x32, the output cropped
    out, _ = upsampler.upscale(small, 4)
    assert exported == [(1, 3, 32, 32)]  # one graph served both photos
    net = upsampler.network(4).net.net  # FixedTiles -> CompiledNet -> RRDBNet
    padded = np.pad(small, ((0, 12), (0, 8), (0, 0)), mode="edge")
    with torch.no_grad():
        direct = net(torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255)
    expected = (direct[0].permute(1, 2, 0).numpy()[:80, :96] * 255 + 0.5).clip(0, 255)
    assert out.shape == (80, 96, 3)
    assert np.abs(out.astype(int) - expected.astype(np.uint8).astype(int)).max() <= 1
