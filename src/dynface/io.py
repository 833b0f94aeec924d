"""Image files in and out: every input becomes RGB (float32 in [0, 1] or uint8); writes are safe.

Reading honours EXIF orientation and accepts grayscale, palette, RGBA (composited on white) and
16-bit files; what the file was is kept in `LoadedImage` so the result can be written back alike.
The size is read from the header first, so an oversized image is refused before it is decoded.
Writing goes to a temporary `.part` name in the target folder, then takes the real name in one
step: a hard link, which fails if the name appeared meanwhile (so a concurrent writer's file is
never replaced), or a rename when replacing was asked for. An interrupted run never leaves a
half-written image under a real name.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from dynface.metadata import ImageMetadata

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Inputs larger than this many pixels are refused with a clear message (about 12000 x 10000).
MAX_PIXELS = 120_000_000
#: Pillow modes that hold one gray channel.
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
#: A photo counts as black and white when 99% of its pixels have channels this close (of 255):
#: JPEG chroma noise and scanner tint stay below it, skin colour is far above it.
GRAY_SPREAD = 12
#: Side of the thumbnail on which the channel spread is measured (cheap on any photo size).
_GRAY_THUMBNAIL = 512
#: Suffix of temporary files; they only ever hold an unfinished write.
PART_SUFFIX = ".part"
#: The process umask (read once: reading it means setting it), for the permissions of new files.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class ImageReadError(ValueError):
    """A file that cannot be used as an image; the message says why and what to do."""


@dataclass(frozen=True)
class LoadedImage:
    """Pixels as (H, W, 3) RGB (float32 in [0, 1] or uint8), plus what the file originally held.

    `was_gray`: the file is grayscale, or its colours are (a black-and-white photo saved as RGB).
    """

    pixels: np.ndarray
    path: Path
    mode: str
    bit_depth: int
    was_gray: bool
    had_alpha: bool
    alpha: np.ndarray | None = None
    #: EXIF and ICC profile of the file, for the restored photo (`dynface.metadata`).
    metadata: ImageMetadata = ImageMetadata()

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.pixels.shape[1], self.pixels.shape[0]


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file, upright, read from its header without decoding pixels."""
    path = Path(path)
    with _opened(path) as im:
        width, height = im.size
        try:
            orientation = _orientation(im)
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageReadError(f"{path}: unreadable or truncated image ({exc})") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1: upright) from the header; a PNG is never decoded for it."""
    if im.format == "PNG":  # Pillow would decode the whole image to look for a late eXIf chunk
        if not im.info.get("exif"):
            return 1
        exif = Image.Exif()
        exif.load(im.info["exif"])
        return int(exif.get(0x0112, 1))
    return int(im.getexif().get(0x0112, 1))


def read_image(
    path: str | Path, max_pixels: int = MAX_PIXELS, dtype: type = np.float32
) -> LoadedImage:
    """Read any common image file as RGB; raise ImageReadError with the reason.

    `dtype` np.float32 gives [0, 1] pixels; np.uint8 keeps 8 bits a channel (a quarter of the
    memory, for whole photos). Images over `max_pixels` are refused before they are decoded.
    """
    path = Path(path)
    with _opened(path) as im:
        width, height = im.size
        if width * height > max_pixels:
            raise ImageReadError(
                f"{path}: {width}x{height} px is larger than the {max_pixels // 1_000_000} MP "
                "limit; downscale it first"
            )
        try:
            metadata = ImageMetadata.of(im)
            im = ImageOps.exif_transpose(im)
            pixels, bit_depth = _to_rgb(im, dtype)
            alpha = _alpha(im, dtype)
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageReadError(f"{path}: unreadable or truncated image ({exc})") from None
        mode = im.mode
    return LoadedImage(
        pixels=pixels,
        path=path,
        mode=mode,
        bit_depth=bit_depth,
        was_gray=mode in GRAY_MODES or is_near_gray(pixels),
        had_alpha=alpha is not None,
        alpha=alpha,
        metadata=metadata,
    )


class _opened:
    """`with _opened(path) as im`: Pillow's lazy open (header only), every failure one sentence."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.image: Image.Image | None = None

    def __enter__(self) -> Image.Image:
        path = self.path
        if not path.is_file():
            raise ImageReadError(_missing_reason(path))
        try:
            with warnings.catch_warnings():  # Pillow warns above 89 MP; MAX_PIXELS is checked
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                self.image = Image.open(path)
        except Image.DecompressionBombError:
            raise ImageReadError(
                f"{path}: far larger than the {MAX_PIXELS // 1_000_000} MP limit (Pillow refuses "
                "it as a possible decompression bomb); downscale it first"
            ) from None
        except UnidentifiedImageError:
            raise ImageReadError(
                f"{path}: not an image file (or a format Pillow cannot read)"
            ) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageReadError(f"{path}: unreadable or truncated image ({exc})") from None
        return self.image

    def __exit__(self, *exc: object) -> None:
        if self.image is not None:
            self.image.close()


