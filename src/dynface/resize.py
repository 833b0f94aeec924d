"""Antialiased resizing of image batches, shared by the pipeline, the DSST build and training."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def resize(x: Tensor, size: int | tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Resize a (B, C, H, W) batch to `size` (square for an int) with antialiasing.

    Returns `x` itself when it already has that size. Bicubic may overshoot [0, 1]; callers that
    need the range clamp.
    """
    target = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == target:
        return x
    return F.interpolate(x, size=target, mode=mode, antialias=True, align_corners=False)
