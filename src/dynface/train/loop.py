"""The one training loop, on accelerate: CPU, one GPU, or many (`accelerate launch` / torchrun).

Each process draws its own batches (sampler seeded by seed, rank and the step it starts from),
the task makes inputs and targets on the device, gradients are averaged by DDP, an EMA copy is
kept, and the main process logs CSV, validates, plots and writes safetensors checkpoints.
`resume` continues from the newest checkpoint with the optimizer, schedule and EMA restored; the
batches after a resume are fresh random draws, not a replay of the interrupted run.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import yaml
from accelerate import Accelerator
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, RandomSampler

from dynface.data.datasets import FaceImages
from dynface.errors import UsageError
from dynface.parallel import has_accelerator
from dynface.train.checkpoint import (
    latest_checkpoint,
    load_state,
    load_weights,
    save_checkpoint,
    save_weights,
)
from dynface.train.config import TrainConfig
from dynface.train.tasks import Task, cosine_lr, make_task

log = logging.getLogger(__name__)


def _batches(dataset: FaceImages, config: TrainConfig, rank: int, start: int):
    """Endless batches of clean faces for one process."""
    g = torch.Generator().manual_seed(config.seed * 1_000_003 + rank * 7919 + start)
    sampler = RandomSampler(dataset, replacement=True, num_samples=2**31 - 1, generator=g)
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        drop_last=True,
        persistent_workers=config.num_workers > 0,
    )
    yield from loader


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def plot_curves(out: Path) -> Path | None:
    """loss.png from log.csv (train loss) and val.csv (validation figures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_csv, val_csv = out / "log.csv", out / "val.csv"
    if not train_csv.exists():
        return None
    with open(train_csv) as handle:
        rows = list(csv.DictReader(handle))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], label="train loss")
    if val_csv.exists():
        with open(val_csv) as handle:
            vrows = list(csv.DictReader(handle))
        key = next((k for k in vrows[0] if k.startswith("val_")), None) if vrows else None
        if key:
            ax.plot(
                [int(r["step"]) for r in vrows], [float(r[key]) for r in vrows], "o-", label=key
            )
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=100)
    plt.close(fig)
    return out / "loss.png"


class TrainProgress(Protocol):
    """What the main process reports while training (the CLI shows it; None prints nothing)."""

    def started(self, first_step: int, last_step: int) -> None:
        """Training runs steps first_step..last_step."""

    def stepped(self, step: int, loss: float | None) -> None:
        """A step is done; `loss` is the mean loss at logging steps, else None."""

    def validated(self, step: int, figures: dict[str, float]) -> None:
        """Validation figures at `step`."""


@dataclass
class _Run:
    """Everything one training run carries from step to step, so the helpers stay small."""

    config: TrainConfig
    acc: Accelerator
    task: Task
    model: torch.nn.Module
    ema: AveragedModel | None
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    val_images: torch.Tensor | None
    progress: TrainProgress | None
    began: float = field(default_factory=time.monotonic)

    @property
    def out(self) -> Path:
        """The run's output folder."""
        return self.config.out

    @property
    def ckpt_dir(self) -> Path:
        """Where checkpoints are written and resumed from."""
        return self.config.out / "checkpoints"


def _train_set(config: TrainConfig) -> FaceImages:
    """The training images, refusing a config that lists none."""
    train_paths = config.train_data.paths(config.base_dir)
    if not train_paths:
        raise UsageError(
            f"the config's train_data lists no images (looked under {config.base_dir}); point "
            "train_data at a folder of face images"
        )
    return FaceImages(train_paths, config.image_size, flip=True)


def _build(
    config: TrainConfig, task: Task
) -> tuple[
    torch.nn.Module,
    AveragedModel | None,
    list[torch.nn.Parameter],
    torch.optim.Optimizer,
    torch.optim.lr_scheduler.LambdaLR,
]:
    """Model, EMA copy, trainable parameters, optimizer and schedule, identical on every process."""
    torch.manual_seed(config.seed)  # the same initial weights on every process
    model = task.build_model()
    ema = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
        if config.ema_decay > 0
        else None
    )
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cosine_lr(s, config.steps, config.warmup_steps)
    )
    return model, ema, params, opt, sched


def _resume(
    ckpt_dir: Path,
    acc: Accelerator,
    model: torch.nn.Module,
    ema: AveragedModel | None,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LambdaLR,
) -> int:
    """Restore the newest checkpoint into model, EMA, optimizer and schedule; return its step."""
    ckpt = latest_checkpoint(ckpt_dir)
    if ckpt is None:
        raise UsageError(f"--resume: no checkpoint under {ckpt_dir}; start without --resume")
    load_weights(model, ckpt / "model.safetensors")
    if ema is not None and (ckpt / "ema.safetensors").is_file():
        load_weights(ema, ckpt / "ema.safetensors")
    state = load_state(ckpt)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    start = int(state["step"])
    acc.print(f"resumed from {ckpt} at step {start}")
    return start


def _prepare_out(
    config: TrainConfig, acc: Accelerator, val_paths: list[Path]
) -> torch.Tensor | None:
    """On the main process: make the output folder, save the config, load validation images."""
    if not acc.is_main_process:
        return None
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    if not val_paths:
        return None
    val_set = FaceImages(val_paths, config.image_size)
    return torch.stack([val_set[i] for i in range(len(val_set))]).to(acc.device)