def _missing_reason(path: Path) -> str:
    """Why `path` is not a readable file: missing, a directory, or a broken symbolic link."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return f"{path}: a symbolic link loop; fix or remove the link"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return f"{path}: a symbolic link loop; fix or remove the link"
            return f"{path}: a symbolic link to {os.readlink(path)}, which does not exist"
    if path.is_dir():
        return f"{path}: a folder, not an image file"
    return f"{path}: no such file"


def is_near_gray(pixels: np.ndarray, spread: int = GRAY_SPREAD) -> bool:
    """True when the RGB image (uint8 or float in [0, 1]) is black and white up to noise.

    Measured on a thumbnail: the 99th percentile over pixels of max minus min channel.
    """
    height, width = pixels.shape[:2]
    factor = min(1.0, _GRAY_THUMBNAIL / max(height, width))
    small = pixels
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32) * (1.0 if pixels.dtype == np.uint8 else 255.0)
    channel_spread = small.max(axis=-1) - small.min(axis=-1)
    return bool(np.percentile(channel_spread, 99) <= spread)


def _alpha(im: Image.Image, dtype: type) -> np.ndarray | None:
    """The transparency of an image as (H, W) in [0, 1] (or uint8), or None when it has none."""
    if im.mode not in ("RGBA", "LA", "PA") and "transparency" not in im.info:
        return None
    alpha = np.asarray(im.convert("RGBA"))[..., 3].copy()
    return alpha if dtype == np.uint8 else alpha.astype(np.float32) / 255.0


def _to_rgb(im: Image.Image, dtype: type) -> tuple[np.ndarray, int]:
    """Convert a Pillow image to (H, W, 3) RGB of `dtype` and report the file's bit depth."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        gray, bit_depth = _deep_gray(im)
        if dtype == np.uint8:
            gray = np.round(gray * 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), bit_depth
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    rgb = np.asarray(im.convert("RGB"))
    if dtype == np.uint8:
        return rgb, 8
    return rgb.astype(np.float32) / 255.0, 8


def _deep_gray(im: Image.Image) -> tuple[np.ndarray, int]:
    """A 16-bit or floating-point gray image as float32 (H, W) in [0, 1] and its bit depth."""
    data = np.asarray(im, dtype=np.float32)
    if im.mode == "F":
        return np.clip(data, 0, 1), 32
    gray = data / 65535.0 if data.max(initial=0) > 255 or im.mode != "I" else data / 255.0
    return np.clip(gray, 0, 1), 16


