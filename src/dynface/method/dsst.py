"""DSST: the dynamic starting-step table s -> t(s), built in closed form from face spectra (ours).

`P(f)` is the mean radial power spectrum of clean aligned faces in [-1, 1]; unit white noise has
power `N0 = 1` per bin with `dynface.method.spectra`. For a Gaussian blur of std `s` px,
`D_t(s) = max_f |log(a P + (1 - a)) - log(a |K_s|^2 P + (1 - a))|` with `a = alphabar_t`, and
`t(s) = min{t : D_t(s) <= tol}`: the first step at which the noised sharp and the noised blurred
face have the same spectrum to within `tol`. `tol` is calibrated once so that `t(12) = 925`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, overload

import torch
from torch import Tensor

from dynface.diffusion.schedule import beta_schedule
from dynface.io import list_images, read_image, to_tensor
from dynface.method.blur import continuous_transfer
from dynface.method.spectra import bin_frequencies, radial_power_spectrum
from dynface.resize import resize
from dynface.units import BETA_END, BETA_START, DIFFUSION_STEPS, REFERENCE_SIZE, S_MAX

FORMAT = "dynface-dsst"
FORMAT_VERSION = 1
STEPS = DIFFUSION_STEPS
#: Faces are resized to this size before their spectrum is taken (the prior's resolution).
FACE_SIZE = REFERENCE_SIZE
#: Calibration point (s px, t): the published end of the start-step range.
CALIBRATION = (12.0, 925)
#: Aligned-crop labels of manifest.csv that qualify as clean faces.
ALIGNED_LABELS = ("aligned512", "aligned1024")


def linear_alphas_cumprod(steps: int = STEPS) -> Tensor:
    """alphabar_t of the sampler's linear beta schedule (float64, (steps,))."""
    return torch.cumprod(1.0 - beta_schedule("linear", steps), dim=0)


def default_grid(step: float = 0.25, s_max: float = S_MAX) -> Tensor:
    """Blur levels 0, step, ..., s_max (float64)."""
    return torch.arange(0.0, s_max + step / 2, step, dtype=torch.float64)


def spectral_distance(
    power: Tensor, freqs: Tensor, sigma: Tensor, alphas_cumprod: Tensor
) -> Tensor:
    """D_t(s) for every step t and blur level s: (T, S), float64."""
    p = power.to(torch.float64)[None, None, :]
    k2 = continuous_transfer(sigma, freqs).square()[None]
    a = alphas_cumprod.to(torch.float64)[:, None, None]
    sharp = torch.log(a * p + (1 - a))
    blurred = torch.log(a * k2 * p + (1 - a))
    return (sharp - blurred).abs().amax(dim=-1)


def first_steps(distance: Tensor, tol: float) -> Tensor:
    """t(s) = min{t : D_t(s) <= tol} per column of a (T, S) distance; T - 1 when none."""
    ok = distance <= tol
    first = torch.argmax(ok.to(torch.int64), dim=0)
    return torch.where(ok.any(dim=0), first, torch.full_like(first, distance.shape[0] - 1))


def calibrate_tol(power: Tensor, freqs: Tensor, alphas_cumprod: Tensor, s: float, t: int) -> float:
    """The tol that puts t(s) exactly at t: midway between D_t(s) and D_{t-1}(s)."""
    d = spectral_distance(power, freqs, torch.tensor([s], dtype=torch.float64), alphas_cumprod)
    return float(0.5 * (d[t, 0] + d[t - 1, 0]))


def face_paths(sources: Sequence[str | Path]) -> list[Path]:
    """Image files from folders, files, globs, or a manifest.csv (its clean aligned HQ rows)."""
    paths: list[Path] = []
    plain: list[str | Path] = []
    for src in sources:
        if Path(src).suffix.lower() == ".csv":
            paths.extend(_manifest_faces(Path(src)))
        else:
            plain.append(src)
    paths.extend(list_images(plain))
    return list(dict.fromkeys(paths))