def _eval_model(run: _Run) -> torch.nn.Module:
    """The network to validate and ship: the EMA copy when kept, else the trained model."""
    return run.ema.module if run.ema is not None else run.acc.unwrap_model(run.model)


def _checkpoint(run: _Run, step: int) -> None:
    """Write a checkpoint on the main process; every process waits for it."""
    if run.acc.is_main_process:
        state = {"optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict()}
        save_checkpoint(
            run.ckpt_dir,
            step,
            run.acc.unwrap_model(run.model),
            run.ema,
            state,
            run.config.keep_checkpoints,
        )
    run.acc.wait_for_everyone()


def _validate(run: _Run, step: int) -> None:
    """Validate on the main process, log and report the figures, replot; every process waits."""
    if run.acc.is_main_process and run.val_images is not None:
        net = _eval_model(run)
        net.eval()
        with run.acc.autocast():
            figures = run.task.validate(net, run.val_images)
        net.train()
        _append_csv(run.out / "val.csv", {"step": step, **figures})
        if run.progress is not None:
            run.progress.validated(step, figures)
        else:
            run.acc.print(f"step {step} validation: {json.dumps(figures)}")
        plot_curves(run.out)
    run.acc.wait_for_everyone()


def _step(run: _Run, x: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, float]]:
    """One optimizer step (and EMA update) on batch x; return the loss and task metrics."""
    acc, config = run.acc, run.config
    g = torch.Generator().manual_seed(config.seed * 1_000_003 + acc.process_index * 7919 + step)
    with acc.autocast():
        loss, metrics = run.task.loss(run.model, x, g)
    acc.backward(loss)
    if config.grad_clip > 0:
        acc.clip_grad_norm_(run.params, config.grad_clip)
    run.opt.step()
    run.sched.step()
    run.opt.zero_grad(set_to_none=True)
    if run.ema is not None:
        run.ema.update_parameters(acc.unwrap_model(run.model))
    return loss, metrics


def _log_step(run: _Run, step: int, loss: torch.Tensor, metrics: dict[str, float]) -> float | None:
    """At logging steps, average the loss over processes and append it to log.csv."""
    config, acc = run.config, run.acc
    if not (step % config.log_every == 0 or step == config.steps):
        return None
    mean_loss = float(acc.reduce(loss.detach().float(), reduction="mean"))
    if acc.is_main_process:
        row = {
            "step": step,
            "loss": mean_loss,
            "lr": run.sched.get_last_lr()[0],
            "seconds": round(time.monotonic() - run.began, 2),
            **metrics,
        }
        _append_csv(run.out / "log.csv", row)
    return mean_loss


def _out_of_time(run: _Run) -> bool:
    """Whether max_minutes has passed on any process (all processes must agree on stopping)."""
    if run.config.max_minutes is None:
        return False
    late = torch.tensor([time.monotonic() - run.began > 60 * run.config.max_minutes])
    return bool(run.acc.gather(late.to(run.acc.device)).any())


def _loop(run: _Run, start: int, dataset: FaceImages) -> int:
    """Train from step start+1 to config.steps (or until out of time); return the last step."""
    config, acc = run.config, run.acc
    batches = _batches(dataset, config, acc.process_index, start)
    run.model.train()
    step = start
    if run.progress is not None and acc.is_main_process:
        run.progress.started(start + 1, config.steps)
    for step in range(start + 1, config.steps + 1):
        x = next(batches).to(acc.device, non_blocking=True)
        loss, metrics = _step(run, x, step)
        mean_loss = _log_step(run, step, loss, metrics)
        if run.progress is not None and acc.is_main_process:
            run.progress.stepped(step, mean_loss)
        out_of_time = _out_of_time(run)
        if step % config.val_every == 0 or step == config.steps or out_of_time:
            _validate(run, step)
        if step % config.ckpt_every == 0 or step == config.steps or out_of_time:
            _checkpoint(run, step)
        if out_of_time:
            acc.print(f"stopping at step {step}: max_minutes={config.max_minutes} reached")
            break
    return step


def _save_final(run: _Run, step: int) -> Path:
    """Write final.safetensors (EMA when kept) with its metadata and the last plot."""
    final = run.out / "final.safetensors"
    if run.acc.is_main_process:
        meta = {
            "task": run.config.task,
            "step": step,
            "model": run.config.model,
            "image_size": run.config.image_size,
            "ema": run.ema is not None,
        }
        save_weights(_eval_model(run), final, meta)
        plot_curves(run.out)
    run.acc.wait_for_everyone()
    return final


def train(config: TrainConfig, resume: bool = False, progress: TrainProgress | None = None) -> Path:
    """Run one training; return the path of the final weights (EMA when enabled).

    `progress` (main process only) hears of every step and validation; without it the
    validation figures are printed, as before.
    """
    # Without an accelerator, accelerate only joins a torchrun/MPI process group when told cpu=True.
    acc = Accelerator(mixed_precision=config.mixed_precision, cpu=not has_accelerator())
    task = make_task(config)
    dataset = _train_set(config)
    val_paths = config.val_data.paths(config.base_dir)
    model, ema, params, opt, sched = _build(config, task)
    start = _resume(config.out / "checkpoints", acc, model, ema, opt, sched) if resume else 0
    model, opt = acc.prepare(model, opt)
    if ema is not None:
        ema.to(acc.device)
    val_images = _prepare_out(config, acc, val_paths)
    run = _Run(config, acc, task, model, ema, params, opt, sched, val_images, progress)
    step = _loop(run, start, dataset)
    return _save_final(run, step)