def write_image(
    path: str | Path,
    pixels: np.ndarray,
    overwrite: bool = False,
    quality: int = 95,
    tmp_dir: Path | None = None,
    metadata: ImageMetadata | None = None,
) -> Path:
    """Write (H, W, 3), (H, W, 4) RGBA or (H, W) pixels, uint8 or float in [0, 1], safely.

    An existing file is kept unless `overwrite` (also one that appears while writing); RGBA needs
    a format with alpha (PNG, WebP). `tmp_dir`: where the unfinished file is written (default:
    beside `path`; it must be on the same file system). `metadata`: EXIF and ICC profile to carry.
    """
    path = Path(path)
    image = to_pil(pixels)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP"}.get(
        path.suffix.lower(), "PNG"
    )
    if image.mode == "RGBA" and fmt not in ("PNG", "WEBP"):
        raise ValueError(f"{path}: {fmt} cannot hold transparency; write a .png instead")
    options: dict[str, Any] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "PNG" and image.width * image.height > 50_000_000:
        options["compress_level"] = 1  # big photos: zlib's fastest level, ~5x faster, ~10% larger
    if metadata is not None:
        options.update(metadata.save_options(image, fmt))
    return write_file(
        path, lambda handle: image.save(handle, format=fmt, **options), overwrite, tmp_dir
    )


def to_pil(pixels: np.ndarray) -> Image.Image:
    """uint8 or float [0, 1] pixels, (H, W), (H, W, 3) or (H, W, 4), as a Pillow image."""
    data = np.asarray(pixels)
    if data.dtype != np.uint8:
        data = np.round(np.clip(data.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(data)


def write_json(
    path: str | Path, data: Any, overwrite: bool = False, tmp_dir: Path | None = None
) -> Path:
    """Write JSON safely (temporary name, then the real one); keep an existing file unless asked.

    Arrays, tensors and paths become lists and strings.
    """
    text = json.dumps(data, indent=1, default=_jsonable).encode("utf-8")
    return write_file(path, lambda handle: handle.write(text), overwrite, tmp_dir)


def write_file(
    path: str | Path,
    save: Callable[[IO[bytes]], Any],
    overwrite: bool,
    tmp_dir: Path | None = None,
) -> Path:
    """Run `save(handle)` on a temporary file (in `tmp_dir`, else beside `path`), then name it.

    Without `overwrite` the name is taken with a hard link, which fails with FileExistsError if
    a file holds it, even one that appeared a moment ago; with `overwrite`, a rename replaces it.
    """
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, _exists_message(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if tmp_dir is None or os.stat(tmp_dir).st_dev != os.stat(path.parent).st_dev:
        tmp_dir = path.parent  # hard links and renames stay within one file system
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PART_SUFFIX, dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            save(handle)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        place_file(tmp, path, overwrite)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def place_file(tmp: str | Path, path: Path, overwrite: bool) -> None:
    """Give the finished file `tmp` the name `path`: replace only when `overwrite`.

    The temporary name may remain (a hard link); the caller removes it.
    """
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, _exists_message(path)) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links (FAT, some network shares): best effort.
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, _exists_message(path)) from None
        os.replace(tmp, path)


def _exists_message(path: Path) -> str:
    return f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it"


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
    """Expand files, folders (sorted, non-recursive) and glob patterns into image paths.

    Hidden files (names starting with a dot) in folders and globs are left out; a broken link
    with an image suffix is kept, so it fails on its own when read.
    """
    found: list[Path] = []
    for item in inputs:
        item_path = Path(item)
        if item_path.is_dir():
            found.extend(sorted(p for p in item_path.iterdir() if _is_image_name(p)))
        elif is_glob(str(item)):
            parent = Path(item_path.anchor or ".")
            pattern = str(item_path.relative_to(parent)) if item_path.is_absolute() else str(item)
            found.extend(
                sorted(
                    p
                    for p in parent.glob(pattern)
                    if not p.name.startswith(".") and (p.is_file() or _is_image_name(p))
                )
            )
        else:
            found.append(item_path)
    unique: dict[Path, None] = dict.fromkeys(found)
    return list(unique)


def is_glob(text: str) -> bool:
    """True when an input names a glob pattern rather than one file or folder."""
    return any(ch in text for ch in "*?[")


def _is_image_name(path: Path) -> bool:
    """A visible name with an image suffix that is not a folder."""
    return (
        path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.startswith(".")
        and not path.is_dir()
    )
