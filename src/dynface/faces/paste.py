"""Paste restored faces back into the (bicubic-upscaled) photo with a feathered mask.

Each aligned face goes back through the inverse of its alignment transform, scaled to the
upscaled photo. The blend mask is the crop's square, eroded by 1/16 of its side and feathered
by a Gaussian of 1/64 of its side, warped by the same transform: for a similarity warp this equals
eroding and feathering the warped mask in proportion to the face's size, at a fraction of the
cost. Only the face's footprint is warped, so large photos with many faces stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

#: Mask erosion and Gaussian feather, as fractions of the aligned crop's side.
ERODE_FRACTION = 1 / 16
FEATHER_FRACTION = 1 / 64


def upscale_image(image: np.ndarray, upscale: float) -> np.ndarray:
    """Bicubic upscale of a float (H, W, 3) image in [0, 1] by `upscale` (1 gives a copy)."""
    if upscale <= 0:
        raise ValueError(f"upscale must be positive, got {upscale}")
    height, width = image.shape[:2]
    size = (max(1, round(width * upscale)), max(1, round(height * upscale)))
    if size == (width, height):
        return image.astype(np.float32, copy=True)
    resized = cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
    return np.clip(resized, 0.0, 1.0)


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


def paste_back(
    background: np.ndarray,
    faces: Sequence[np.ndarray] | np.ndarray,
    affines: Sequence[np.ndarray] | np.ndarray,
    upscale: float | None = None,
    photo_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Blend aligned faces (N, S, S, 3) into the upscaled background (H', W', 3); return a copy.

    `affines` map the original photo to each crop (as `align_face` returns them). The photo size
    (width, height) is `photo_size`, or the background's size divided by `upscale`.
    """
    out = np.array(background, dtype=np.float32, copy=True)
    out_h, out_w = out.shape[:2]
    if photo_size is None:
        factor = 1.0 if upscale is None else upscale
        photo_size = (max(1, round(out_w / factor)), max(1, round(out_h / factor)))
    for face, affine in zip(faces, affines, strict=True):
        face = np.asarray(face, dtype=np.float32)
        size = face.shape[0]
        to_out = crop_to_output(affine, photo_size, (out_w, out_h))
        corners = np.array([[-0.5, -0.5, 1], [size, -0.5, 1], [-0.5, size, 1], [size, size, 1]])
        mapped = corners @ to_out.T
        x0, y0 = np.maximum(np.floor(mapped.min(axis=0)).astype(int), 0)
        x1 = min(int(np.ceil(mapped[:, 0].max())) + 1, out_w)
        y1 = min(int(np.ceil(mapped[:, 1].max())) + 1, out_h)
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
        roi = out[y0:y1, x0:x1]
        roi += mask[..., None] * (warped.reshape(roi.shape) - roi)
    return np.clip(out, 0.0, 1.0, out=out)
