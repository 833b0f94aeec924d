"""Face tracks across frames: each frame's detections are matched to the live tracks.

A detection continues a track when its box overlaps the track's last box (IoU) or, for faces that
move fast, when its landmarks lie close to the track's last landmarks relative to the face's size;
the matching is the assignment of largest total similarity (Hungarian). A track survives up to
`max_gap` frames without a detection (a blink of the detector), and its gap is filled later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from dynface.faces.detect import DetectedFace


@dataclass
class Observation:
    """One detected face in one frame, with the blur level estimated on its aligned crop."""

    frame: int
    box: np.ndarray
    score: float
    landmarks: np.ndarray
    s_star: float | None = None


@dataclass
class Track:
    """A face followed across frames: its observations in frame order."""

    track_id: int
    observations: list[Observation] = field(default_factory=list)

    @property
    def last(self) -> Observation:
        return self.observations[-1]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (N, 4) and b (M, 4), x1y1x2y2: (N, M)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def landmark_closeness(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - mean landmark distance / face size, clipped to [0, 1], of a (N, 5, 2), b (M, 5, 2)."""
    distance = np.linalg.norm(a[:, None] - b[None], axis=3).mean(axis=2)
    eyes = np.linalg.norm(a[:, 0] - a[:, 1], axis=1)
    eye_to_mouth = np.linalg.norm(a[:, :2].mean(axis=1) - a[:, 3:].mean(axis=1), axis=1)
    size = np.maximum(np.maximum(eyes, eye_to_mouth), 1.0)
    return np.clip(1.0 - distance / size[:, None], 0.0, 1.0)


class FaceTracker:
    """Assigns a track id to every detection, frame after frame (call `update` in frame order)."""

    def __init__(self, min_similarity: float = 0.3, max_gap: int = 5) -> None:
        self.min_similarity = min_similarity
        self.max_gap = max_gap
        self.tracks: list[Track] = []
        self._live: list[Track] = []

    def update(self, frame: int, faces: list[DetectedFace]) -> list[Observation]:
        """Match this frame's faces to live tracks (new tracks for the rest); return them."""
        self._live = [t for t in self._live if frame - t.last.frame <= self.max_gap + 1]
        observations = [
            Observation(frame, face.box.copy(), face.score, face.landmarks.copy()) for face in faces
        ]
        assigned: dict[int, Track] = {}
        if self._live and observations:
            similarity = self._similarity(observations)
            rows, cols = linear_sum_assignment(-similarity)
            for row, col in zip(rows, cols, strict=True):
                if similarity[row, col] >= self.min_similarity:
                    assigned[col] = self._live[row]
        for index, observation in enumerate(observations):
            track = assigned.get(index)
            if track is None:
                track = Track(len(self.tracks))
                self.tracks.append(track)
                self._live.append(track)
            track.observations.append(observation)
        return observations

    def _similarity(self, observations: list[Observation]) -> np.ndarray:
        """(live tracks, detections): the larger of box IoU and landmark closeness."""
        last_boxes = np.stack([t.last.box for t in self._live]).astype(np.float64)
        last_points = np.stack([t.last.landmarks for t in self._live]).astype(np.float64)
        boxes = np.stack([o.box for o in observations]).astype(np.float64)
        points = np.stack([o.landmarks for o in observations]).astype(np.float64)
        return np.maximum(box_iou(last_boxes, boxes), landmark_closeness(last_points, points))
