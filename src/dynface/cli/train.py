"""`dynface train sde|tm|se|dgsa --config FILE`: run a trainer (works under accelerate/torchrun)."""

from __future__ import annotations

from pathlib import Path

import typer

from dynface.train.config import TASKS


def train(
    task: str = typer.Argument(..., help=f"What to train: {' | '.join(TASKS)}."),
    config: Path = typer.Option(..., "--config", "-c", help="YAML training config."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint."),
    output_dir: str = typer.Option(None, help="Override the config's output_dir."),
    steps: int = typer.Option(None, help="Override the number of steps."),
    max_minutes: float = typer.Option(None, help="Stop (and save) after this many minutes."),
    mixed_precision: str = typer.Option(None, help="no | fp16 | bf16 (overrides the config)."),
    vgg_weights: Path = typer.Option(None, help="DGSA: VGG16 weights file for the DISTS term."),
) -> None:
    """Train one network from a YAML config; checkpoints, CSV log and loss.png go to output_dir."""
    from dynface.train.config import TrainConfig
    from dynface.train.loop import train as run

    if task not in TASKS:
        raise typer.BadParameter(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    overrides = {
        "output_dir": output_dir,
        "steps": steps,
        "max_minutes": max_minutes,
        "mixed_precision": mixed_precision,
    }
    try:
        cfg = TrainConfig.from_yaml(config, overrides)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if cfg.task != task:
        typer.echo(f"error: {config} is a {cfg.task!r} config, not {task!r}", err=True)
        raise typer.Exit(2)
    if vgg_weights is not None:
        cfg.task_args["vgg_weights"] = str(vgg_weights.resolve())
    final = run(cfg, resume=resume)
    typer.echo(f"done: {final}")
