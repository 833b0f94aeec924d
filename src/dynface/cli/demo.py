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
    cpu_speedup,
    run_restore,
)
from dynface.units import DEFAULT_FIDELITY

EPILOG = (
    "Example: dynface demo -o results/   (needs `dynface weights download` first)\n\n"
    f"On a CPU the demo takes --steps {CPU_STEPS} unless --steps is given (faster; the config's "
    "own schedule is finer).\n\n"
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

    model = ModelChoice(config, weights_dir, device, precision, steps or cpu_steps(config, device))
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


def cpu_steps(config: str, device: str) -> str | None:
    """`CPU_STEPS` when the run is on a CPU and the config asks for more steps; said on stderr.

    None otherwise, and when the config or device is wrong (the usage checks report those).
    """
    from rich.console import Console

    from dynface.devices import pick_device

    try:
        on_cpu = pick_device(device).type == "cpu"
    except RuntimeError:
        return None
    speedup = cpu_speedup(config)
    if not on_cpu or speedup is None:
        return None
    configured, ratio = speedup
    Console(stderr=True).print(
        f"On a CPU the demo runs --steps {CPU_STEPS}: {ratio}x fewer steps than the config's "
        f"{configured}; pass --steps {configured} for those.",
        highlight=False,
    )
    return CPU_STEPS
