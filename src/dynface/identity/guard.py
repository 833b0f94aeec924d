"""The identity guard: measure each restored face against its input (or reference photos) and,
when asked, restore a face that drifted again at higher fidelity until it holds.

The measure is `dynface.identity.measure` (the sharper face blurred to the other's blur level
first, calibrated in docs/identity.md); against reference photos the closest reference counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

import numpy as np

from dynface.errors import UsageError
from dynface.identity.measure import (
    Face,
    IdentityCheck,
    aligned_crop,
    as_rgb_uint8,
    face,
    face_distance,
    has_face,
    resized,
    too_degraded,
)

#: How to get the identity measure (dlib and its CC0 models).
INSTALL_HINT = "pip install 'dynface[identity]'"
#: The fidelity rungs a drifting face climbs (above the requested fidelity), the last kept.
FIDELITY_LADDER = (0.75, 1.0)


@dataclass(frozen=True)
class IdentityOptions:
    """What to do about identity: `guard` retries faces that drift; `references` are photos of
    the person (RGB uint8) to measure against instead of each face's input."""

    guard: bool = False
    references: tuple[np.ndarray, ...] = field(default=(), repr=False)

    @cached_property
    def meter(self) -> IdentityMeter:
        """The meter of these options, built once (reference photos embedded once)."""
        return IdentityMeter(self.references)


def ladder(fidelity: float) -> list[float]:
    """The fidelities a guarded face is tried at: the requested one, then the higher rungs."""
    return [fidelity, *(rung for rung in FIDELITY_LADDER if rung > fidelity)]


def missing_package() -> str | None:
    """The package the identity measure lacks (dlib or its models), or None when it can run."""
    for name in ("dlib", "face_recognition_models"):
        try:
            __import__(name)
        except ImportError:
            return name
    return None


def check_available() -> None:
    """Raise a UsageError saying what to install when the identity guard cannot run."""
    missing = missing_package()
    if missing is not None:
        raise UsageError(f"the identity guard needs {missing}: {INSTALL_HINT}")


class IdentityMeter:
    """Measures restored faces: against their inputs, or against reference photos."""

    def __init__(self, references: Sequence[np.ndarray] = (), threshold: float | None = None):
        from dynface.identity import SAME_PERSON

        self.threshold = SAME_PERSON if threshold is None else threshold
        self.missing = missing_package()
        if self.missing is not None and references:
            check_available()
        self.references = [self._reference(k, image) for k, image in enumerate(references)]

    @staticmethod
    def _reference(index: int, image: np.ndarray) -> Face:
        crop = aligned_crop(as_rgb_uint8(image))
        if crop is None:
            raise UsageError(f"no face found in reference photo {index + 1}; give a clear photo")
        measured = face(crop)
        if too_degraded(measured, "reference") is not None:
            raise UsageError(f"reference photo {index + 1} is too blurred; give a clear photo")
        return measured

    def check(self, restored: np.ndarray, source: Callable[[], Face]) -> IdentityCheck:
        """The identity distance of one restored aligned face (RGB uint8) from its input (the
        `source` face, made when first needed) or from the closest reference photo."""
        if self.missing is not None:
            return IdentityCheck(None, f"{self.missing} is not installed: {INSTALL_HINT}")
        if not has_face(restored):
            return IdentityCheck(None, "no face found in the restored face")
        own = face(resized(restored))
        if self.references:
            return IdentityCheck(min(face_distance(own, ref) for ref in self.references))
        target = source()
        refused = too_degraded(target, "input")
        return refused or IdentityCheck(face_distance(own, target))


#: Restores the faces numbered `indices` at `fidelity`: (restored images, traces).
Restore = Callable[[list[int], float], tuple[list[Any], list[dict[str, Any]]]]


def guard_faces(
    restore: Restore,
    inputs: list[np.ndarray],
    first: tuple[list[Any], list[dict[str, Any]]],
    options: IdentityOptions,
    fidelity: float,
    as_rgb: Callable[[Any], np.ndarray] = as_rgb_uint8,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Measure every face of `first` (restored images, traces) against `inputs` (RGB uint8)
    and, with the guard, restore the faces that drift again at the next fidelity.

    `as_rgb` turns a restored image into RGB uint8 for the meter. Returns the kept images and
    their traces, each with an "identity" entry (every attempt, the verdict).
    """
    meter = options.meter
    sources = InputFaces(inputs)
    images, traces = list(first[0]), [dict(t) for t in first[1]]
    attempts: list[list[dict[str, Any]]] = [[] for _ in inputs]
    pending = list(range(len(inputs)))
    for rung, level in enumerate(ladder(fidelity) if options.guard else [fidelity]):
        if rung > 0:
            again, again_traces = restore(pending, level)
            for k, image, trace in zip(pending, again, again_traces, strict=True):
                images[k], traces[k] = image, dict(trace)
        views = {k: as_rgb(images[k]) for k in pending}
        pending = _measure(meter, pending, views, sources, attempts, level)
        if not pending:
            break
    for k, trace in enumerate(traces):
        trace["identity"] = verdict(attempts[k], meter, options)
    return images, traces


class InputFaces:
    """The input faces of a guarded call, each measured (aligned, s*) once when first needed."""

    def __init__(self, inputs: list[np.ndarray]) -> None:
        self.inputs = inputs
        self.faces: dict[int, Face] = {}

    def face(self, index: int) -> Face:
        if index not in self.faces:
            self.faces[index] = face(resized(self.inputs[index]))
        return self.faces[index]


def _measure(
    meter: IdentityMeter,
    indices: list[int],
    images: dict[int, np.ndarray],
    sources: InputFaces,
    attempts: list[list[dict[str, Any]]],
    level: float,
) -> list[int]:
    """Measure the faces `indices`, note each attempt; return those that drifted."""
    drifted = []
    for k in indices:
        started = time.perf_counter()
        check = meter.check(images[k], partial(sources.face, k))
        attempt = {"fidelity": level, "distance": _rounded(check.distance), "reason": check.reason}
        attempt["seconds"] = round(time.perf_counter() - started, 3)
        attempts[k].append(attempt)
        if check.distance is not None and check.distance > meter.threshold:
            drifted.append(k)
    return drifted


def verdict(
    attempts: list[dict[str, Any]], meter: IdentityMeter, options: IdentityOptions
) -> dict[str, Any]:
    """The identity entry of one face's trace: the kept attempt's distance and what it means."""
    last = attempts[-1]
    distance = last["distance"]
    if distance is None:
        state = "not measured"
    elif distance <= meter.threshold:
        state = "same person"
    else:
        state = "not confirmed"
    return {
        "verdict": state,
        "distance": distance,
        "same_person": None if distance is None else distance <= meter.threshold,
        "threshold": meter.threshold,
        "against": "reference" if options.references else "input",
        "reason": last["reason"],
        "guard": options.guard,
        "attempts": attempts,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
