"""Tiled inference for upscaling networks: bounded memory, no seams between tiles.

The photo is cut into equal overlapping windows. Where two windows overlap, each one's output is
ignored within a margin of its own edge (a conv net sees zero padding there, so the output is
wrong) and the two outputs are cross-faded linearly over the rest of the overlap (ours: the
reference Real-ESRGAN tiler crops hard, and a net whose receptive field is wider than the margin
then leaves a visible step). When the margin covers the net's receptive field the result is the
untiled output exactly. Windows are run one row of tiles at a time and finished rows are written
straight into the output, so memory holds one input tile batch and one band of output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

Net = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class TileSpec:
    """Tile side and overlap in input pixels; `batch` tiles of one row run together."""

    tile: int = 256
    overlap: int = 32
    batch: int = 1

    def __post_init__(self) -> None:
        if self.tile < 8 or not 0 <= self.overlap < self.tile or self.batch < 1:
            raise ValueError(
                f"tiles need tile >= 8, 0 <= overlap < tile and batch >= 1, got {self}"
            )


def window_starts(length: int, window: int, overlap: int, align: int = 1) -> list[int]:
    """Evenly spaced starts of `window`-long windows covering `length`, multiples of `align`."""
    if window >= length:
        return [0]
    count = math.ceil((length - window) / (window - overlap)) + 1
    spots = np.linspace(0, length - window, count)
    return sorted({int(round(s / align)) * align for s in spots})


def blend_weights(starts: list[int], window: int, length: int, scale: int) -> list[np.ndarray]:
    """Per window, its weight over its `window * scale` output pixels; they sum to 1 everywhere.

    In the overlap with a neighbour the weight is 0 within 3/8 of the overlap from the window's
    edge (the most accurate pixels are those farthest from any tile edge) and ramps linearly to 1
    across the middle quarter, so the switch from one tile to the next leaves no step.
    """
    size = window * scale
    position = np.arange(size, dtype=np.float64) + 0.5
    raw = []
    for k, start in enumerate(starts):
        weight = np.ones(size)
        if k > 0:
            weight = np.minimum(weight, _ramp(position, starts[k - 1] + window - start, scale))
        if k + 1 < len(starts):
            weight = np.minimum(
                weight, _ramp(size - position, start + window - starts[k + 1], scale)
            )
        raw.append(weight)
    total = np.zeros(length * scale)
    for start, weight in zip(starts, raw, strict=True):
        total[start * scale : start * scale + size] += weight
    total = np.maximum(total, 1e-12)
    return [
        (w / total[s * scale : s * scale + size]).astype(np.float32)
        for s, w in zip(starts, raw, strict=True)
    ]


def _ramp(distance: np.ndarray, overlap: int, scale: int) -> np.ndarray:
    """0 up to 3/8 of `overlap` from the edge, then linear up to 1 over its middle quarter."""
    margin = overlap * 3 // 8 * scale
    width = max(overlap * scale - 2 * margin, 1)
    return np.clip((distance - margin) / width, 0.0, 1.0)


def tiled_upscale(
    net: Net,
    image: np.ndarray,
    scale: int,
    spec: TileSpec | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    align: int = 1,
    out_dtype: type = np.uint8,
) -> np.ndarray:
    """Run `net` (B, 3, h, w) in [0, 1] -> (B, 3, h*scale, w*scale) over an (H, W, 3) image.

    `image` is uint8 or float in [0, 1]; the output is (H*scale, W*scale, 3), uint8 (rounded,
    clipped) or float32 (as the net gave it). Sizes not divisible by `align` (the net's
    pixel-unshuffle) are reflect-padded and the padding is cropped from the output.
    """
    spec = spec or TileSpec()
    height, width = image.shape[:2]
    padded = _pad_to_multiple(image, align)
    rows, cols = padded.shape[:2]
    win_h = min(rows, spec.tile // align * align)
    win_w = min(cols, spec.tile // align * align)
    ys = window_starts(rows, win_h, spec.overlap, align)
    xs = window_starts(cols, win_w, spec.overlap, align)
    wy = blend_weights(ys, win_h, rows, scale)
    wx = blend_weights(xs, win_w, cols, scale)
    out = np.empty((height * scale, width * scale, 3), dtype=out_dtype)
    pending = np.zeros((0, cols * scale, 3), np.float32)
    for j, y0 in enumerate(ys):
        band = np.zeros((win_h * scale, cols * scale, 3), np.float32)
        band[: len(pending)] = pending
        strip = padded[y0 : y0 + win_h]
        for first in range(0, len(xs), spec.batch):
            group = xs[first : first + spec.batch]
            tiles = _run(net, [strip[:, x0 : x0 + win_w] for x0 in group], device, dtype)
            for x0, tile, weight in zip(group, tiles, wx[first : first + spec.batch], strict=True):
                band[:, x0 * scale : (x0 + win_w) * scale] += (
                    tile * (wy[j][:, None] * weight)[..., None]
                )
        done = (ys[j + 1] - y0) * scale if j + 1 < len(ys) else len(band)
        _write_rows(out, y0 * scale, band[:done], out_dtype)
        pending = band[done:]
    return out


def _run(
    net: Net, tiles: list[np.ndarray], device: torch.device | str, dtype: torch.dtype
) -> list[np.ndarray]:
    """One batch of equal (h, w, 3) tiles through `net`; (h*s, w*s, 3) float32 arrays back."""
    batch = torch.from_numpy(np.stack(tiles)).to(device)
    if batch.dtype == torch.uint8:
        batch = batch.to(dtype) / 255.0
    batch = batch.permute(0, 3, 1, 2).to(dtype).contiguous()
    with torch.inference_mode():
        result = net(batch)
    return list(result.float().permute(0, 2, 3, 1).cpu().numpy())


def _write_rows(out: np.ndarray, top: int, rows: np.ndarray, out_dtype: type) -> None:
    """Copy finished output rows into `out`, cropping the alignment padding."""
    rows = rows[: max(0, out.shape[0] - top), : out.shape[1]]
    if out_dtype == np.uint8:
        rows = np.clip(rows * 255.0 + 0.5, 0, 255)
    out[top : top + len(rows)] = rows


def _pad_to_multiple(image: np.ndarray, align: int) -> np.ndarray:
    """Reflect-pad bottom and right so both sides are multiples of `align`."""
    height, width = image.shape[:2]
    extra_h, extra_w = -height % align, -width % align
    if not extra_h and not extra_w:
        return image
    mode = "reflect" if min(height, width) > align else "edge"
    return np.pad(image, ((0, extra_h), (0, extra_w), (0, 0)), mode=mode)
