"""Face alignment: a similarity transform from 5 landmarks to the FFHQ-512 template, then a warp.

The transform is the exact least-squares similarity (Umeyama 1991, no reflection) between the
detected landmarks and the FFHQ-512 template (`template()`; docs/restore.md#how-it-works),
scaled to the crop size. Pixels outside
the photo are filled by mirroring it (`cv2.BORDER_REFLECT_101`), as FFHQ's own alignment did, so
the restorer never sees a hard black edge; those pixels map outside the photo when pasted back.
"""

from __future__ import annotations

import cv2
import numpy as np

#: FFHQ-512 landmarks (x, y): left eye, right eye, nose, left and right mouth corner.
FFHQ_512_TEMPLATE = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)
#: Warps that shrink by more than this factor pre-shrink the photo with area averaging first.
_MAX_WARP_SHRINK = 2.0


def template(size: int = 512) -> np.ndarray:
    """The FFHQ 5-point template for a square crop of `size` pixels."""
    return FFHQ_512_TEMPLATE * (size / 512.0)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src onto dst.

    `src`, `dst`: (N, 2) or batched (B, N, 2) points. Returns (2, 3) or (B, 2, 3) matrices.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    single = src.ndim == 2
    if single:
        src, dst = src[None], dst[None]
    if dst.shape[0] == 1 and src.shape[0] > 1:
        dst = np.broadcast_to(dst, src.shape)
    src_mean, dst_mean = src.mean(axis=1, keepdims=True), dst.mean(axis=1, keepdims=True)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = np.einsum("bni,bnj->bij", dst_c, src_c) / src.shape[1]
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones_like(singular)
    sign[:, -1] = np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)
    rotation = u @ (sign[:, :, None] * vt)
    src_var = (src_c**2).sum(axis=(1, 2)) / src.shape[1]
    scale = (singular * sign).sum(axis=1) / np.maximum(src_var, 1e-12)
    linear = scale[:, None, None] * rotation
    translation = dst_mean[:, 0] - np.einsum("bij,bj->bi", linear, src_mean[:, 0])
    matrices = np.concatenate([linear, translation[:, :, None]], axis=2)
    return matrices[0] if single else matrices


def estimate_affine(landmarks: np.ndarray, size: int = 512) -> np.ndarray:
    """(2, 3) similarity that maps photo coordinates onto the aligned crop of `size` pixels."""
    return similarity_transform(landmarks, template(size))


def warp_scale(affine: np.ndarray) -> float:
    """Uniform scale factor of a similarity transform (crop pixels per photo pixel)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(affine)[:2, :2]))))


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a photo to the aligned crop of one face; return (crop (size, size, C), affine (2, 3)).

    Bicubic sampling, mirrored borders. A face much larger than the crop is first shrunk with area
    averaging (no aliasing); the returned affine always maps the original photo's coordinates.
    """
    affine = estimate_affine(landmarks, size)
    return warp_to_crop(image, affine, size), affine


def align_faces(
    image: np.ndarray, landmarks: list[np.ndarray] | np.ndarray, size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned crops (N, size, size, C) and affines (N, 2, 3) for several faces of one photo."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
    affines = similarity_transform(points, template(size)[None])
    crops = [warp_to_crop(image, affine, size) for affine in affines]
    channels = image.shape[2] if image.ndim == 3 else 1
    stacked = np.stack(crops) if crops else np.zeros((0, size, size, channels), image.dtype)
    return stacked, affines


def warp_to_crop(image: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """Apply a photo->crop affine with bicubic sampling, pre-shrinking when it shrinks > 2x."""
    affine = np.asarray(affine, dtype=np.float64)
    shrink = 1.0 / max(warp_scale(affine), 1e-12)
    if shrink > _MAX_WARP_SHRINK:
        factor = _MAX_WARP_SHRINK / shrink
        height, width = image.shape[:2]
        small_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
        # Map small-image coordinates back to the original: x = (x' + 0.5) / f - 0.5.
        fx, fy = width / small_size[0], height / small_size[1]
        to_original = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1]])
        affine = affine @ to_original
    return cv2.warpAffine(
        image, affine, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101
    )
