"""Real-ESRGAN's weight files: registered with their release checksums, trusted like the others."""

from __future__ import annotations

import pytest

from dynface.background import make_background_upsampler


def test_official_files_are_registered_with_their_release_checksums():
    from dynface import weights

    for name, version in (("RealESRGAN_x2plus", "v0.2.1"), ("RealESRGAN_x4plus", "v0.1.0")):
        spec = weights.get_spec(name)
        assert spec.url.endswith(f"xinntao/Real-ESRGAN/releases/download/{version}/{name}.pth")
        assert spec.sha256 is not None and spec.size is not None


def test_realesrgan_without_its_file_offline_fails_before_any_work():
    from dynface.weights import WeightsUnavailable

    with pytest.raises(WeightsUnavailable, match="RealESRGAN_x4plus.pth"):
        make_background_upsampler("realesrgan", None, "cpu", scale=4)


def test_a_tampered_file_is_refused_by_its_sha256(tmp_path):
    from dynface.weights import WeightsCorrupted, get_spec

    spec = get_spec("RealESRGAN_x2plus")
    (tmp_path / spec.filename).write_bytes(b"not the release file")
    with pytest.raises(WeightsCorrupted, match="sha256"):
        make_background_upsampler("realesrgan", None, "cpu", weights_dir=tmp_path, scale=2)


def test_auto_without_downloaded_weights_says_how_to_get_them():
    upsampler = make_background_upsampler("auto", None, "cpu", scale=2)
    assert upsampler.name == "bicubic"
    assert "RealESRGAN_x2plus is not downloaded" in upsampler.note
    assert "`dynface weights download RealESRGAN_x2plus`" in upsampler.note
