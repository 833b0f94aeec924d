"""`dynface train sde|tm|se|dgsa --config FILE`: run a trainer (works under accelerate/torchrun)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dynface.cli.progress import ProgressBar
from dynface.train.config import PRECISIONS, TASKS

if TYPE_CHECKING:
    from dynface.train.loop import TrainProgress

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
    with progress_for(cfg.task) as progress:
        final = run(cfg, resume=resume, progress=progress)
    typer.echo(f"done: {final}")


@contextlib.contextmanager
def progress_for(task: str) -> Iterator[TrainProgress]:
    """A live bar on a terminal; a plain line per validation when stderr is piped or a file."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield LineProgress(task)
        return
    with BarProgress(task, console) as bar:
        yield bar


class LineProgress:
    """For logs: one line when training starts and one per validation, flushed at once."""

    def __init__(self, task: str) -> None:
        self.task, self.last, self.began = task, 0, time.monotonic()

    def started(self, first_step: int, last_step: int) -> None:
        self.last = last_step
        _line(f"train {self.task}: steps {first_step}-{last_step}; a line per validation")

    def stepped(self, step: int, loss: float | None) -> None:
        """Steps are not printed one by one (log.csv has them)."""

    def validated(self, step: int, figures: dict[str, float]) -> None:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
        minutes = (time.monotonic() - self.began) / 60
        _line(f"train {self.task}: step {step}/{self.last} ({minutes:.1f} min): {shown}")


class BarProgress(ProgressBar):
    """A rich bar over steps with the latest loss and validation figures."""

    def __init__(self, task: str, console: Any) -> None:
        from rich.progress import TextColumn

        super().__init__(console, "train {task.description}", TextColumn("{task.fields[note]}"))
        self.task = task
        self._id = self._bar.add_task(task, total=None, note="")

    def started(self, first_step: int, last_step: int) -> None:
        self._bar.update(self._id, total=last_step, completed=first_step - 1)

    def stepped(self, step: int, loss: float | None) -> None:
        note = {"note": f"loss {loss:.4g}"} if loss is not None else {}
        self._bar.update(self._id, completed=step, **note)

    def validated(self, step: int, figures: dict[str, float]) -> None:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
        self._bar.console.print(f"step {step}: {shown}", highlight=False)


def _line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
