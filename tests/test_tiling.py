"""Tiled upscaling: equal to the untiled output, no seam, bounded tile size, uint8 in and out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dynface.nets import build_rrdbnet
from dynface.tiling import TileSpec, blend_weights, tiled_upscale, window_starts


def smooth_image(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width] / 64.0
    channels = [0.5 + 0.4 * np.sin(3 * xx + yy), 0.5 + 0.4 * np.cos(5 * yy), 0.3 + 0.2 * xx]
    return np.stack(channels, axis=-1).astype(np.float32)


def untiled(net: nn.Module, image: np.ndarray, align: int) -> np.ndarray:
    """The net on the whole image (reflect-padded to its alignment, the padding cropped)."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((0, -height % align), (0, -width % align), (0, 0)), mode="reflect")
    with torch.no_grad():
        out = net(torch.from_numpy(padded).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    return out[: height * net.scale, : width * net.scale]


@pytest.mark.parametrize(
    ("scale", "size", "spec"),
    [
        (4, (70, 101), TileSpec(tile=64, overlap=48)),
        (2, (151, 190), TileSpec(tile=128, overlap=96)),
    ],
)
def test_tiled_equals_untiled(scale, size, spec):
    """Margins wider than the net's reach (about 18 px of input at x4, 36 at x2): same output."""
    torch.manual_seed(0)
    net = build_rrdbnet(dict(num_feat=8, num_block=1, num_grow_ch=4, scale=scale)).eval()
    image = np.random.default_rng(0).random((*size, 3), dtype=np.float32)
    reference = untiled(net, image, net.unshuffle)
    tiled = tiled_upscale(net, image, scale, spec, align=net.unshuffle, out_dtype=np.float32)
    assert min(len(window_starts(side, spec.tile, spec.overlap)) for side in size) > 1
    assert tiled.shape == (size[0] * scale, size[1] * scale, 3)
    assert np.abs(tiled - reference).max() < 1e-4


class LooksDownRight(nn.Module):
    """A net that reaches 24 px down and right (zero beyond the edge), then nearest x2.

    Its error near a tile's right edge has no mirror image at the next tile's left edge, so a
    hard switch between tiles leaves a step of about the full error (0.06 here, measured).
    """

    scale = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = F.avg_pool2d(F.pad(x, (0, 24, 0, 24)), 25, stride=1)
        return F.interpolate(mean, scale_factor=2, mode="nearest")


def test_reach_beyond_the_margin_leaves_no_seam():
    """Tiles differ from the untiled output, but the switch between them is a ramp, not a step."""
    image = np.full((100, 130, 3), 0.5, np.float32)
    net = LooksDownRight()
    reference = untiled(net, image, 1)
    tiled = tiled_upscale(net, image, 2, TileSpec(tile=64, overlap=32), out_dtype=np.float32)
    error = tiled - reference
    assert np.abs(error).max() > 0.04  # the tiles do see their own zero padding
    step = max(np.abs(np.diff(error, axis=0)).max(), np.abs(np.diff(error, axis=1)).max())
    assert step < 0.3 * np.abs(error).max()


def test_blend_weights_sum_to_one():
    starts = window_starts(300, 64, 16, align=2)
    assert starts[0] == 0 and starts[-1] == 300 - 64 and all(s % 2 == 0 for s in starts)
    total = np.zeros(300 * 4)
    for start, weight in zip(starts, blend_weights(starts, 64, 300, 4), strict=True):
        total[start * 4 : (start + 64) * 4] += weight
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


class Recorder(nn.Module):
    """Nearest x2 upscaling that records the shape of every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return F.interpolate(x, scale_factor=2, mode="nearest")


def test_memory_is_bounded_by_the_tile_and_uint8_round_trips():
    """A big photo runs as tiles of at most `tile` px, `batch` at a time; uint8 in, uint8 out."""
    image = np.random.default_rng(1).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    net = Recorder()
    out = tiled_upscale(net, image, 2, TileSpec(tile=96, overlap=16, batch=3))
    assert out.dtype == np.uint8 and out.shape == (600, 1000, 3)
    assert max(shape[0] for shape in net.shapes) <= 3
    assert max(max(shape[2:]) for shape in net.shapes) <= 96
    np.testing.assert_array_equal(out, image.repeat(2, axis=0).repeat(2, axis=1))


def test_out_of_range_output_is_clipped_in_uint8():
    image = np.zeros((16, 16, 3), np.float32)
    out = tiled_upscale(lambda x: F.interpolate(x, scale_factor=2) + 2.0, image, 2)
    assert out.dtype == np.uint8 and (out == 255).all()


def test_bad_tile_settings_are_refused():
    with pytest.raises(ValueError, match="overlap < tile"):
        TileSpec(tile=64, overlap=64)
