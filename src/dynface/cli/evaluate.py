"""`dynface eval`: score restored faces against ground truth; `eval compare`: compare runs."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from dynface.metrics.evaluate import EvalOptions

app = typer.Typer(
    help=(
        "Measure restored faces: `dynface eval --restored DIR --gt DIR -o REPORT`. "
        "Compare reports: `dynface eval compare RUN1 RUN2 -o OUT`. See docs/evaluation.md."
    ),
    invoke_without_command=True,
    no_args_is_help=False,
    epilog=(
        "Example: dynface eval --restored results/faces/restored --gt celeba_test/hq "
        "-o reports/dynface\n\n"
        "Then: dynface eval compare reports/dynface reports/codeformer -o reports/compare"
    ),
)


class LpipsNet(StrEnum):
    alex = "alex"
    vgg = "vgg"


ALL_METRICS = "psnr, ssim, psnr_y, ssim_y, lpips, fid, niqe, idd, lmd"


RestoredOption = Annotated[
    Path | None, typer.Option("--restored", help="Folder of restored images.")
]
GtOption = Annotated[
    Path | None, typer.Option("--gt", help="Ground-truth folder (same file names).")
]
ReportOption = Annotated[Path | None, typer.Option("-o", "--out", help="Report folder to write.")]
MetricsOption = Annotated[
    str,
    typer.Option(
        "--metrics",
        help=f"Comma-separated list, e.g. psnr,lpips. all: {ALL_METRICS}. A metric you name "
        "that cannot run makes the exit status 1.",
    ),
]
FidRefOption = Annotated[
    Path | None,
    typer.Option("--fid-ref", help="FID reference: a folder or a statistics .npz (default: --gt)."),
]
WeightsDirOption = Annotated[
    Path | None, typer.Option("--weights-dir", help="Folder holding LPIPS/FID weight files.")
]
DownloadOption = Annotated[
    bool,
    typer.Option("--download", help="Download missing LPIPS/FID weights from their registry URLs."),
]
LpipsNetOption = Annotated[LpipsNet, typer.Option("--lpips-net", help="LPIPS trunk.")]
NameOption = Annotated[str | None, typer.Option("--name", help="Method name in the report.")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1 ...")]
BatchSizeOption = Annotated[
    int,
    typer.Option(
        "--batch-size",
        min=1,
        help="Images per batch on the device (lower it if memory runs out).",
    ),
]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Do not reuse or store features.")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace an existing report.")]


@app.callback()
def run(
    ctx: typer.Context,
    restored: RestoredOption = None,
    gt: GtOption = None,
    out: ReportOption = None,
    metrics: MetricsOption = "all",
    fid_ref: FidRefOption = None,
    weights_dir: WeightsDirOption = None,
    download: DownloadOption = False,
    lpips_net: LpipsNetOption = LpipsNet.alex,
    name: NameOption = None,
    device: DeviceOption = "auto",
    batch_size: BatchSizeOption = 8,
    no_cache: NoCacheOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Score a folder of restored images (pairs matched by file name stem)."""
    if ctx.invoked_subcommand is not None:
        return
    if restored is None or out is None:
        raise typer.BadParameter("--restored and -o are required", param_hint="--restored/-o")
    from dynface.metrics.evaluate import METRICS, EvalOptions

    options = EvalOptions(
        metrics=METRICS if metrics == "all" else tuple(m.strip() for m in metrics.split(",") if m),
        weights_dir=weights_dir,
        download=download,
        fid_ref=fid_ref,
        lpips_net=lpips_net.value,
        device=device,
        batch_size=batch_size,
        use_cache=not no_cache,
    )
    _score(restored, gt, out, options, name or restored.resolve().name, overwrite, metrics != "all")


def _score(
    restored: Path,
    gt: Path | None,
    out: Path,
    options: EvalOptions,
    name: str,
    overwrite: bool,
    named: bool,
) -> None:
    """Evaluate, write the report, print summary.md; exit 1 when a metric the user named failed."""
    from dynface.metrics.evaluate import UnmatchedFilesError, evaluate
    from dynface.metrics.report import write_report
    from dynface.parallel import finish

    try:
        report = evaluate(restored, gt, options, progress=True)
        if report is None:  # not the main process of a multi-process run: it writes the report
            return
        folder = write_report(report, out, name, overwrite=overwrite)
    except (UnmatchedFilesError, FileNotFoundError, FileExistsError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        finish()
    typer.echo((folder / "summary.md").read_text(encoding="utf-8"))
    if named and report.missing:
        reasons = "; ".join(f"{m}: {why}" for m, why in report.missing.items())
        typer.echo(f"error: requested metric(s) could not run ({reasons})", err=True)
        raise typer.Exit(1)


@app.command(
    "compare",
    epilog="Example: dynface eval compare reports/dynface reports/difface -o cmp --x psnr --y fid",
)
def compare_cmd(
    runs: list[Path] = typer.Argument(..., help="Report folders written by `dynface eval`."),
    out: Path = typer.Option(..., "-o", "--out", help="Folder for compare.md/.csv and the plot."),
    x: str = typer.Option("psnr", "--x", help="Metric on the horizontal axis."),
    y: str | None = typer.Option(None, "--y", help="Vertical axis (default fid, else niqe)."),
    labels: str | None = typer.Option(None, "--labels", help="Comma-separated method names."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Table over several reports and a scatter plot of two metrics."""
    from dynface.metrics.report import compare

    names = [s.strip() for s in labels.split(",")] if labels else None
    try:
        written = compare(runs, out, x=x, y=y, labels=names, overwrite=overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(written["markdown"].read_text(encoding="utf-8"))
    typer.echo(f"plot: {written['plot']}")
