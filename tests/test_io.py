"""Image I/O: every odd input becomes RGB in [0, 1] or a clear error; writes never clobber."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dynface.io import ImageReadError, list_images, read_image, write_image


def test_gray_rgba_and_16bit_become_rgb(tmp_path):
    Image.fromarray(np.full((10, 12), 128, np.uint8), "L").save(tmp_path / "gray.png")
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :6, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((10, 12), 65535 // 2, np.uint16)).save(tmp_path / "deep.png")

    gray = read_image(tmp_path / "gray.png")
    assert gray.pixels.shape == (10, 12, 3) and gray.was_gray
    assert np.allclose(gray.pixels, 128 / 255)

    rgba_img = read_image(tmp_path / "rgba.png")
    assert rgba_img.had_alpha
    assert np.allclose(rgba_img.pixels[0, 0], [1, 0, 0])  # opaque red
    assert np.allclose(rgba_img.pixels[0, -1], [1, 1, 1])  # transparent: white background

    deep = read_image(tmp_path / "deep.png")
    assert deep.bit_depth == 16 and np.allclose(deep.pixels, 0.5, atol=1e-3)


def test_bad_files_raise_a_clear_error(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(tmp_path / "notes.png")
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="larger than"):
        read_image(tmp_path / "full.jpg", max_pixels=100)


def test_write_is_atomic_and_does_not_overwrite(tmp_path):
    target = tmp_path / "out" / "face.png"
    pixels = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    write_image(target, pixels)
    assert np.abs(read_image(target).pixels - pixels).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_image(target, np.zeros((8, 8, 3)))
    write_image(target, np.zeros((8, 8, 3)), overwrite=True)
    assert read_image(target).pixels.max() == 0
    assert [p.name for p in target.parent.iterdir()] == ["face.png"]


def test_list_images_expands_folders_and_globs(tmp_path):
    for name in ("b.png", "a.jpg", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images([tmp_path])] == ["a.jpg", "b.png"]
    assert [p.name for p in list_images([str(tmp_path / "*.png")])] == ["b.png"]


def test_exif_orientation_is_applied(tmp_path):
    """A camera JPEG stored sideways with orientation 6 is read upright (rotated 90° clockwise)."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "sideways.png", exif=exif)
    upright = read_image(tmp_path / "sideways.png").pixels
    assert upright.shape == (40, 20, 3)
    assert upright[:10].mean() > 0.99 and upright[10:].mean() < 0.01  # the band is now on top
