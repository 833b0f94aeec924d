"""Identity distance between two face images: dlib's ResNet embedding on a face found by RetinaFace.

Faces are found by dynface's own detector (RetinaFace, `dynface.faces.detect`), which still finds
blurred, small and compressed faces where dlib's HOG detector gives up. Its 5 landmarks place the
face box that dlib's shape predictor expects: the box dlib's HOG detector draws on an FFHQ-aligned
512 crop, (100, 160)-(402, 458) in template pixels (the mean over 39 CelebRef-HQ crops, ours),
mapped onto the face by the similarity that aligns its landmarks. The distance is the Euclidean
distance of the two 128-D embeddings (dlib's scale). A pair of images that are pixel-aligned (a
restored face and its input) is measured in one box, found on the first image (ours: the input
is the blurred side, where landmarks are least sure).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from dynface.faces.align import similarity_transform, template

#: The face box of dlib's HOG detector in FFHQ template coordinates at 512 px (left, top,
#: right, bottom), measured on CelebRef-HQ crops (benchmarks/identity_calibration.py).
TEMPLATE_BOX = np.array([[100.0, 160.0], [402.0, 160.0], [100.0, 458.0], [402.0, 458.0]])
#: The smallest face side (px) worth measuring: below it dlib's 150 px chip is mostly upsampling.
MIN_FACE_PX = 24.0


@dataclass(frozen=True)
class IdentityCheck:
    """One identity measurement: the distance (None when no face could be measured) and why."""

    distance: float | None
    reason: str | None = None


@lru_cache(maxsize=1)
def _models() -> tuple[Any, Any]:
    """dlib's face models (loaded once) and dynface's face detector."""
    from dynface.faces.detect import FaceDetector
    from dynface.metrics.face import DlibFaces

    return DlibFaces(), FaceDetector(min_side=160, refine=False)


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


def face_box(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """The largest face's dlib box (left, top, right, bottom) in an RGB uint8 image, or None."""
    _, detector = _models()
    faces = detector.detect(image)
    if not faces:
        return None
    affine = similarity_transform(template(512), faces[0].landmarks)
    corners = np.c_[TEMPLATE_BOX, np.ones(4)] @ affine.T
    left, top = corners.min(axis=0)
    right, bottom = corners.max(axis=0)
    if min(right - left, bottom - top) < MIN_FACE_PX:
        return None
    return round(left), round(top), round(right), round(bottom)


def embedding(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """dlib's 128-D identity embedding of the face in `box` of an RGB uint8 image."""
    faces, _ = _models()
    import dlib

    image = np.ascontiguousarray(image)
    rect = dlib.rectangle(*box)
    shape = faces.shape(image, rect)
    return np.array(faces.encoder.compute_face_descriptor(image, shape), dtype=np.float64)


def compare(
    a: Any, b: Any, aligned_pair: bool = False, names: tuple[str, str] = ("first", "second")
) -> IdentityCheck:
    """The identity distance of the faces in images `a` and `b` (any size, aligned crops or
    whole photos), or None with the reason when a face cannot be measured.

    `aligned_pair`: `b` is pixel-aligned with `a` (a restored face and its input), so the box
    found on `a` serves both; `names` word the reasons.
    """
    first, second = as_rgb_uint8(a), as_rgb_uint8(b)
    box_a = face_box(first)
    if box_a is None:
        return IdentityCheck(None, f"no face found in the {names[0]} image")
    if aligned_pair and first.shape == second.shape:
        box_b: tuple[int, int, int, int] | None = box_a
    else:
        box_b = face_box(second)
    if box_b is None:
        return IdentityCheck(None, f"no face found in the {names[1]} image")
    if aligned_pair and _is_flat(second, box_b):
        return IdentityCheck(None, f"the {names[1]} image holds no face (a flat patch)")
    distance = np.linalg.norm(embedding(first, box_a) - embedding(second, box_b))
    return IdentityCheck(float(distance))


def _is_flat(image: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """True when the face box holds (almost) no structure: under 2 grey levels of spread."""
    left, top, right, bottom = (max(0, v) for v in box)
    patch = image[top:bottom, left:right].astype(np.float64).mean(axis=2)
    return patch.size == 0 or float(patch.std()) < 2.0


def distance(a: Any, b: Any) -> float | None:
    """Identity distance of the faces in two images (dlib scale: at most `SAME_PERSON` means the
    same person), or None when a face cannot be found in either."""
    return compare(a, b).distance