def _manifest_faces(manifest: Path) -> list[Path]:
    """Rows of a manifest with quality=HQ and an aligned512/aligned1024 crop."""
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"file", "quality", "aligned"} <= set(rows[0]):
        raise ValueError(f"{manifest} lacks the columns file, quality, aligned of a face manifest")
    return [
        manifest.parent / row["file"]
        for row in rows
        if row["quality"] == "HQ" and row["aligned"] in ALIGNED_LABELS
    ]


def _batches(paths: list[Path], size: int, batch: int) -> Iterator[Tensor]:
    """Faces as (b, 3, size, size) batches in [0, 1]."""
    for i in range(0, len(paths), batch):
        images = [
            resize(to_tensor(read_image(p).pixels), size).clamp(0, 1) for p in paths[i : i + batch]
        ]
        yield torch.cat(images)


def mean_face_spectrum(
    faces: Tensor | Sequence[str | Path], bins: int = 64, size: int = FACE_SIZE, batch: int = 8
) -> tuple[Tensor, int]:
    """Mean radial power spectrum of faces in [-1, 1] at size x size, and the number of faces."""
    if isinstance(faces, Tensor):
        if faces.ndim != 4 or faces.shape[1] != 3:
            raise ValueError(f"expected faces as (B, 3, H, W) in [0, 1], got {tuple(faces.shape)}")
        stream: Iterator[Tensor] = (
            resize(faces[i : i + batch].float(), size).clamp(0, 1)
            for i in range(0, len(faces), batch)
        )
        count = faces.shape[0]
    else:
        paths = face_paths(faces)
        if not paths:
            raise ValueError(f"no face images found in {[str(f) for f in faces]}")
        stream = _batches(paths, size, batch)
        count = len(paths)
    total = torch.zeros(bins, dtype=torch.float64)
    for chunk in stream:
        total += radial_power_spectrum(chunk * 2 - 1, bins).sum(dim=0).cpu()
    return total / count, count


@dataclass
class DSSTable:
    """Blur level s (px at 512) -> diffusion start step t(s) on the 1000-step scale."""

    grid: Tensor
    steps: Tensor
    tol: float
    power: Tensor
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        faces: Tensor | str | Path | Sequence[str | Path],
        alphas_cumprod: Tensor | None = None,
        tol: float | None = None,
        grid: Tensor | None = None,
        bins: int = 64,
        size: int = FACE_SIZE,
        calibration: tuple[float, int] = CALIBRATION,
    ) -> DSSTable:
        """Build from clean faces (folder(s), files, a manifest CSV, or a (B,3,H,W) [0,1] batch).

        With `tol=None`, tol is calibrated so that t(calibration s) = calibration t.
        """
        if isinstance(faces, str | Path):
            faces = [faces]
        alphas = linear_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
        alphas = alphas.to(torch.float64).cpu()
        grid = default_grid() if grid is None else torch.as_tensor(grid, dtype=torch.float64)
        if grid.ndim != 1 or float(grid[0]) != 0.0 or bool((grid.diff() <= 0).any()):
            raise ValueError("the blur grid must be increasing and start at 0")
        power, count = mean_face_spectrum(faces, bins=bins, size=size)
        freqs = bin_frequencies(bins)
        calibrated = tol is None
        if tol is None:
            tol = calibrate_tol(power, freqs, alphas, *calibration)
        steps = first_steps(spectral_distance(power, freqs, grid, alphas), tol)
        source = "tensor batch" if isinstance(faces, Tensor) else [str(f) for f in faces]
        provenance = _provenance(count, source, size, alphas, alphas_cumprod is not None, freqs)
        provenance["tol_calibrated_to"] = list(calibration) if calibrated else None
        return cls(grid=grid, steps=steps, tol=float(tol), power=power, provenance=provenance)

    @classmethod
    def load(cls, path: str | Path) -> DSSTable:
        """Read a table written by `save`."""
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError:
            data = None
        except OSError as exc:
            raise ValueError(f"cannot read DSST table {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path} is not a dynface DSST table (build one: dynface dsst build)")
        return cls(
            grid=torch.tensor(data["grid"], dtype=torch.float64),
            steps=torch.tensor(data["t"], dtype=torch.int64),
            tol=float(data["tol"]),
            power=torch.tensor(data["power"], dtype=torch.float64),
            provenance=data.get("provenance", {}),
        )

    @classmethod
    def default(cls) -> DSSTable:
        """The table shipped with the package (built from 218 clean aligned faces)."""
        ref = resources.files("dynface") / "assets" / "dsst_default.json"
        with resources.as_file(ref) as path:
            return cls.load(path)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready dict with the table and its provenance."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tol": self.tol,
            "grid": [round(float(s), 6) for s in self.grid],
            "t": [int(t) for t in self.steps],
            "power": [float(p) for p in self.power],
            "provenance": self.provenance,
        }

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the table as JSON; refuses to replace a file unless `overwrite`."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @overload
    def start_step(self, s: float) -> int: ...

    @overload
    def start_step(self, s: Tensor) -> Tensor: ...

    def start_step(self, s: float | Tensor) -> int | Tensor:
        """t(s) on the 1000-step scale, linear in s between grid points, rounded; int for a float.

        s is clamped to the grid's range; the result is non-decreasing in s and t(0) = 0.
        """
        scalar = not isinstance(s, Tensor)
        s_t = torch.as_tensor(s, dtype=torch.float64)
        grid = self.grid.to(s_t.device)
        steps = self.steps.to(s_t.device, torch.float64)
        s_c = s_t.clamp(float(grid[0]), float(grid[-1]))
        hi = torch.searchsorted(grid, s_c.contiguous(), right=True).clamp(1, len(grid) - 1)
        lo = hi - 1
        frac = (s_c - grid[lo]) / (grid[hi] - grid[lo])
        t = torch.round(steps[lo] + frac.clamp(0, 1) * (steps[hi] - steps[lo])).to(torch.int64)
        return int(t) if scalar else t

    def rows(self, every: float = 1.0) -> list[tuple[float, int]]:
        """(s, t) pairs on the grid at multiples of `every` px, for display."""
        ratio = self.grid / every
        keep = (ratio - ratio.round()).abs() < 1e-6
        return [(float(s), int(t)) for s, t in zip(self.grid[keep], self.steps[keep], strict=True)]


