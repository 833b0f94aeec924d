"""`dynface weights ...`: list, download, verify and locate pretrained weight files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dynface import weights as w
from dynface.metrics import weights as _metric_weights  # noqa: F401  (registers metric files)

app = typer.Typer(
    help=(
        "Pretrained weight files: list them, download them into the cache, check their sha256, "
        "print their path.\n\n"
        f"Cache: ${w.ENV_HOME}/weights (default ~/.cache/dynface/weights). "
        f"Mirror: ${w.ENV_MIRROR} replaces the download folder. "
        f"Offline: ${w.ENV_OFFLINE}=1 never touches the network."
    ),
    no_args_is_help=True,
)

_out = Console()
_err = Console(stderr=True)

WeightsDir = typer.Option(
    None,
    "--weights-dir",
    help="Folder searched before the cache (files named as in `dynface weights list`).",
    file_okay=False,
)


def _human(size: int | None) -> str:
    if size is None:
        return "?"
    if size < 1024:
        return f"{size} B"
    exponent = min(3, (size.bit_length() - 1) // 10)
    return f"{size / 1024**exponent:.1f} {('B', 'KiB', 'MiB', 'GiB')[exponent]}"


def _names(names: list[str] | None) -> list[str]:
    """Registry names for the given names or file names; all of them when none are given."""
    try:
        return [w.get_spec(name).name for name in names] if names else list(w.REGISTRY)
    except w.WeightsUnavailable as err:
        _err.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(2) from None


def _default_config_weights() -> list[str]:
    """Registry names of the weights that `dynface restore` needs with the default config."""
    from dynface.config import load_config

    config = load_config("default")
    return [config["prior"]["weights"], config["restorer"]["weights"]]


@app.command("list", epilog="Example: dynface weights list")
def list_weights(weights_dir: Path | None = WeightsDir) -> None:
    """Show every known weight file, whether it is on disk, and how its sha256 is known."""
    table = Table(title=f"Weight files (cache: {w.cache_dir()})")
    table.add_column("name / description", overflow="fold", ratio=1)
    for column in ("size", "status", "sha256", "architecture"):
        table.add_column(column, no_wrap=True)
    colours = {"present": "green", "missing": "yellow", "partial": "yellow", "corrupt": "red"}
    any_corrupt = False
    for spec in w.REGISTRY.values():
        status, path = w.local_status(spec, weights_dir)
        any_corrupt |= status == "corrupt"
        size = path.stat().st_size if path is not None and status != "partial" else spec.size
        _, origin = w.expected_sha256(spec)
        sha = {"registry": "known", "recorded": "recorded (first use)"}.get(origin, "unknown")
        table.add_row(
            f"[bold]{spec.name}[/]\n[dim]{spec.description}[/]",
            _human(size),
            f"[{colours[status]}]{status}[/]",
            sha,
            spec.architecture,
        )
    _out.print(table)
    _out.print(
        "sha256 'unknown': upstream publishes none, so dynface records it in "
        f"{w.cache_dir() / w.CHECKSUMS_FILE} the first time the file loads into its network and "
        "checks it on every later load (trust on first use). 'present' checks the size and the "
        "first bytes only; run `dynface weights verify`."
    )
    if any_corrupt:
        raise typer.Exit(1)


@app.command(
    epilog="Examples: dynface weights download  ·  dynface weights download --all  ·  "
    "offline: copy the files into the folder `dynface weights list` shows"
)
def download(
    names: list[str] | None = typer.Argument(
        None,
        help="Weight names or file names; without names, the files of the default restoration "
        "config (the DifFace prior and restorer).",
    ),
    all_: bool = typer.Option(
        False, "--all", help="Download every known weight file (metrics' networks too)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Download again even when the file is already in the cache."
    ),
) -> None:
    """Download weight files into the cache, resuming partial downloads and checking sha256."""
    failed = False
    wanted = _names(None if all_ else names) if all_ or names else _default_config_weights()
    for name in wanted:
        try:
            path = w.download(name, force=force)
        except (w.WeightsUnavailable, w.WeightsCorrupted) as err:
            _err.print(f"[red]failed[/] {name}: {escape(str(err))}", soft_wrap=True)
            failed = True
            continue
        note = "" if w.expected_sha256(w.get_spec(name))[0] else " (trusted once it first loads)"
        _out.print(f"[green]ok[/] {name}: {path}{note}", soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@app.command(epilog="Example: dynface weights verify iddpm_ffhq512_ema500000")
def verify(
    names: list[str] | None = typer.Argument(
        None,
        help="Weight names or file names; without names, the files of the default restoration "
        "config and every other known file that is on disk.",
    ),
    weights_dir: Path | None = WeightsDir,
) -> None:
    """Check weight files: content, size, and sha256 against the known or first-use value.

    Exits with 1 when a checked file is missing or corrupt. 'unrecorded': present and plausible,
    its sha256 is recorded the first time it loads into its network.
    """
    failed = False
    for name in _names(names) if names else _verify_defaults(weights_dir):
        result = w.verify(name, weights_dir)
        colour = {"ok": "green", "unrecorded": "yellow", "missing": "red"}.get(result.status, "red")
        _out.print(f"[{colour}]{result.status}[/] {result.name}: {result.message}", soft_wrap=True)
        failed |= result.status in ("corrupt", "missing")
    if failed:
        raise typer.Exit(1)


def _verify_defaults(weights_dir: Path | None) -> list[str]:
    """What `verify` checks without names: what restore needs, plus every file on disk."""
    needed = [name for name in _default_config_weights() if name in w.REGISTRY]
    present = [
        spec.name
        for spec in w.REGISTRY.values()
        if spec.name not in needed and w.locate(spec, weights_dir) is not None
    ]
    return needed + present


@app.command(epilog="Example: dynface weights path swinir_restoration512_L1")
def path(
    name: str = typer.Argument(..., help="Weight name or file name."),
    weights_dir: Path | None = WeightsDir,
) -> None:
    """Print the path of a weight file that is on disk (checked); never downloads."""
    if not Path(name).is_file():
        _names([name])
    try:
        found = w.resolve(name, weights_dir=weights_dir, download=False)
    except (w.WeightsUnavailable, w.WeightsCorrupted) as err:
        _err.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(1) from None
    typer.echo(str(found))
