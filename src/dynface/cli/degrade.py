"""`dynface degrade`: write a synthetic test set (degraded faces + a CSV of parameters)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

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
    """Degrade clean aligned faces with a test protocol; write lq/, hq/ and degradations.csv.

    Inputs that share a file name get distinct output names (x, x_png, ...), as in restore;
    degradations.csv maps every output to its source.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from dynface.data.testset import write_test_set
    from dynface.io import list_images

    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"{output} is a file, not a folder", param_hint="-o")
    paths = list_images(list(inputs))
    columns = ("degrade", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("degrade", total=len(paths))
        try:
            csv_path = write_test_set(
                paths,
                output,
                protocol.value,
                seed,
                size,
                overwrite,
                progress=lambda n: bar.advance(task, n),
            )
        except (ValueError, FileExistsError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    _report_renames(csv_path)
    typer.echo(f"wrote {len(paths)} degraded faces to {output} (parameters: {csv_path})")


def _report_renames(csv_path: Path) -> None:
    """Name every input whose output name differs from its own (a same-named file elsewhere)."""
    from dynface.data.testset import read_sources

    for source, name in read_sources(csv_path):
        if Path(name).stem != Path(source).stem:
            typer.echo(f"note: {source} is written as {name} (another input has its name)")
