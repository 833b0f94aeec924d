"""Image files in and out: every input becomes float32 RGB in [0, 1]; every output is atomic.

Reading honours EXIF orientation and accepts grayscale, palette, RGBA (composited on white) and
16-bit files; what the file was is kept in `LoadedImage` so the result can be written back alike.
Writing goes to a temporary name in the target folder and is renamed into place, so an
interrupted run never leaves a half-written image, and an existing file is kept unless asked.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Inputs larger than this many pixels are refused with a clear message (about 12000 x 10000).
MAX_PIXELS = 120_000_000
#: The process umask (read once: reading it means setting it), for the permissions of new files.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class ImageReadError(ValueError):
    """A file that cannot be used as an image; the message says why and what to do."""


@dataclass(frozen=True)
class LoadedImage:
    """Pixels as float32 (H, W, 3) RGB in [0, 1], plus what the file originally held."""

    pixels: np.ndarray
    path: Path
    mode: str
    bit_depth: int
    was_gray: bool
    had_alpha: bool
    alpha: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.pixels.shape[1], self.pixels.shape[0]


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read any common image file as float32 RGB in [0, 1]; raise ImageReadError with the reason."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise ImageReadError(
                    f"{path}: {width}x{height} px is larger than the {max_pixels // 1_000_000} MP "
                    "limit; downscale it first"
                )
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            pixels, bit_depth = _to_rgb_float(im)
            alpha = _alpha(im)
    except ImageReadError:
        raise
    except Image.DecompressionBombError:
        raise ImageReadError(
            f"{path}: far larger than the {max_pixels // 1_000_000} MP limit (Pillow refuses it "
            "as a possible decompression bomb); downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise ImageReadError(
            f"{path}: not an image file (or a format Pillow cannot read)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: unreadable or truncated image ({exc})") from None
    return LoadedImage(
        pixels=pixels,
        path=path,
        mode=mode,
        bit_depth=bit_depth,
        was_gray=mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"),
        had_alpha=alpha is not None,
        alpha=alpha,
    )


def _alpha(im: Image.Image) -> np.ndarray | None:
    """The transparency of an image as float32 (H, W) in [0, 1], or None when it has none."""
    if im.mode not in ("RGBA", "LA", "PA") and "transparency" not in im.info:
        return None
    return np.asarray(im.convert("RGBA"), dtype=np.float32)[..., 3] / 255.0


def _to_rgb_float(im: Image.Image) -> tuple[np.ndarray, int]:
    """Convert a decoded Pillow image to float32 (H, W, 3) in [0, 1] and report its bit depth."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L"):
        data = np.asarray(im, dtype=np.float32)
        gray = data / 65535.0 if data.max(initial=0) > 255 or im.mode != "I" else data / 255.0
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2), 16
    if im.mode == "F":
        gray = np.clip(np.asarray(im, dtype=np.float32), 0, 1)
        return np.repeat(gray[..., None], 3, axis=2), 32
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return rgb, 8


def write_image(
    path: str | Path, pixels: np.ndarray, overwrite: bool = False, quality: int = 95
) -> Path:
    """Write float (H, W, 3), (H, W, 4) RGBA or (H, W) pixels in [0, 1] atomically.

    An existing file is kept unless `overwrite`; RGBA needs a format with alpha (PNG, WebP).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(pixels, dtype=np.float32), 0, 1)
    image = Image.fromarray(np.round(data * 255).astype(np.uint8))
    suffix = path.suffix.lower()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP"}.get(
        suffix, "PNG"
    )
    if data.ndim == 3 and data.shape[2] == 4 and fmt not in ("PNG", "WEBP"):
        raise ValueError(f"{path}: {fmt} cannot hold transparency; write a .png instead")
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format=fmt, **options)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any, overwrite: bool = False) -> Path:
    """Write JSON atomically (temporary name, then rename); refuse to replace a file unless asked.

    Arrays, tensors and paths become lists and strings.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, default=_jsonable)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _jsonable(value: Any) -> Any:
    """Tensors, arrays and numpy scalars as plain JSON values; anything else as its text."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return str(value)


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float array in [0, 1] to a (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)[None]


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) tensor in [0, 1] to an (H, W, 3) float32 array on the host."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError("to_numpy takes one image; index the batch first")
        image = image[0]
    return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def list_images(inputs: list[str | Path]) -> list[Path]:
    """Expand files, folders (sorted, non-recursive) and glob patterns into image paths."""
    found: list[Path] = []
    for item in inputs:
        item_path = Path(item)
        if item_path.is_dir():
            found.extend(
                sorted(p for p in item_path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            )
        elif any(ch in str(item) for ch in "*?["):
            parent = Path(item_path.anchor or ".")
            pattern = str(item_path.relative_to(parent)) if item_path.is_absolute() else str(item)
            found.extend(sorted(p for p in parent.glob(pattern) if p.is_file()))
        else:
            found.append(item_path)
    unique: dict[Path, None] = dict.fromkeys(found)
    return list(unique)
