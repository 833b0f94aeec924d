"""Offline face detection with 5 landmarks: RetinaFace-MobileNet0.25 (MIT) on onnxruntime.

The 1.7 MB ONNX graph ships in `dynface/assets` (see LICENSE.retinaface.txt); it outputs raw
box / landmark offsets and softmaxed scores per prior box. Pre-processing (BGR, mean subtraction),
prior boxes, decoding and non-maximum suppression are done here in numpy with the configuration of
biubug6/Pytorch_Retinaface (`cfg_mnet`): min sizes (16, 32), (64, 128), (256, 512) at strides
8, 16, 32 and variances (0.1, 0.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from dynface.faces.align import similarity_transform, template, warp_to_crop

MODEL_FILE = "retinaface_mobilenet0.25.onnx"
#: Per-channel mean (B, G, R) subtracted from 0-255 pixels, as in the training code.
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
STRIDES = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCES = (0.1, 0.2)
#: The FPN needs input sides that are multiples of the largest stride.
_PAD_MULTIPLE = 32
#: Landmark refinement (ours): patch side, largest number of passes, the correction (largest
#: template-point move, in patch pixels) below which a face counts as converged, and the gate
#: (mean landmark distance from the template, as a fraction of the patch) inside which a prior
#: box's landmarks count as this face's.
_REFINE_SIZE = 320
_REFINE_MAX_PASSES = 6
_REFINE_TOLERANCE = 0.1
_REFINE_GATE = 0.15
#: Landmark order after mirroring: the eyes and the mouth corners swap sides.
_MIRRORED_ORDER = np.array([1, 0, 2, 4, 3])


@dataclass(frozen=True)
class DetectedFace:
    """One face: box (x1, y1, x2, y2), confidence, and 5 landmarks (x, y) in image pixels.

    Landmark order as seen in the image: left eye, right eye, nose, left and right mouth corner.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @property
    def size(self) -> float:
        """Geometric mean of box width and height, in pixels."""
        width, height = self.box[2:] - self.box[:2]
        return float(math.sqrt(max(width, 0.0) * max(height, 0.0)))

    @property
    def center(self) -> np.ndarray:
        """Box centre (x, y)."""
        return (self.box[:2] + self.box[2:]) / 2


def model_path() -> Path:
    """Path of the bundled RetinaFace ONNX model."""
    return Path(str(resources.files("dynface") / "assets" / MODEL_FILE))


@lru_cache(maxsize=2)
def _session(path: str, threads: int):
    """One onnxruntime session per model file (loading takes ~50 ms, so share it)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads > 0:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=8)
def prior_boxes(height: int, width: int) -> np.ndarray:
    """Prior boxes (cx, cy, w, h) in pixels for an input of this size, in the network's order."""
    priors = []
    for stride, sizes in zip(STRIDES, MIN_SIZES, strict=True):
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centers = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        centers = np.repeat(centers, len(sizes), axis=0)
        wh = np.tile(
            np.repeat(np.asarray(sizes, dtype=np.float64)[:, None], 2, axis=1), (rows * cols, 1)
        )
        priors.append(np.concatenate([centers, wh], axis=1))
    return np.concatenate(priors, axis=0).astype(np.float32)


