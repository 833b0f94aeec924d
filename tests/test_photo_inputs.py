"""`restore_photos` from Python: the inputs people hold, black-and-white photos, bounded memory."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from PIL import Image

import dynface
from dynface.api import Restorer
from dynface.io import read_image

from .conftest import TEST_DATA
from .test_restore_cli import png_header_only


@pytest.fixture(scope="module")
def tiny() -> Restorer:
    return Restorer.from_config("tiny-random", device="cpu", overrides={"respacing": "ddim5"})


class NeverRestores:
    """A restorer that must not be reached."""

    device = "cpu"
    config = {"image_size": 32}

    def restore_aligned(self, *args, **kwargs):
        raise AssertionError("no face should reach the restorer")


def test_the_photo_api_is_exported_and_takes_str_paths(tmp_path, tiny):
    assert {"restore_photos", "RestoreOptions", "PhotoResult"} <= set(dir(dynface))
    results = dynface.restore_photos(
        [str(TEST_DATA / "astronaut_face.png")],
        tiny,
        str(tmp_path / "out"),
        dynface.RestoreOptions(aligned=True),
    )
    assert [type(r) for r in results] == [dynface.PhotoResult]
    assert results[0].status == "ok" and results[0].path == TEST_DATA / "astronaut_face.png"
    one = dynface.restore_photos(str(TEST_DATA / "grace_hopper_face.png"), tiny, tmp_path / "o")
    assert [r.status for r in one] == ["ok"]  # one path, not its characters


def test_a_black_and_white_photo_saved_as_rgb_jpeg_keeps_gray_faces(tmp_path, tiny):
    gray = Image.open(TEST_DATA / "astronaut.png").convert("L").convert("RGB")
    gray.save(tmp_path / "bw.jpg", quality=80)
    assert Image.open(tmp_path / "bw.jpg").mode == "RGB"
    options = dynface.RestoreOptions(upscale=1, seed=0)
    [result] = dynface.restore_photos([tmp_path / "bw.jpg"], tiny, tmp_path / "out", options)
    assert result.status == "ok" and "kept grayscale" in result.message
    face = read_image(tmp_path / "out" / "faces" / "restored" / "bw_00.png").pixels
    assert (face.max(axis=2) - face.min(axis=2)).max() < 2 / 255
    # The colour photo itself is not taken for a gray one.
    assert not read_image(TEST_DATA / "astronaut.png").was_gray


def test_an_oversized_photo_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    """A small PNG that declares 10950 x 10950 px: x2 would be 480 MP, refused undecoded."""
    path = png_header_only(tmp_path / "bomb.png", 10950, 10950)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the image must not be decoded")

    monkeypatch.setattr("dynface.photos.read_image", no_decoding)
    with warnings.catch_warnings():  # and without Pillow's decompression-bomb warning (> 89 MP)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        [result] = dynface.restore_photos([path], NeverRestores(), tmp_path / "out")
    assert result.status == "failed"
    assert "10950x10950 px upscaled x2 would exceed 300 MP" in result.message


def test_a_large_photo_is_held_in_uint8_and_pasted_region_by_region(tmp_path, tiny):
    """3000 x 2000 px at --upscale 2: the arrays a run allocates stay near the uint8 output.

    Measured: 97 MiB here (the output alone is 69 MiB); the float32 path took 1444 MiB.
    """
    canvas = np.full((2000, 3000, 3), 120, np.uint8)
    canvas[700:1212, 1200:1712] = np.asarray(Image.open(TEST_DATA / "astronaut.png"))
    Image.fromarray(canvas).save(tmp_path / "big.png", compress_level=1)
    output_bytes = 6000 * 4000 * 3  # 72 MB as uint8; float32 would be 288 MB
    tracemalloc.start()
    try:
        [result] = dynface.restore_photos(
            [tmp_path / "big.png"], tiny, tmp_path / "out", dynface.RestoreOptions(seed=0)
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.status == "ok", result.message
    assert peak < 2 * output_bytes, f"peak {peak / 2**20:.0f} MiB of numpy/Python memory"
    final = read_image(tmp_path / "out" / "final" / "big.png", dtype=np.uint8).pixels
    assert final.shape == (4000, 6000, 3)
    assert np.abs(final[:100, :100].astype(int) - 120).max() <= 1  # background upscaled as is


def _exif_photo(path, profile: bytes) -> tuple[int, int]:
    """A JPEG stored sideways (EXIF orientation 6) with camera, date, GPS, pixel size, a profile;
    returns its upright (width, height)."""
    upright = Image.open(TEST_DATA / "astronaut.png").convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
    exif = Image.Exif()
    exif[0x010F], exif[0x0112], exif[0x010E] = "Kodak", 6, "Grandma, 1962"
    details = exif.get_ifd(0x8769)
    details[0x9003], details[0xA002], details[0xA003] = "1962:07:04 12:00:00", *stored.size
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 24.0)
    stored.save(path, exif=exif.tobytes(), icc_profile=profile, quality=92)
    return upright.size


def test_the_restored_photo_keeps_its_exif_and_colour_profile(tmp_path, tiny):
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    width, height = _exif_photo(tmp_path / "grandma.jpg", srgb)
    options = dynface.RestoreOptions(upscale=2, seed=0)
    [result] = dynface.restore_photos([tmp_path / "grandma.jpg"], tiny, tmp_path / "out", options)
    assert result.status == "ok", result.message
    final = Image.open(tmp_path / "out" / "final" / "grandma.png")
    exif = final.getexif()
    assert final.size == (2 * width, 2 * height)  # written upright ...
    assert exif[0x0112] == 1  # ... so the orientation says upright
    assert (exif[0x010F], exif[0x010E]) == ("Kodak", "Grandma, 1962")
    details = exif.get_ifd(0x8769)
    assert details[0x9003] == "1962:07:04 12:00:00"  # the date taken
    assert (details[0xA002], details[0xA003]) == final.size  # the stated size is the new one
    assert exif.get_ifd(0x8825)[2] == (48.0, 51.0, 24.0)  # where it was taken
    assert exif[0x0131].startswith("dynface ")  # the file says it was restored
    assert final.info["icc_profile"] == srgb


def test_a_profile_the_rgb_output_cannot_carry_is_said(tmp_path, tiny):
    from PIL import ImageCms

    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    _exif_photo(tmp_path / "lab.jpg", lab)
    options = dynface.RestoreOptions(upscale=1, seed=0)
    [result] = dynface.restore_photos([tmp_path / "lab.jpg"], tiny, tmp_path / "out", options)
    assert result.status == "ok" and "Lab colour profile not carried" in result.message
    assert "icc_profile" not in Image.open(tmp_path / "out" / "final" / "lab.png").info
