"""Fréchet distance between feature statistics, saved statistics and a per-folder feature cache.

The math is pytorch-fid's (Heusel et al. 2017): mean and unbiased covariance (ddof 1) of the
features, `|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))` with `scipy.linalg.sqrtm`, a 1e-6
diagonal offset when the product is singular, and the real part taken. Statistics files are
`.npz` with `mu` and `sigma`, the format pytorch-fid writes, so published statistics can be used.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import linalg


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance of a set of feature vectors."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int

    @classmethod
    def of(cls, features: np.ndarray) -> FeatureStats:
        """Statistics of an (N, D) feature array; N >= 2."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] < 2:
            raise ValueError(f"FID needs at least 2 feature vectors, got shape {features.shape}")
        return cls(features.mean(axis=0), np.cov(features, rowvar=False), features.shape[0])

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write `mu`, `sigma` (pytorch-fid's keys) and `count` to an .npz file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, mu=self.mu, sigma=self.sigma, count=np.int64(self.count))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FeatureStats:
        """Read statistics saved by `save` or by pytorch-fid (`--save-stats`)."""
        with np.load(path, allow_pickle=False) as data:
            if "mu" not in data or "sigma" not in data:
                raise ValueError(f"{path}: not an FID statistics file (needs arrays mu and sigma)")
            count = int(data["count"]) if "count" in data else -1
            return cls(data["mu"].astype(np.float64), data["sigma"].astype(np.float64), count)


def frechet_distance(a: FeatureStats, b: FeatureStats, eps: float = 1e-6) -> float:
    """Fréchet distance between two Gaussians given by their statistics."""
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"feature sizes differ: {a.mu.shape} vs {b.mu.shape}")
    diff = a.mu - b.mu
    covmean = _sqrtm(a.sigma.dot(b.sigma))
    if not np.isfinite(covmean).all():
        offset = np.eye(a.sigma.shape[0]) * eps
        covmean = _sqrtm((a.sigma + offset).dot(b.sigma + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm has a large imaginary part ({np.abs(covmean.imag).max():.3g})")
        covmean = covmean.real
    value = diff.dot(diff) + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(covmean)
    return float(max(value, 0.0))


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """Matrix square root; the singular-matrix warning is expected for sets smaller than D."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(matrix)


class FeatureCache:
    """Features of the images of one folder for one extractor, kept in an .npz between runs.

    An entry is reused only when the file's name, size and modification time are unchanged.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None, folder: Path, extractor: str):
        self.path: Path | None = None
        self.entries: dict[str, np.ndarray] = {}
        self.dirty = False
        if cache_dir is None:
            return
        digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
        self.path = Path(cache_dir) / extractor / f"{folder.name}-{digest}.npz"
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    self.entries = dict(zip(data["keys"].tolist(), data["features"], strict=True))
            except (OSError, ValueError, KeyError):
                self.entries = {}

    @staticmethod
    def key(path: Path) -> str:
        """Identity of an image file's content as far as the cache is concerned."""
        stat = path.stat()
        return f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}"

    def get(self, path: Path) -> np.ndarray | None:
        """Cached features of `path`, or None."""
        return self.entries.get(self.key(path))

    def put(self, path: Path, features: np.ndarray) -> None:
        """Remember the features of `path`."""
        self.entries[self.key(path)] = np.asarray(features, dtype=np.float32)
        self.dirty = True

    def save(self) -> None:
        """Write the cache back (atomically) when something was added."""
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".part.npz")
        keys = np.array(list(self.entries), dtype=str)
        np.savez(tmp, keys=keys, features=np.stack(list(self.entries.values())))
        os.replace(tmp, self.path)
        self.dirty = False


def folder_features(
    paths: list[Path],
    extractor: Callable[[torch.Tensor], torch.Tensor],
    load: Callable[[Path], torch.Tensor],
    cache: FeatureCache,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
    save: bool = True,
) -> np.ndarray:
    """(N, D) features of image files, computed in device batches; cached ones are reused.

    `save=False` leaves the cache file alone (a worker process whose features the main one saves).
    """
    found = {p: cache.get(p) for p in paths}
    todo = [p for p, f in found.items() if f is None]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        images = [load(p) for p in chunk]
        for group in _same_size_groups(images):
            batch = torch.stack([images[i] for i in group]).to(device)
            with torch.inference_mode():
                feats = extractor(batch).float().cpu().numpy()
            for i, feat in zip(group, feats, strict=True):
                found[chunk[i]] = feat
                cache.put(chunk[i], feat)
        if progress is not None:
            progress(len(chunk))
    if save:
        cache.save()
    return np.stack([found[p] for p in paths])


def _same_size_groups(images: list[torch.Tensor]) -> list[list[int]]:
    """Indices of `images` grouped by shape, so each group stacks into one batch."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(tuple(image.shape), []).append(index)
    return list(groups.values())
