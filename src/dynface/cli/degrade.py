"""`dynface degrade`: write a synthetic test set (degraded faces + a CSV of parameters)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from dynface.data.protocols import PROTOCOLS

Protocol = StrEnum("Protocol", {name: name for name in PROTOCOLS})

EPILOG = (
    "Example: dynface degrade ffhq_val/ -o testset/ --seed 0   "
    "(then: dynface restore testset/lq --aligned -o out/; dynface eval --restored out/final "
    "--gt testset/hq -o report/). See docs/evaluation.md."
)


def degrade(
    inputs: list[Path] = typer.Argument(..., help="Clean aligned faces: files, folders or globs."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for lq/, hq/ and the CSV."),
    protocol: Protocol = typer.Option(PROTOCOLS[0], help="Degradation protocol (blur, noise...)."),
    seed: int = typer.Option(0, help="Seed of the random draws (same seed, same test set)."),
    size: int = typer.Option(512, min=32, help="Faces are resized to this square size first."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing test set in OUTPUT."
    ),
) -> None:
    """Degrade clean aligned faces with a test protocol; write lq/, hq/ and degradations.csv."""
    from dynface.data.testset import write_test_set
    from dynface.io import list_images

    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"{output} is a file, not a folder", param_hint="-o")
    paths = list_images(list(inputs))
    try:
        csv_path = write_test_set(paths, output, protocol.value, seed, size, overwrite)
    except (ValueError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {len(paths)} degraded faces to {output} (parameters: {csv_path})")
