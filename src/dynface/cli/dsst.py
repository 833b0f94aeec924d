"""`dynface dsst build|show`: make and inspect the blur-level -> start-step table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from dynface.method.dsst import DSSTable

app = typer.Typer(
    help=(
        "Build and inspect DSST tables (blur level s -> diffusion start step t). "
        "A shipped table is the default; build your own from clean faces of your domain. "
        "See docs/method.md."
    ),
    no_args_is_help=True,
)
OverwriteFlag = typer.Option(False, "--overwrite", help="Replace the output file if it exists.")


@app.command("build", epilog="Example: dynface dsst build clean_faces/ -o tables/mine.json")
def build(
    faces: list[Path] = typer.Argument(
        ..., help="Folders or files of clean aligned faces, or a manifest CSV (HQ aligned rows)."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="JSON file to write."),
    tol: float | None = typer.Option(
        None, help="Spectral tolerance; default: calibrated so that t(12 px) = 925."
    ),
    grid_step: float = typer.Option(0.25, help="Spacing of the blur grid in px (0 to 16)."),
    overwrite: bool = OverwriteFlag,
) -> None:
    """Build a table from clean faces and write it as JSON with its provenance."""
    from rich.console import Console

    from dynface.method.dsst import DSSTable, default_grid

    if output.is_dir():
        raise typer.BadParameter(
            f"{output} is a folder; name the JSON file to write, e.g. -o {output / 'dsst.json'}",
            param_hint="-o",
        )
    if output.exists() and not overwrite:
        raise typer.BadParameter(
            f"{output} exists; pass --overwrite to replace it", param_hint="-o"
        )
    try:
        table = DSSTable.build(faces, tol=tol, grid=default_grid(grid_step))
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FACES") from exc
    table.save(output, overwrite=overwrite)
    Console().print(
        f"{output}: {table.provenance['faces']} faces, tol={table.tol:.5f}, "
        f"t(0..16) = {table.start_step(0.0)}..{table.start_step(16.0)}"
    )


@app.command(
    "show",
    epilog="Examples: dynface dsst show --plot dsst.png  ·  dynface dsst show tables/mine.json",
)
def show(
    table_path: Path | None = typer.Argument(
        None, help="Table JSON; default: the table shipped with dynface."
    ),
    plot: Path | None = typer.Option(
        None,
        help="PNG to write the s -> t plot to; default: next to TABLE_PATH (.png), kept if "
        "it exists.",
    ),
    every: float = typer.Option(1.0, help="Print rows at multiples of this blur level (px)."),
    overwrite: bool = OverwriteFlag,
) -> None:
    """Print a table and plot s -> t."""
    from rich.console import Console

    table = _load_table(table_path)
    console = Console()
    _print_table(table, table_path, every, console)
    target = _plot_target(table_path, plot, overwrite, console)
    if target is not None:
        _plot(table, target)
        console.print(f"plot: {target}")


def _load_table(table_path: Path | None) -> DSSTable:
    """The table at `table_path`, or the shipped one; a missing or bad file is a usage error."""
    from dynface.method.dsst import DSSTable

    if table_path is not None and not table_path.is_file():
        raise typer.BadParameter(
            f"{table_path}: no such file; pass a table written by `dynface dsst build`, "
            "or nothing for the shipped table",
            param_hint="TABLE_PATH",
        )
    try:
        return DSSTable.load(table_path) if table_path else DSSTable.default()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="TABLE_PATH") from exc


def _print_table(table: DSSTable, table_path: Path | None, every: float, console: Console) -> None:
    """The s -> t rows as a rich table, then the table's provenance."""
    from rich.table import Table

    prov = table.provenance
    out = Table(title=f"DSST {table_path or '(default)'}: tol={table.tol:.5f}")
    out.add_column("s (px at 512)", justify="right")
    out.add_column("t (of 1000)", justify="right")
    for s, t in table.rows(every):
        out.add_row(f"{s:g}", str(t))
    console.print(out)
    console.print(
        f"faces: {prov.get('faces')}  source: {prov.get('source')}  "
        f"created: {prov.get('created')}  dynface: {prov.get('dynface_version')}"
    )


def _plot_target(
    table_path: Path | None, plot: Path | None, overwrite: bool, console: Any
) -> Path | None:
    """Where to draw the plot: --plot, else beside the table (kept if it exists), else none."""
    if plot is None and table_path is not None:
        beside = table_path.with_suffix(".png")
        if beside.exists() and not overwrite:
            console.print(f"plot: {beside} exists, kept (pass --overwrite to redraw it)")
            return None
        return beside
    if plot is not None and plot.exists() and not overwrite:
        raise typer.BadParameter(
            f"{plot} exists; pass --overwrite or another --plot", param_hint="--plot"
        )
    return plot


def _plot(table, path: Path) -> None:
    """Write the s -> t curve as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.plot(table.grid.numpy(), table.steps.numpy(), marker=".", lw=1)
    ax.set_xlabel("blur level s (px at 512)")
    ax.set_ylabel("start step t (of 1000)")
    ax.set_title(f"DSST, tol={table.tol:.4f}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
