"""`dynface demo -o OUTDIR`: restore the public-domain sample photos shipped with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from dynface.cli.restore import Device, Precision, restore


def sample_photos_dir() -> Path:
    """Folder of the packaged sample photos (degraded copies of public-domain portraits)."""
    return Path(str(resources.files("dynface") / "assets" / "samples"))


def demo(
    output: Path = typer.Option(Path("results"), "-o", "--output", help="Output folder."),
    config: str = typer.Option(
        "default", help='Preset ("default", "tiny-random") or a YAML config file.'
    ),
    weights_dir: Path | None = typer.Option(
        None, help="Folder with the weight files (default: the dynface cache)."
    ),
    device: Device = typer.Option(Device.auto, help="Where to run the networks."),
    precision: Precision = typer.Option(Precision.fp32, help="Network precision."),
    steps: str | None = typer.Option(
        None, help='Sampling steps (respacing), e.g. "ddim50" for a faster CPU run.'
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Restore the sample photos shipped with dynface (astronaut, Grace Hopper; public domain).

    Same outputs as `dynface restore`, with traces: final/, faces/, traces/.
    """
    restore(
        inputs=[str(sample_photos_dir())],
        output=output,
        aligned=False,
        config=config,
        weights_dir=weights_dir,
        device=device,
        precision=precision,
        steps=steps,
        seed=0,
        upscale=2.0,
        only_center_face=False,
        save_trace=True,
        overwrite=overwrite,
        batch_size=4,
    )