def decode(
    loc: np.ndarray, landmarks: np.ndarray, priors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Raw offsets (N, 4) and (N, 10) to boxes (N, 4) x1y1x2y2 and landmarks (N, 5, 2) in pixels."""
    centers, sizes = priors[:, None, :2], priors[:, None, 2:]
    box_center = centers[:, 0] + loc[:, :2] * VARIANCES[0] * sizes[:, 0]
    box_size = sizes[:, 0] * np.exp(loc[:, 2:] * VARIANCES[1])
    boxes = np.concatenate([box_center - box_size / 2, box_center + box_size / 2], axis=1)
    points = centers + landmarks.reshape(-1, 5, 2) * VARIANCES[0] * sizes
    return boxes, points


def _as_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """Accept float [0, 1] or uint8 images, gray (H, W), RGB or RGBA; return uint8 (H, W, 3)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {image.shape}")
    if image.dtype != np.uint8:
        image = np.round(np.clip(image.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image[..., :3]


class FaceDetector:
    """RetinaFace-MobileNet0.25 face detector with 5 landmarks, offline, on the CPU.

    Images are resized so that the longest side is at most `max_side` (speed; faces in big photos
    are big) and at least `min_side` (small photos of one face), and coordinates are mapped back.
    """

    def __init__(
        self,
        conf_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        min_face_size: float = 12.0,
        max_side: int = 1280,
        min_side: int = 320,
        refine: bool = True,
        threads: int = 0,
        model: str | Path | None = None,
    ) -> None:
        if not 0.0 <= conf_threshold <= 1.0 or not 0.0 < nms_threshold <= 1.0:
            raise ValueError("conf_threshold must be in [0, 1] and nms_threshold in (0, 1]")
        if min_side > max_side:
            raise ValueError("min_side must not exceed max_side")
        self.conf_threshold = conf_threshold
        self.nms_threshold = nms_threshold
        self.min_face_size = min_face_size
        self.max_side = max_side
        self.min_side = min_side
        self.refine = refine
        self._session = _session(str(model or model_path()), threads)

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces in an RGB image (float in [0, 1] or uint8), largest first."""
        rgb = _as_uint8_rgb(image)
        height, width = rgb.shape[:2]
        longest = max(height, width)
        if longest > self.min_side:
            scale = min(1.0, self.max_side / longest)
        else:
            scale = self.min_side / longest
        resized = rgb
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            resized = cv2.resize(rgb, size, interpolation=interp)
        # The effective per-axis scale after rounding the resized size.
        scale_xy = np.array([resized.shape[1] / width, resized.shape[0] / height], np.float32)
        boxes, scores, points = self._run(resized[None])[0]
        # Boxes are edges (scale them); landmarks are positions with pixel i's centre at i.
        boxes = (boxes.reshape(-1, 2, 2) / scale_xy).reshape(-1, 4)
        points = (points + 0.5) / scale_xy - 0.5
        faces = [
            face
            for face in self._suppress(boxes, scores, points)
            if face.size >= self.min_face_size
        ]
        if self.refine and faces:
            faces = self._refine(rgb, faces)
        return faces

    def _raw(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All prior boxes of uint8 RGB (B, H, W, 3): boxes (B, N, 4), scores, landmarks."""
        tensor = self._preprocess(batch)
        loc, conf, landmarks = self._session.run(None, {"input": tensor})
        priors = prior_boxes(tensor.shape[2], tensor.shape[3])
        decoded = [decode(loc[i], landmarks[i], priors) for i in range(len(batch))]
        boxes = np.stack([box for box, _ in decoded])
        points = np.stack([point for _, point in decoded])
        return boxes, conf[..., 1], points

    def _run(self, batch: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Run the network on uint8 RGB (B, H, W, 3): per image, boxes, scores, landmarks."""
        boxes, scores, points = self._raw(batch)
        keep = scores > self.conf_threshold
        return [
            (boxes[i][keep[i]], scores[i][keep[i]], points[i][keep[i]]) for i in range(len(batch))
        ]

    def _refine(self, rgb: np.ndarray, faces: list[DetectedFace]) -> list[DetectedFace]:
        """Re-measure landmarks at a canonical pose until the alignment is a fixed point (ours).

        The network's landmarks move with the face's scale, rotation and position by 1-3% of its
        size, so a one-shot alignment depends on the photo's pose. Each pass warps every face,
        from the original photo, to a 320 px patch aligned with the current landmarks, measures
        the landmarks there (score-weighted over all prior boxes on the face, averaged with the
        mirrored patch), and composes the alignment with the similarity that maps them onto the
        template. It stops when that correction moves no template point by more than 0.1 px
        (6 passes at most). The converged crop is defined by what the network sees at the
        canonical pose, which no longer depends on the photo's pose.
        """
        size = _REFINE_SIZE
        target = template(size)
        points = np.stack([face.landmarks for face in faces]).astype(np.float64)
        affines = _homogeneous(similarity_transform(points, target[None]))
        measured = points.copy()
        active = np.arange(len(faces))
        for _ in range(_REFINE_MAX_PASSES):
            patches = np.stack([warp_to_crop(rgb, affines[i, :2], size) for i in active])
            _, scores, candidates = self._raw(np.concatenate([patches, patches[:, :, ::-1]]))
            still = []
            for j, i in enumerate(active):
                direct = _consensus(candidates[j], scores[j], target)
                flipped = _consensus(
                    candidates[j + len(active)], scores[j + len(active)], target, flip=size - 1
                )
                if direct is None or flipped is None:
                    continue
                landmarks = (direct + flipped) / 2
                inverse = np.linalg.inv(affines[i])
                measured[i] = landmarks @ inverse[:2, :2].T + inverse[:2, 2]
                correction = similarity_transform(landmarks, target)
                moved = np.abs(target @ correction[:, :2].T + correction[:, 2] - target).max()
                affines[i] = _homogeneous(correction) @ affines[i]
                if moved > _REFINE_TOLERANCE:
                    still.append(i)
            active = np.asarray(still, dtype=np.int64)
            if len(active) == 0:
                break
        return [
            DetectedFace(face.box, face.score, measured[i].astype(np.float32))
            for i, face in enumerate(faces)
        ]

    @staticmethod
    def _preprocess(batch: np.ndarray) -> np.ndarray:
        """uint8 RGB (B, H, W, 3) to a mean-subtracted BGR (B, 3, H', W') tensor padded to /32."""
        count, height, width = batch.shape[:3]
        padded_h = math.ceil(height / _PAD_MULTIPLE) * _PAD_MULTIPLE
        padded_w = math.ceil(width / _PAD_MULTIPLE) * _PAD_MULTIPLE
        tensor = np.zeros((count, padded_h, padded_w, 3), dtype=np.float32)
        tensor[:, :height, :width] = batch[..., ::-1].astype(np.float32) - BGR_MEAN
        return tensor.transpose(0, 3, 1, 2)

    def _suppress(
        self, boxes: np.ndarray, scores: np.ndarray, points: np.ndarray
    ) -> list[DetectedFace]:
        """Non-maximum suppression, then faces sorted by size (largest first)."""
        if len(scores) == 0:
            return []
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        keep = cv2.dnn.NMSBoxes(
            xywh.tolist(), scores.tolist(), self.conf_threshold, self.nms_threshold
        )
        keep = np.asarray(keep, dtype=np.int64).reshape(-1)
        faces = [
            DetectedFace(
                box=boxes[i].astype(np.float32),
                score=float(scores[i]),
                landmarks=points[i].astype(np.float32),
            )
            for i in keep
        ]
        return sorted(faces, key=lambda face: face.size, reverse=True)


def _homogeneous(affines: np.ndarray) -> np.ndarray:
    """(..., 2, 3) affines as (..., 3, 3) matrices."""
    bottom = np.broadcast_to(np.array([0.0, 0.0, 1.0]), affines.shape[:-2] + (1, 3))
    return np.concatenate([affines, bottom], axis=-2)


def _consensus(
    candidates: np.ndarray, scores: np.ndarray, target: np.ndarray, flip: int | None = None
) -> np.ndarray | None:
    """Score-weighted mean of the landmark sets (N, 5, 2) of all prior boxes on the face.

    The face is the one near `target` (within the gate); None when no prior box sees it. A
    weighted mean over every box changes smoothly with the patch, where picking one box jumps.
    With `flip` (the patch width minus one), candidates come from the mirrored patch: mirror them
    back and swap left and right so they are in the usual order.
    """
    if flip is not None:
        candidates = candidates.copy()
        candidates[..., 0] = flip - candidates[..., 0]
        candidates = candidates[:, _MIRRORED_ORDER]
    errors = np.linalg.norm(candidates - target, axis=2).mean(axis=1)
    weights = np.where(errors < _REFINE_GATE * _REFINE_SIZE, scores, 0.0)
    total = weights.sum()
    if total < 1.0:
        return None
    return np.einsum("n,nij->ij", weights, candidates) / total


def select_faces(
    faces: list[DetectedFace],
    image_size: tuple[int, int] | None = None,
    only_center: bool = False,
    largest: bool = False,
) -> list[DetectedFace]:
    """Keep all faces, only the largest, or only the one nearest the centre of image_size (w, h)."""
    if not faces or not (only_center or largest):
        return list(faces)
    if largest:
        return [max(faces, key=lambda face: face.size)]
    if image_size is None:
        raise ValueError("only_center needs the image size (width, height)")
    center = np.asarray(image_size, dtype=np.float32) / 2
    return [min(faces, key=lambda face: float(np.linalg.norm(face.center - center)))]