@overload
def to_respaced_index(t: int, respaced_timesteps: Sequence[int] | Tensor) -> int: ...


@overload
def to_respaced_index(t: Tensor, respaced_timesteps: Sequence[int] | Tensor) -> Tensor: ...


def to_respaced_index(t: int | Tensor, respaced_timesteps: Sequence[int] | Tensor) -> int | Tensor:
    """Index of the largest respaced step not above t (timesteps ascending, e.g. 0, 4, ..., 996)."""
    steps = torch.as_tensor(respaced_timesteps, dtype=torch.int64)
    if steps.ndim != 1 or steps.numel() == 0 or bool((steps.diff() <= 0).any()):
        raise ValueError("respaced timesteps must be a non-empty increasing sequence")
    scalar = not isinstance(t, Tensor)
    t_t = torch.as_tensor(t, dtype=torch.int64)
    idx = torch.searchsorted(steps.to(t_t.device), t_t.contiguous(), right=True) - 1
    idx = idx.clamp_min(0)
    return int(idx) if scalar else idx


def _provenance(
    faces: int, source: object, size: int, alphas: Tensor, custom_alphas: bool, freqs: Tensor
) -> dict[str, Any]:
    """Where a table comes from: faces, schedule, spectrum settings, date and version."""
    return {
        "faces": faces,
        "source": source,
        "face_size": size,
        "schedule": {
            "name": "linear",
            "steps": int(alphas.numel()),
            "beta_start": BETA_START,
            "beta_end": BETA_END,
            "custom_alphas": custom_alphas,
        },
        "tol_calibrated_to": None,
        "spectrum": {
            "bins": len(freqs),
            "range": "[-1, 1]",
            "window": "hann, mean removed, power / window energy (white noise = 1)",
            "frequencies": freqs.tolist(),
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dynface_version": _version(),
    }


def _version() -> str:
    """The installed dynface version."""
    from dynface import __version__

    return __version__
