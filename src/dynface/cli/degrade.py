"""`dynface degrade`: write a synthetic test set (degraded faces + a CSV of parameters)."""

from __future__ import annotations

from pathlib import Path

import typer

from dynface.data.degrade import PROTOCOLS


def degrade(
    inputs: list[Path] = typer.Argument(..., help="Clean aligned faces: files, folders or globs."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for lq/, hq/ and the CSV."),
    protocol: str = typer.Option(PROTOCOLS[0], help=f"One of: {', '.join(PROTOCOLS)}."),
    seed: int = typer.Option(0, help="Seed of the random draws (same seed, same test set)."),
    size: int = typer.Option(512, help="Faces are resized to this square size first."),
    overwrite: bool = typer.Option(False, help="Replace an existing test set in OUTPUT."),
) -> None:
    """Degrade clean faces with a test protocol; write lq/, hq/ and degradations.csv."""
    from dynface.data.testset import write_test_set
    from dynface.io import list_images

    paths = list_images(list(inputs))
    if protocol not in PROTOCOLS:
        raise typer.BadParameter(f"unknown protocol; choose one of {', '.join(PROTOCOLS)}")
    try:
        csv_path = write_test_set(paths, output, protocol, seed, size, overwrite)
    except (ValueError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {len(paths)} degraded faces to {output} (parameters: {csv_path})")
