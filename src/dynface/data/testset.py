"""Write a degraded test set: lq/ and hq/ PNGs at one size plus degradations.csv of parameters."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

import torch

from dynface.data.degrade import Degradation, degrade, sample_protocol
from dynface.io import read_image, to_numpy, to_tensor, write_image
from dynface.outputs import output_names
from dynface.resize import resize

CSV_NAME = "degradations.csv"


def write_test_set(
    hq_paths: Sequence[Path],
    out_dir: str | Path,
    protocol: str = "difface-celeba-test",
    seed: int = 0,
    size: int = 512,
    overwrite: bool = False,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Degrade every face with one draw of `protocol` under `seed`; return the CSV path.

    Faces are resized to `size` first (the protocol is defined at 512). The parameters are drawn
    in sorted-path order, so the set depends only on the files, the protocol and the seed. Files
    that share a name (from different folders) get distinct names, as `dynface restore` gives
    them (x, x_jpg, x_jpg_2...); the CSV maps every name to its source. `progress(n)` is called
    after each batch of n faces.
    """
    out = Path(out_dir)
    paths = sorted(Path(p) for p in hq_paths)
    if not paths:
        raise ValueError("no input images: pass a folder of clean aligned faces")
    names = output_names(paths)
    csv_path = out / CSV_NAME
    if csv_path.exists() and not overwrite:
        raise FileExistsError(f"{csv_path} exists; pass --overwrite to replace the test set")
    params = sample_protocol(len(paths), protocol, torch.Generator().manual_seed(seed))
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        x = torch.cat(
            [resize(to_tensor(read_image(p).pixels), size, mode="bilinear") for p in chunk]
        )
        x = x.clamp(0, 1).to(device)
        y = degrade(x, params[start : start + batch_size])
        for name, clean, lq in zip(names[start : start + batch_size], x, y, strict=True):
            write_image(out / "hq" / f"{name}.png", to_numpy(clean), overwrite=overwrite)
            write_image(out / "lq" / f"{name}.png", to_numpy(lq), overwrite=overwrite)
        if progress is not None:
            progress(len(chunk))
    _write_csv(csv_path, paths, names, params)
    return csv_path


def _write_csv(
    csv_path: Path, paths: list[Path], names: list[str], params: list[Degradation]
) -> None:
    """degradations.csv: output file, source file and the drawn parameters, written atomically."""
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["file", "source", *[f.name for f in fields(Degradation)]]
    tmp = csv_path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for path, name, d in zip(paths, names, params, strict=True):
            writer.writerow({"file": f"{name}.png", "source": str(path), **d.as_row()})
    tmp.replace(csv_path)


def read_test_set(csv_path: str | Path) -> list[tuple[str, Degradation]]:
    """(file name, parameters) of every image of a test set written by `write_test_set`."""
    with open(csv_path, newline="") as handle:
        return [(row["file"], Degradation.from_row(row)) for row in csv.DictReader(handle)]


def read_sources(csv_path: str | Path) -> list[tuple[str, str]]:
    """(source path, output file name) of every image of a test set."""
    with open(csv_path, newline="") as handle:
        return [(row["source"], row["file"]) for row in csv.DictReader(handle)]
