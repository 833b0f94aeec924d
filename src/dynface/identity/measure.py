"""Identity distance between two face images, measured fairly: both faces aligned to the FFHQ
template, the sharper one blurred to the other's blur level, then dlib's ResNet embedding.

- Faces are found by dynface's own detector (RetinaFace, `dynface.faces.detect`), which still
  finds blurred, small and compressed faces where dlib's HOG detector gives up, and aligned to
  512 px by its 5 landmarks (`dynface.faces.align`); crops already aligned are only resized.
- Blur levels s* come from the shipped blur-level estimator (`learned_blur_level`, px at 512).
  The sharper face is blurred by a Gaussian of MATCH_GAIN * sqrt(s_hi^2 - s_lo^2) px (ours): a
  sharp restored face and its blurred input are then compared at one sharpness, which separates
  same and other people better than comparing them as they are (docs/identity.md).
- A face blurred past MAX_BLUR_LEVEL is not measured: identity cannot be told there.
- The embedding runs on the face box dlib's HOG detector draws on an aligned 512 crop,
  (100, 160)-(402, 458), the mean over 39 CelebRef-HQ crops (ours).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import torch

from dynface.faces.align import align_face

#: Side of the aligned crops faces are measured on (the estimator's and the box's scale).
SIZE = 512
#: dlib's HOG face box on an FFHQ-aligned 512 crop (left, top, right, bottom).
TEMPLATE_BOX = (100, 160, 402, 458)
#: The smallest face (RetinaFace box side, px) worth measuring.
MIN_FACE_PX = 24.0
#: Gain on the blur-level gap when blurring the sharper face (calibrated in docs/identity.md).
MATCH_GAIN = 1.0
#: Above this blur level (s*, px at 512) a face says too little about who it is: same and other
#: people are told apart at 0.55-0.79 balanced accuracy there (docs/identity.md), so no distance.
MAX_BLUR_LEVEL = 7.5


@dataclass(frozen=True)
class IdentityCheck:
    """One identity measurement: the distance (None when no face could be measured) and why."""

    distance: float | None
    reason: str | None = None


@dataclass(frozen=True)
class Face:
    """A face ready to measure: its aligned 512 crop (RGB uint8) and its blur level s*."""

    crop: np.ndarray
    s_star: float


@lru_cache(maxsize=1)
def _detector() -> Any:
    from dynface.faces.detect import FaceDetector

    return FaceDetector(min_side=160, refine=False)


@lru_cache(maxsize=1)
def _dlib_models() -> Any:
    from dynface.metrics.face import DlibFaces

    return DlibFaces()


def as_rgb_uint8(image: Any) -> np.ndarray:
    """HxWx3 uint8 RGB from a numpy array (gray, RGB or RGBA; uint8, uint16 or float in [0, 1])
    or a PIL image."""
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = (np.clip(np.nan_to_num(array.astype(np.float64)), 0, 1) * 255).round()
        array = array.astype(np.uint8)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


def has_face(image: np.ndarray) -> bool:
    """True when RetinaFace finds a face of at least MIN_FACE_PX in an RGB uint8 image."""
    return any(face.size >= MIN_FACE_PX for face in _detector().detect(image))


def aligned_crop(image: np.ndarray) -> np.ndarray | None:
    """The largest face of an RGB uint8 photo or crop, aligned to 512 px; None when none."""
    faces = [face for face in _detector().detect(image) if face.size >= MIN_FACE_PX]
    if not faces:
        return None
    crop, _ = align_face(image, faces[0].landmarks, SIZE)
    return np.ascontiguousarray(np.clip(crop, 0, 255).astype(np.uint8))


def resized(crop: np.ndarray) -> np.ndarray:
    """An aligned crop of any size at 512 px."""
    if crop.shape[0] == SIZE:
        return crop
    interpolation = cv2.INTER_AREA if crop.shape[0] > SIZE else cv2.INTER_CUBIC
    return cv2.resize(crop, (SIZE, SIZE), interpolation=interpolation)


def blur_level(crop: np.ndarray) -> float:
    """s* (px at 512) of an aligned 512 crop, by the shipped blur-level estimator."""
    from dynface.method.learned_se import learned_blur_level

    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
    return float(learned_blur_level(x)[0])


def face(crop: np.ndarray, s_star: float | None = None) -> Face:
    """A `Face` of an aligned 512 crop, its s* estimated unless given."""
    return Face(crop, blur_level(crop) if s_star is None else float(s_star))


def embedding(crop: np.ndarray, sigma: float = 0.0) -> np.ndarray:
    """dlib's 128-D embedding of an aligned 512 crop, blurred first by `sigma` px."""
    import dlib

    if sigma > 0:
        crop = cv2.GaussianBlur(crop, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    models = _dlib_models()
    shape = models.shape(crop, dlib.rectangle(*TEMPLATE_BOX))
    return np.array(models.encoder.compute_face_descriptor(crop, shape), dtype=np.float64)


def matching_blur(sharper: float, blurrier: float) -> float:
    """The Gaussian (px at 512) that brings a face of blur level `sharper` to `blurrier`."""
    return MATCH_GAIN * math.sqrt(max(blurrier**2 - sharper**2, 0.0))


def too_degraded(measured: Face, name: str) -> IdentityCheck | None:
    """The check to report when a face is too blurred to judge identity, else None."""
    if measured.s_star <= MAX_BLUR_LEVEL:
        return None
    return IdentityCheck(
        None,
        f"the {name} is too degraded to judge identity (blur level {measured.s_star:.1f} px, "
        f"over {MAX_BLUR_LEVEL:g})",
    )


def face_distance(a: Face, b: Face) -> float:
    """The identity distance of two measured faces, the sharper blurred to the other's level."""
    sharp, blurred = (a, b) if a.s_star <= b.s_star else (b, a)
    own = embedding(sharp.crop, matching_blur(sharp.s_star, blurred.s_star))
    return float(np.linalg.norm(own - embedding(blurred.crop)))


def compare(
    a: Any,
    b: Any,
    aligned_pair: bool = False,
    names: tuple[str, str] = ("first", "second"),
    s_star: tuple[float | None, float | None] = (None, None),
) -> IdentityCheck:
    """The identity distance of the faces in images `a` and `b` (any size, aligned crops or
    whole photos), or None with the reason when a face cannot be measured.

    `aligned_pair`: both are crops aligned to the FFHQ template (a restored face and its input);
    a face must then be found in `a`, and `s_star` may give either's known blur level.
    """
    first, second = as_rgb_uint8(a), as_rgb_uint8(b)
    if aligned_pair:
        if not has_face(first):
            return IdentityCheck(None, f"no face found in the {names[0]}")
        crops: list[np.ndarray | None] = [resized(first), resized(second)]
    else:
        crops = [aligned_crop(first), aligned_crop(second)]
    for crop, name in zip(crops, names, strict=True):
        if crop is None:
            return IdentityCheck(None, f"no face found in the {name} image")
    faces = [face(c, s) for c, s in zip(crops, s_star, strict=True) if c is not None]
    for measured, name in zip(faces, names, strict=True):
        if (refused := too_degraded(measured, f"{name} image")) is not None:
            return refused
    return IdentityCheck(face_distance(*faces))


def distance(a: Any, b: Any) -> float | None:
    """Identity distance of the faces in two images (dlib scale: at most `SAME_PERSON` means the
    same person), or None when a face cannot be found in either or is too degraded to judge."""
    return compare(a, b).distance
