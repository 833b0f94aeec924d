"""`dynface train sde|tm|se|dgsa --config FILE`: run a trainer (works under accelerate/torchrun)."""

from __future__ import annotations

from enum import StrEnum
from importlib import resources
from pathlib import Path

import typer

from dynface.train.config import PRECISIONS, TASKS

Task = StrEnum("Task", {name: name for name in TASKS})
MixedPrecision = StrEnum("MixedPrecision", {name: name for name in PRECISIONS})

EPILOG = (
    "Example: dynface train sde --config sde --output-dir runs/sde --max-minutes 60\n\n"
    "--config takes a YAML file or a packaged config name (sde, se, tm: they read "
    "../shared/data; copy one and edit train_data for your faces). "
    "Multi-GPU: accelerate launch -m dynface train ... See docs/training.md."
)


def packaged_configs() -> dict[str, Path]:
    """Training configs shipped with dynface, by name (file stem)."""
    folder = resources.files("dynface") / "configs" / "train"
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


def resolve_config(config: Path) -> Path:
    """A YAML path as given, or the packaged config of that name; a usage error otherwise."""
    if config.is_file():
        return config
    shipped = packaged_configs()
    if str(config) in shipped:
        return shipped[str(config)]
    raise typer.BadParameter(
        f"{config}: no such file; pass a YAML training config or one of the packaged configs "
        f"({', '.join(sorted(shipped))})",
        param_hint="--config",
    )


def train(
    task: Task = typer.Argument(..., help="What to train (see docs/training.md)."),
    config: Path = typer.Option(
        ..., "--config", "-c", help="YAML training config, or a packaged one: sde, se, tm."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint."),
    output_dir: str = typer.Option(None, help="Override the config's output_dir."),
    steps: int = typer.Option(None, min=1, help="Override the number of steps."),
    max_minutes: float = typer.Option(None, help="Stop (and save) after this many minutes."),
    mixed_precision: MixedPrecision = typer.Option(None, help="Override the config's precision."),
    vgg_weights: Path = typer.Option(None, help="DGSA: VGG16 weights file for the DISTS term."),
) -> None:
    """Train one network from a YAML config; checkpoints, CSV log and loss.png go to output_dir."""
    from dynface.train.config import TrainConfig
    from dynface.train.loop import train as run

    path = resolve_config(config)
    overrides = {
        "output_dir": output_dir,
        "steps": steps,
        "max_minutes": max_minutes,
        "mixed_precision": mixed_precision.value if mixed_precision else None,
    }
    try:
        cfg = TrainConfig.from_yaml(path, overrides)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--config") from None
    if cfg.task != task.value:
        raise typer.BadParameter(
            f"{config} is a {cfg.task!r} config, not {task.value!r}; "
            f"run `dynface train {cfg.task}` or pass a {task.value} config",
            param_hint="--config",
        )
    if vgg_weights is not None:
        cfg.task_args["vgg_weights"] = str(vgg_weights.resolve())
    final = run(cfg, resume=resume)
    typer.echo(f"done: {final}")
