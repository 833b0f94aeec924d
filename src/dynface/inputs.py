"""Images the way people hold them -> a list of (3, H, W) float32 tensors in [0, 1].

Accepted: a torch tensor (CHW or BCHW, uint8 or float in [0, 1]), a numpy array (HWC or BHWC,
uint8, uint16 or float in [0, 1]; HW for gray), a PIL image, or a list/tuple of any of these
(sizes may differ). Torch is channels-first and numpy channels-last, as in diffusers. Gray
images are repeated to RGB; an alpha channel is dropped. Anything else is a `UsageError`
that says what was given: a float outside [0, 1], NaN or inf, an empty batch, a wrong shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import numpy as np
import torch
from torch import Tensor

from dynface.errors import UsageError

if TYPE_CHECKING:
    from PIL.Image import Image

    ImageInput: TypeAlias = Tensor | np.ndarray | Image | Sequence[Tensor | np.ndarray | Image]
else:
    ImageInput: TypeAlias = Any

#: A batch as given: channels-first tensor or channels-last array.
_Batch = TypeVar("_Batch", Tensor, np.ndarray)
#: Smallest face side we agree to restore.
MIN_SIDE = 8
_INT_SCALE = {torch.uint8: 255.0, np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def as_face_list(images: ImageInput) -> list[Tensor]:
    """Every face of `images` as (3, H, W) float32 in [0, 1] on the CPU, in order."""
    items = list(images) if isinstance(images, list | tuple) else [images]
    faces: list[Tensor] = []
    for number, item in enumerate(items):
        where = f"image {number}" if len(items) > 1 else "the image"
        faces.extend(_convert(item, where))
    if not faces:
        raise UsageError("got an empty batch: pass at least one face image")
    return faces


def _convert(item: Any, where: str) -> list[Tensor]:
    """One input (a single image or a batch) as a list of (3, H, W) float32 faces."""
    if isinstance(item, Tensor):
        return _from_torch(item, where)
    if isinstance(item, np.ndarray):
        return _from_numpy(item, where)
    if hasattr(item, "convert") and hasattr(item, "size"):  # a PIL image
        return _from_numpy(np.asarray(item.convert("RGB")), where)
    raise UsageError(
        f"{where} is a {type(item).__name__}; pass a torch tensor (C, H, W) / (B, C, H, W), a "
        "numpy array (H, W, C) / (B, H, W, C), a PIL image, or a list of these"
    )


def _from_torch(x: Tensor, where: str, given: tuple[int, ...] | None = None) -> list[Tensor]:
    """Channels-first tensor(s); `given` is the user's shape when `x` was converted (errors
    name what the user passed, not the batch made of it)."""
    own, given = given is None, given or tuple(x.shape)
    x = _as_batch(x, where, "a tensor must be (C, H, W) or (B, C, H, W)")
    if own and x.shape[1] not in (1, 3, 4) and x.shape[-1] in (1, 3, 4):
        raise UsageError(
            f"{where}: torch tensors are channels-first (C, H, W), got {given}; "
            "use tensor.permute(2, 0, 1) (or pass the numpy array)"
        )
    x = _channels(x.detach().cpu(), dim=1, where=where, shape=str(given))
    return list(_to_unit(x, where).unbind(0))


def _from_numpy(x: np.ndarray, where: str) -> list[Tensor]:
    """Channels-last array(s); (H, W) is one gray image."""
    given = tuple(x.shape)
    if x.ndim == 2:
        x = x[..., None]
    x = _as_batch(x, where, "an array must be (H, W, C) or (B, H, W, C)")
    if x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):
        raise UsageError(
            f"{where}: numpy images are channels-last (H, W, 3), got {given}; "
            "use array.transpose(1, 2, 0) or pass a torch tensor"
        )
    if x.dtype.kind not in "uf" or (x.dtype.kind == "u" and x.dtype not in _INT_SCALE):
        raise UsageError(f"{where}: pixels must be uint8, uint16 or float, got {x.dtype}")
    scale = _INT_SCALE.get(x.dtype)
    t = torch.from_numpy(np.ascontiguousarray(x).astype(np.float32 if scale else x.dtype))
    t = t.permute(0, 3, 1, 2)
    if scale:
        t = t / scale
    return _from_torch(t, where, given)


def _as_batch(x: _Batch, where: str, layouts: str) -> _Batch:
    """A single image as a batch of one; anything but a non-empty 4-D batch is a UsageError
    (`layouts` says which shapes are accepted)."""
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise UsageError(f"{where}: {layouts}, got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise UsageError(f"{where}: got an empty batch of shape {tuple(x.shape)}")
    return x


def _channels(x: Tensor, dim: int, where: str, shape: str) -> Tensor:
    """RGB from 1 (gray), 3 or 4 (alpha dropped) channels."""
    channels = x.shape[dim]
    if channels == 1:
        return x.expand(-1, 3, -1, -1)
    if channels == 4:
        return x[:, :3]
    if channels != 3:
        raise UsageError(f"{where}: expected 1, 3 or 4 channels, got shape {shape}")
    return x


def _to_unit(x: Tensor, where: str) -> Tensor:
    """float32 in [0, 1]: integers scaled by their range, floats checked."""
    if x.shape[-1] < MIN_SIDE or x.shape[-2] < MIN_SIDE:
        raise UsageError(f"{where}: a face of {tuple(x.shape[-2:])} px is too small to restore")
    if x.dtype in _INT_SCALE:
        return x.float() / _INT_SCALE[x.dtype]
    if not x.dtype.is_floating_point:
        raise UsageError(f"{where}: pixels must be uint8 or float in [0, 1], got {x.dtype}")
    x = x.float()
    if not bool(torch.isfinite(x).all()):
        raise UsageError(f"{where}: has NaN or infinite pixels")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise UsageError(
            f"{where}: float pixels must lie in [0, 1], got [{low:.3g}, {high:.3g}]; divide "
            "8-bit values by 255 (or pass a uint8 array)"
        )
    return x
