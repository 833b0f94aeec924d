"""What `Restorer.restore_aligned` returns, and how to use it (as diffusers' output types do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass
class RestoreResult:
    """Restored faces, in input order, with one JSON-ready trace dict per face.

    `images` is a (B, 3, H, W) float32 tensor in [0, 1] on the CPU when every face had the same
    size, else a list of (3, H, W) tensors (each face keeps its own size). Use `tensors()` for a
    list either way, `numpy()` for (H, W, 3) uint8 arrays (OpenCV wants them as BGR:
    `arr[..., ::-1]`), `pil()` for PIL images, `result[k]` for face k as a (3, H, W) tensor.
    `traces[k]` says what the method did to face k (`FaceTrace.to_dict()`: s*, start step, eta,
    network evaluations, timings).
    """

    images: Tensor | list[Tensor]
    traces: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        return self.images[index]

    def tensors(self) -> list[Tensor]:
        """Each face as a (3, H, W) float32 tensor in [0, 1]."""
        return list(self.images)

    def numpy(self) -> list[np.ndarray]:
        """Each face as an (H, W, 3) uint8 RGB array."""
        return [
            (face.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
            for face in self.tensors()
        ]

    def pil(self) -> list[Image]:
        """Each face as an RGB PIL image."""
        from PIL import Image

        return [Image.fromarray(face) for face in self.numpy()]
