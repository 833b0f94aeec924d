"""Paste restored faces back into the upscaled photo with a feathered mask, region by region.

Each aligned face goes back through the inverse of its alignment transform, scaled to the
upscaled photo. The blend mask is the crop's square, eroded by 1/16 of its side and feathered
by a Gaussian of 1/64 of its side, warped by the same transform: for a similarity warp this equals
eroding and feathering the warped mask in proportion to the face's size, at a fraction of the
cost. Only the face's footprint is warped and blended (in float32), so a large uint8 photo is
never converted as a whole and memory stays bounded by the photo plus one face region.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

#: Mask erosion and Gaussian feather, as fractions of the aligned crop's side.
ERODE_FRACTION = 1 / 16
FEATHER_FRACTION = 1 / 64
#: Output rows per tile of the background upscale (a tile is this many rows of the output).
TILE_ROWS = 512
#: Input rows read beyond a tile's footprint: bicubic needs 2 on each side; 1 more for rounding.
_TILE_MARGIN = 3


def output_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(width, height) of a photo of `size` (width, height) upscaled by `scale`."""
    if scale <= 0:
        raise ValueError(f"upscale must be positive, got {scale}")
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def upscale_background(image: np.ndarray, scale: float) -> np.ndarray:
    """Bicubic upscale of an (H, W, C) uint8 or float image by `scale`, tile by tile; same dtype.

    The result equals a whole-image bicubic resize (`cv2.INTER_CUBIC`, replicated borders), but
    only one horizontal strip of the input is resampled at a time, so nothing but the output is
    allocated at full size. Downscaling (scale < 1) averages areas instead (no aliasing).
    """
    height, width = image.shape[:2]
    out_w, out_h = output_size((width, height), scale)
    if (out_w, out_h) == (width, height):
        return image.copy()
    if out_w < width and out_h < height:
        return cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_AREA)
    out = np.empty((out_h, out_w) + image.shape[2:], dtype=image.dtype)
    sx, sy = width / out_w, height / out_h
    for top in range(0, out_h, TILE_ROWS):
        bottom = min(top + TILE_ROWS, out_h)
        # Output row y samples input row (y + 0.5) * sy - 0.5; read the rows this tile needs.
        first = max(0, int(np.floor((top + 0.5) * sy - 0.5)) - _TILE_MARGIN)
        last = min(height, int(np.ceil((bottom - 0.5) * sy - 0.5)) + _TILE_MARGIN + 1)
        to_input = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, (top + 0.5) * sy - 0.5 - first]])
        out[top:bottom] = cv2.warpAffine(
            image[first:last],
            to_input,
            (out_w, bottom - top),
            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        ).reshape(out[top:bottom].shape)
    if out.dtype.kind == "f":
        np.clip(out, 0.0, 1.0, out=out)
    return out


def crop_to_output(
    affine: np.ndarray, photo_size: tuple[int, int], output_size: tuple[int, int]
) -> np.ndarray:
    """(2, 3) map from aligned-crop pixels to the output photo, given the photo->crop affine.

    Sizes are (width, height); the output is the photo resized as `cv2.resize` does it, so a photo
    pixel x lands at (x + 0.5) * s - 0.5 in the output.
    """
    inverse = cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))
    scale = np.array(output_size, dtype=np.float64) / np.array(photo_size, dtype=np.float64)
    result = inverse * scale[:, None]
    result[:, 2] += 0.5 * (scale - 1.0)
    return result


@lru_cache(maxsize=4)
def crop_mask(size: int) -> np.ndarray:
    """Feathered blend mask in crop space: 1 inside, 0 well before the crop's edge."""
    margin = max(1, round(size * ERODE_FRACTION))
    mask = np.zeros((size, size), dtype=np.float32)
    mask[margin : size - margin, margin : size - margin] = 1.0
    sigma = max(0.5, size * FEATHER_FRACTION)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma)
    mask.setflags(write=False)
    return mask


def face_region(to_out: np.ndarray, size: int, out_size: tuple[int, int]) -> tuple[int, ...]:
    """(x0, y0, x1, y1): the output pixels a crop of `size` covers under `to_out`, clipped."""
    corners = np.array([[-0.5, -0.5, 1], [size, -0.5, 1], [-0.5, size, 1], [size, size, 1]])
    mapped = corners @ to_out.T
    x0, y0 = np.maximum(np.floor(mapped.min(axis=0)).astype(int), 0)
    x1 = min(int(np.ceil(mapped[:, 0].max())) + 1, out_size[0])
    y1 = min(int(np.ceil(mapped[:, 1].max())) + 1, out_size[1])
    return int(x0), int(y0), x1, y1


def paste_faces(
    out: np.ndarray,
    faces: Sequence[np.ndarray] | np.ndarray,
    affines: Sequence[np.ndarray] | np.ndarray,
    photo_size: tuple[int, int],
) -> None:
    """Blend aligned faces (N, S, S, 3), float in [0, 1], into `out` in place, face by face.

    `out` is the upscaled photo (H', W', 3), uint8 or float in [0, 1]; `affines` map the
    original photo of `photo_size` (width, height) to each crop, as `align_face` returns them.
    """
    out_h, out_w = out.shape[:2]
    peak = 255.0 if out.dtype == np.uint8 else 1.0
    for face, affine in zip(faces, affines, strict=True):
        face = np.asarray(face, dtype=np.float32)
        size = face.shape[0]
        to_out = crop_to_output(affine, photo_size, (out_w, out_h))
        x0, y0, x1, y1 = face_region(to_out, size, (out_w, out_h))
        if x1 <= x0 or y1 <= y0:
            continue
        to_roi = to_out.copy()
        to_roi[:, 2] -= (x0, y0)
        roi_size = (x1 - x0, y1 - y0)
        warped = cv2.warpAffine(
            face, to_roi, roi_size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
        mask = cv2.warpAffine(
            crop_mask(size), to_roi, roi_size, flags=cv2.INTER_LINEAR, borderValue=0.0
        )
        roi = out[y0:y1, x0:x1].astype(np.float32) / peak
        roi += mask[..., None] * (warped.reshape(roi.shape) - roi)
        np.clip(roi, 0.0, 1.0, out=roi)
        out[y0:y1, x0:x1] = np.round(roi * 255.0) if peak == 255.0 else roi


def paste_back(
    background: np.ndarray,
    faces: Sequence[np.ndarray] | np.ndarray,
    affines: Sequence[np.ndarray] | np.ndarray,
    upscale: float | None = None,
    photo_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Blend aligned faces (N, S, S, 3) into a copy of the upscaled background (H', W', 3).

    `affines` map the original photo to each crop (as `align_face` returns them). The photo size
    (width, height) is `photo_size`, or the background's size divided by `upscale`. A float
    background gives float32 in [0, 1]; a uint8 background gives uint8.
    """
    out_h, out_w = background.shape[:2]
    if photo_size is None:
        factor = 1.0 if upscale is None else upscale
        photo_size = (max(1, round(out_w / factor)), max(1, round(out_h / factor)))
    if background.dtype == np.uint8:
        out = background.copy()
    else:
        out = np.clip(np.asarray(background, dtype=np.float32), 0.0, 1.0)  # a new array
    paste_faces(out, faces, affines, photo_size)
    return out
