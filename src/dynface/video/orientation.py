"""A clip's display orientation: the display matrix of phone clips as quarter turns and a mirror.

Phones store the pixels as the sensor sees them and write a display matrix that tells players to
rotate them (by 90, 180 or 270 degrees; rarely also to mirror them). Faces are found and restored
on the upright frame; the restored frame is turned back before encoding, and the output carries
the input's matrix unchanged, so it plays like the input. The matrix is read the way FFmpeg's own
autorotation reads it (fftools: a transpose for +-90 degrees, flips for 180).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Orientation:
    """How the stored pixels become the upright frame: `upright = rot90(mirror(stored), turns)`.

    `turns` counts counter-clockwise quarter turns (numpy's `rot90`), applied after a left-right
    mirror when `mirrored`. The identity returns frames unchanged (the same array).
    """

    turns: int = 0
    mirrored: bool = False

    @property
    def identity(self) -> bool:
        """True when the stored frame is already upright."""
        return self.turns % 4 == 0 and not self.mirrored

    def upright(self, rgb: np.ndarray) -> np.ndarray:
        """The frame as a player shows it, from the stored (H, W, C) pixels."""
        if self.identity:
            return rgb
        image = np.fliplr(rgb) if self.mirrored else rgb
        return np.ascontiguousarray(np.rot90(image, self.turns))

    def stored(self, rgb: np.ndarray) -> np.ndarray:
        """The stored pixels of an upright frame (the inverse of `upright`)."""
        if self.identity:
            return rgb
        image = np.rot90(rgb, -self.turns)
        return np.ascontiguousarray(np.fliplr(image) if self.mirrored else image)

    def upright_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the upright frame for a stored frame of this size."""
        return (height, width) if self.turns % 2 else (width, height)


def orientation_of(matrix: Sequence[int] | None) -> Orientation:
    """The orientation a 3x3 display matrix (FFmpeg's 9 int32, 16.16 fixed point) asks for.

    As FFmpeg's autorotation: angles other than multiples of 90 degrees are not applied.
    """
    if matrix is None:
        return Orientation()
    a, b, c, d = (float(matrix[k]) for k in (0, 1, 3, 4))
    if math.hypot(a, c) == 0 or math.hypot(b, d) == 0:
        return Orientation()
    theta = round(math.degrees(math.atan2(b / math.hypot(b, d), a / math.hypot(a, c))))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return Orientation(1, True) if c > 0 else Orientation(3, False)
    if abs(theta - 270) < 1:
        return Orientation(3, True) if c < 0 else Orientation(1, False)
    if abs(theta - 180) < 1:
        hflip, vflip = a < 0, d < 0
        if hflip and vflip:
            return Orientation(2, False)
        return Orientation(2 if vflip else 0, hflip or vflip)
    if abs(theta) < 1 and d < 0:
        return Orientation(2, True)  # a vertical flip
    return Orientation()
