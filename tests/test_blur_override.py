"""The blur-level hooks video relies on: estimate s* without sampling, then pass it back."""

from __future__ import annotations

import pytest
import torch

from dynface import Restorer


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tiny nets gain nothing from threads, and on a busy machine threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    return Restorer.from_config("tiny-random", device="cpu")


def _faces() -> torch.Tensor:
    faces = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(5))
    faces[1] = torch.nn.functional.avg_pool2d(faces[1:2], 9, 1, 4)[0]
    return faces


def test_estimate_blur_is_what_restore_uses(tiny):
    faces = _faces()
    s_star = tiny.estimate_blur(faces)
    assert s_star.shape == (2,)
    traces = tiny.restore_aligned(faces, seed=0).traces
    assert [t["s_star"] for t in traces] == pytest.approx(s_star.tolist(), abs=1e-3)
    # Passing the estimate back changes nothing.
    plain = tiny.restore_aligned(faces, seed=0).images
    passed = tiny.restore_aligned(faces, seed=0, s_star=s_star).images
    assert torch.equal(plain, passed)


def test_s_star_override_drives_start_steps_and_output(tiny):
    faces = _faces()
    sharp = tiny.restore_aligned(faces, seed=0, s_star=torch.tensor([0.0, 0.0]))
    blurry = tiny.restore_aligned(faces, seed=0, s_star=torch.tensor([12.0, 12.0]))
    assert [t["s_star"] for t in sharp.traces] == [0.0, 0.0]
    assert [t["s_star"] for t in blurry.traces] == [12.0, 12.0]
    # Blurrier faces start from a noisier step, and the result follows the override.
    assert all(
        b["start_t"] > s["start_t"] for s, b in zip(sharp.traces, blurry.traces, strict=True)
    )
    assert not torch.equal(sharp.images, blurry.images)


def test_estimate_blur_is_none_in_difface_mode():
    difface = Restorer.from_config("tiny-random", device="cpu", overrides={"mode": "difface"})
    assert difface.estimate_blur(_faces()) is None
