"""The Python API takes faces the way people hold them and says clearly what it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import dynface
from dynface import Restorer, RestoreResult
from dynface.errors import UsageError
from dynface.inputs import as_face_list


@pytest.fixture(scope="module")
def tiny():
    return Restorer.from_config("tiny-random", device="cpu", overrides={"respacing": "ddim4"})


def _face(seed: int = 0, size: int = 32) -> torch.Tensor:
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


def test_every_common_image_type_gives_the_same_face():
    face = (_face() * 255).round() / 255
    u8 = (face * 255).round().byte()
    hwc = u8.permute(1, 2, 0).numpy()
    forms = [
        face,
        face[None],
        u8,
        u8[None],
        hwc,
        hwc[None],
        hwc.astype(np.float32) / 255,
        hwc.astype(np.float64) / 255,
        hwc.astype(np.uint16) * 257,
        Image.fromarray(hwc),
        [face],
        [hwc],
    ]
    for form in forms:
        (got,) = as_face_list(form)
        assert got.dtype == torch.float32 and got.shape == (3, 32, 32)
        torch.testing.assert_close(got, face, atol=1e-6, rtol=0)


def test_uint8_tensor_is_not_read_as_unit_range(tiny):
    face = _face(1)
    u8 = (face * 255).round().byte()
    s_float = tiny.restore_aligned(face, seed=0).traces[0]["s_star"]
    s_u8 = tiny.restore_aligned(u8, seed=0).traces[0]["s_star"]
    assert s_u8 == pytest.approx(s_float, abs=0.05)
    torch.testing.assert_close(tiny.estimate_blur(u8), torch.tensor([s_float]), atol=0.05, rtol=0)


def test_gray_alpha_and_mixed_sizes():
    gray = np.full((40, 40), 128, np.uint8)
    rgba = np.zeros((16, 16, 4), np.uint8)
    faces = as_face_list([gray, rgba, _face(2, 24)])
    assert [tuple(f.shape) for f in faces] == [(3, 40, 40), (3, 16, 16), (3, 24, 24)]
    assert torch.equal(faces[0][0], faces[0][2])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.rand(1, 3, 16, 16) * 2, "must lie in [0, 1]"),
        (torch.full((3, 16, 16), float("nan")), "NaN or infinite"),
        (torch.full((3, 16, 16), float("inf")), "NaN or infinite"),
        (torch.zeros(0, 3, 16, 16), "empty batch"),
        ([], "empty batch"),
        (np.zeros((3, 16, 16), np.uint8), "channels-last"),
        (torch.zeros(2, 5, 16, 16), "1, 3 or 4 channels"),
        (torch.zeros(3, 4, 4), "too small"),
        ("face.png", "pass a torch tensor"),
        (np.zeros((16, 16, 3), np.int64), "uint8, uint16 or float"),
    ],
)
def test_bad_inputs_are_usage_errors_that_say_why(tiny, bad, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        tiny.restore_aligned(bad, seed=0)
    with pytest.raises(ValueError):
        as_face_list(bad)


def test_a_list_of_mixed_sizes_restores_each_face_at_its_size(tiny):
    faces = [_face(3, 32), (_face(4, 48).permute(1, 2, 0).numpy() * 255).astype(np.uint8)]
    result = tiny.restore_aligned(faces, seed=[7, 9], batch_size=2)
    assert isinstance(result, RestoreResult) and len(result) == 2
    assert [tuple(t.shape) for t in result.tensors()] == [(3, 32, 32), (3, 48, 48)]
    arrays = result.numpy()
    assert arrays[1].shape == (48, 48, 3) and arrays[1].dtype == np.uint8
    images = result.pil()
    assert images[0].size == (32, 32) and images[0].mode == "RGB"
    assert len(result.traces) == 2
    # The second face alone, with its own seed, comes out the same as in the mixed list.
    alone = tiny.restore_aligned(faces[1], seed=[9])
    torch.testing.assert_close(alone.images[0], result[1], atol=1e-4, rtol=0)


def test_same_size_batch_is_one_tensor(tiny):
    result = tiny.restore_aligned(torch.stack([_face(5), _face(6)]), seed=0)
    assert isinstance(result.images, torch.Tensor) and result.images.shape == (2, 3, 32, 32)
    assert result[1].shape == (3, 32, 32)


def test_package_shows_its_public_names():
    names = dir(dynface)
    for name in ("Restorer", "RestoreResult", "FaceTrace", "RestoreConfig", "UsageError"):
        assert name in names
        assert getattr(dynface, name) is not None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((3, 512, 512), np.uint8), "channels-last (H, W, 3), got (3, 512, 512);"),
        (np.zeros((2, 3, 64, 64), np.uint8), "channels-last (H, W, 3), got (2, 3, 64, 64);"),
        (
            torch.zeros(512, 512, 3),
            "channels-first (C, H, W), got (512, 512, 3); use tensor.permute",
        ),
        (torch.zeros(2, 64, 64, 3), "channels-first (C, H, W), got (2, 64, 64, 3)"),
        (torch.zeros(5, 16, 16), "1, 3 or 4 channels, got shape (5, 16, 16)"),
        (np.zeros((16, 16, 2), np.uint8), "1, 3 or 4 channels, got shape (16, 16, 2)"),
    ],
)
def test_shape_errors_name_the_shape_the_user_passed(bad, message):
    with pytest.raises(UsageError) as refused:
        as_face_list(bad)
    assert message in str(refused.value)
