"""One restoration recipe per face track, so a restored face does not flicker (ours).

Restoring each frame on its own changes the result from frame to frame: a fresh noise draw, a blur
level s* (and with it the start step and eta) that wobbles with compression noise, and landmarks
that jitter by a pixel or two, which moves the aligned crop and the paste mask. Along a track we
therefore fix the seed (one per track: the same initial and step noise at every frame), smooth s*
with a wide Gaussian over time, and smooth the landmarks (hence the crop transform and the paste
mask) with a narrow one; frames where the detector missed the face inside a track are filled by
linear interpolation. Smoothing is centred (it uses the whole track), so it does not lag motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from dynface.video.tracking import Track

#: Seed stride between frames when consistency is off (a fresh draw per face and frame).
_FRAME_SEED_STRIDE = 7919


@dataclass(frozen=True)
class ConsistencySettings:
    """How faces are kept consistent along their tracks (sigmas in frames; 0 turns one off)."""

    seed: int = 0
    landmark_sigma: float = 1.5
    blur_sigma: float = 8.0
    #: False restores every frame on its own (fresh seed, raw s* and landmarks): for comparison.
    temporal: bool = True
    #: Tracks whose mean detection score is lower are dropped: a real face scores ~0.99 in
    #: most frames, a face-like patch (a badge, a pattern) flickers in and out near 0.5-0.8.
    min_track_score: float = 0.8


@dataclass
class FacePlan:
    """What to do with one face in one frame: crop with `landmarks`, restore with `seed`/`s_star`.

    `detected` is False for frames filled inside a track's gap; `raw_*` are the detector's values.
    """

    frame: int
    track: int
    seed: int
    landmarks: np.ndarray
    s_star: float | None
    detected: bool
    raw_landmarks: np.ndarray | None = None
    raw_s_star: float | None = None
    box: np.ndarray | None = None
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready record (also what the frame traces show)."""
        return {
            "frame": self.frame,
            "track": self.track,
            "seed": self.seed,
            "detected": self.detected,
            "landmarks": np.round(self.landmarks, 3).tolist(),
            "s_star": None if self.s_star is None else round(self.s_star, 4),
            "raw_landmarks": _rounded(self.raw_landmarks),
            "raw_s_star": None if self.raw_s_star is None else round(self.raw_s_star, 4),
            "box": _rounded(self.box),
            "score": None if self.score is None else round(self.score, 4),
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> FacePlan:
        """Inverse of `to_json` (rounded to 1/1000 px)."""
        arrays = {
            key: None if record[key] is None else np.asarray(record[key], np.float64)
            for key in ("landmarks", "raw_landmarks", "box")
        }
        return cls(
            frame=int(record["frame"]),
            track=int(record["track"]),
            seed=int(record["seed"]),
            landmarks=arrays["landmarks"],
            s_star=record["s_star"],
            detected=bool(record["detected"]),
            raw_landmarks=arrays["raw_landmarks"],
            raw_s_star=record["raw_s_star"],
            box=arrays["box"],
            score=record["score"],
        )


def _rounded(array: np.ndarray | None) -> list | None:
    return None if array is None else np.round(np.asarray(array, np.float64), 3).tolist()


def plan_faces(tracks: list[Track], settings: ConsistencySettings) -> dict[int, list[FacePlan]]:
    """Per frame, the faces to restore (in track order), from the tracks of the whole clip."""
    plans: dict[int, list[FacePlan]] = {}
    for track in tracks:
        if np.mean([obs.score for obs in track.observations]) < settings.min_track_score:
            continue
        track_plans = (
            _plan_track(track, settings) if settings.temporal else _plan_frames(track, settings)
        )
        for plan in track_plans:
            plans.setdefault(plan.frame, []).append(plan)
    for faces in plans.values():
        faces.sort(key=lambda plan: plan.track)
    return plans


def _plan_frames(track: Track, settings: ConsistencySettings) -> list[FacePlan]:
    """Every detection on its own: its raw landmarks and s*, a seed per face and frame."""
    return [
        FacePlan(
            frame=obs.frame,
            track=track.track_id,
            seed=settings.seed + obs.frame * _FRAME_SEED_STRIDE + track.track_id,
            landmarks=np.asarray(obs.landmarks, np.float64),
            s_star=obs.s_star,
            detected=True,
            raw_landmarks=obs.landmarks,
            raw_s_star=obs.s_star,
            box=obs.box,
            score=obs.score,
        )
        for obs in track.observations
    ]


def _plan_track(track: Track, settings: ConsistencySettings) -> list[FacePlan]:
    """One seed, gap-filled and smoothed landmarks and s* for every frame the track spans."""
    observed = np.array([obs.frame for obs in track.observations])
    frames = np.arange(observed[0], observed[-1] + 1)
    points = np.stack([obs.landmarks for obs in track.observations]).reshape(len(observed), -1)
    landmarks = _fill_and_smooth(
        frames, observed, points.astype(np.float64), settings.landmark_sigma
    )
    s_values = [obs.s_star for obs in track.observations]
    s_star = None
    if all(value is not None for value in s_values):
        s_raw = np.asarray(s_values, np.float64)[:, None]
        s_star = _fill_and_smooth(frames, observed, s_raw, settings.blur_sigma)[:, 0]
    by_frame = {obs.frame: obs for obs in track.observations}
    plans = []
    for k, frame in enumerate(frames):
        obs = by_frame.get(int(frame))
        plans.append(
            FacePlan(
                frame=int(frame),
                track=track.track_id,
                seed=settings.seed + track.track_id,
                landmarks=landmarks[k].reshape(5, 2),
                s_star=None if s_star is None else float(s_star[k]),
                detected=obs is not None,
                raw_landmarks=None if obs is None else obs.landmarks,
                raw_s_star=None if obs is None else obs.s_star,
                box=None if obs is None else obs.box,
                score=None if obs is None else obs.score,
            )
        )
    return plans


def _fill_and_smooth(
    frames: np.ndarray, observed: np.ndarray, values: np.ndarray, sigma: float
) -> np.ndarray:
    """Values (N, D) seen at `observed` frames, interpolated over `frames` and smoothed in time."""
    filled = np.stack(
        [np.interp(frames, observed, values[:, d]) for d in range(values.shape[1])], axis=1
    )
    if sigma > 0 and len(frames) > 1:
        filled = gaussian_filter1d(filled, sigma, axis=0, mode="nearest")
    return filled


def track_summary(track_id: int, plans: list[FacePlan], start_t: list[int]) -> dict[str, Any]:
    """Per-track record: span, detections, seed, raw and smoothed s*, start steps used."""
    raw = [p.raw_s_star for p in plans if p.raw_s_star is not None]
    used = [p.s_star for p in plans if p.s_star is not None]
    starts = sorted(set(start_t))
    return {
        "track": track_id,
        "first_frame": plans[0].frame,
        "last_frame": plans[-1].frame,
        "frames": len(plans),
        "detected_frames": sum(p.detected for p in plans),
        "filled_frames": sum(not p.detected for p in plans),
        "seeds": sorted({p.seed for p in plans})[:8],
        "raw_s_star": _stats(raw),
        "s_star": _stats(used),
        "start_t": starts,
    }


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    array = np.asarray(values, np.float64)
    return {
        "mean": round(float(array.mean()), 4),
        "std": round(float(array.std()), 4),
        "min": round(float(array.min()), 4),
        "max": round(float(array.max()), 4),
    }
