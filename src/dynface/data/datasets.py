"""Training data: clean face folders, and batch makers for blurred and degraded pairs.

`FaceImages` loads clean aligned faces (resized to one square size, cached in memory). The batch
makers run on whole batches on the training device, so a GPU does the blur and the targets:
`BlurredFaces` makes the SDE's data (clean faces blurred with a known s plus mild noise), and
`DegradedPairs` the TM/SE data (random degradation, the target k(s*) * x and s*).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from dynface.data.degrade import DegradationConfig, RandomDegradation, to_gray
from dynface.data.targets import equivalent_blur_level
from dynface.io import list_images, read_image, to_tensor
from dynface.method.blur import gaussian_blur
from dynface.resize import resize
from dynface.units import S_MAX


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on `device` seeded from a host generator (large noise is drawn on the device)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def manifest_faces(
    root: str | Path, exclude_collections: Sequence[str] = (), only: Sequence[str] = ()
) -> list[Path]:
    """Clean aligned face crops (quality HQ, at least 512 px) listed in a data `manifest.csv`.

    `exclude_collections` / `only` take path prefixes such as "redegnet/ffhq512_hq".
    """
    root = Path(root)
    with open(root / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    paths = []
    for row in rows:
        name = row["file"]
        if row["quality"] != "HQ" or not row["aligned"].startswith("aligned"):
            continue
        if int(row["width"]) < 512 or row["width"] != row["height"]:
            continue
        if any(name.startswith(p) for p in exclude_collections):
            continue
        if only and not any(name.startswith(p) for p in only):
            continue
        paths.append(root / name)
    return paths


class FaceImages(Dataset):
    """Clean faces from files or folders, as (3, size, size) float tensors in [0, 1], cached."""

    def __init__(self, sources: Sequence[str | Path], size: int, flip: bool = False):
        self.paths = list_images(list(sources))
        if not self.paths:
            raise ValueError(f"no images found in {', '.join(map(str, sources))}")
        self.size = size
        self.flip = flip
        self._cache: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self.paths) * (2 if self.flip else 1)

    def __getitem__(self, index: int) -> Tensor:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} faces")
        base = index % len(self.paths)
        if base not in self._cache:
            image = to_tensor(read_image(self.paths[base]).pixels)
            self._cache[base] = resize(image, self.size, mode="bilinear")[0]
        image = self._cache[base]
        return image.flip(-1) if index >= len(self.paths) else image


@dataclass
class BlurredFaces:
    """SDE batches: clean faces blurred by a known s ~ U(s_range) (px at 512) plus mild noise."""

    s_range: tuple[float, float] = (0.0, S_MAX)
    noise_max: float = 3.0
    pixel_scale: float = 1.0

    def __call__(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return (blurred noisy batch, s per image in px at 512)."""
        b = x.shape[0]
        lo, hi = self.s_range
        s = lo + (hi - lo) * torch.rand(b, generator=generator)
        noise = self.noise_max / 255.0 * torch.rand(b, 1, 1, 1, generator=generator)
        s, noise = s.to(x.device), noise.to(x.device)
        eps = torch.randn(x.shape, generator=device_generator(generator, x.device), device=x.device)
        y = gaussian_blur(x, s * self.pixel_scale) + noise * eps
        return y.clamp(0, 1), s


@dataclass
class DegradedPairs:
    """TM/SE batches: random degradation y, target k(s*) * x and s* (px at 512) per image."""

    config: DegradationConfig = DegradationConfig()
    pixel_scale: float = 1.0

    def __call__(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """Return (degraded batch, blurred clean target, s*)."""
        y, params = RandomDegradation(self.config, self.pixel_scale)(x, generator)
        gray = torch.tensor([d.gray for d in params], device=x.device)[:, None, None, None]
        if bool(gray.any()):  # a gray input is paired with a gray target (GFPGAN's convention)
            x = torch.where(gray, to_gray(x), x)
        s = equivalent_blur_level(x, y, pixel_scale=self.pixel_scale)
        target = gaussian_blur(x, s * self.pixel_scale)
        return y, target, s
