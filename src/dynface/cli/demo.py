"""`dynface demo -o OUTDIR`: restore the public-domain sample photos shipped with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from dynface.cli.restore import (
    CPU_STEPS,
    BgUpsampler,
    BgUpsamplerOption,
    ConfigOption,
    Device,
    DeviceOption,
    FidelityOption,
    ModelChoice,
    OverwriteOption,
    Precision,
    PrecisionOption,
    StepsOption,
    WeightsDirOption,
    run_restore,
)
from dynface.units import DEFAULT_FIDELITY

EPILOG = (
    "Example: dynface demo -o results/   (needs `dynface weights download` first)\n\n"
    f"On a CPU the demo takes --steps {CPU_STEPS} unless --steps is given (at most 14 network "
    "evaluations a face; the config's own schedule, ddim250, is the published one).\n\n"
    "Without weights: dynface demo -o smoke/ --config tiny-random --steps ddim5 (random tiny "
    "nets: the method runs in full, the faces come out as flat patches)."
)


def sample_photos_dir() -> Path:
    """Folder of the packaged sample photos (degraded copies of public-domain portraits)."""
    return Path(str(resources.files("dynface") / "assets" / "samples"))


def demo(
    output: Path = typer.Option(Path("results"), "-o", "--output", help="Output folder."),
    config: ConfigOption = "default",
    weights_dir: WeightsDirOption = None,
    device: DeviceOption = Device.auto,
    precision: PrecisionOption = Precision.fp32,
    steps: StepsOption = None,
    bg_upsampler: BgUpsamplerOption = BgUpsampler.auto,
    fidelity: FidelityOption = DEFAULT_FIDELITY,
    overwrite: OverwriteOption = False,
) -> None:
    """Restore the sample photos shipped with dynface (astronaut, Grace Hopper; public domain).

    Same outputs as `dynface restore`, with traces and before/after sheets: final/, faces/,
    traces/, compare/.
    """
    from dynface.photos import RestoreOptions

    model = ModelChoice(config, weights_dir, device, precision, steps).with_cpu_steps("demo")
    options = RestoreOptions(
        seed=0,
        save_trace=True,
        save_comparison=True,
        overwrite=overwrite,
        bg_upsampler=bg_upsampler.value,
        fidelity=fidelity,
    )
    if run_restore([str(sample_photos_dir())], output, model, options):
        raise typer.Exit(1)
