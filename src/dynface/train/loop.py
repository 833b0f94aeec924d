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
from dynface.train.tasks import cosine_lr, make_task

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


def train(
    config: TrainConfig, resume: bool = False, progress: TrainProgress | None = None
) -> Path:
    """Run one training; return the path of the final weights (EMA when enabled).

    `progress` (main process only) hears of every step and validation; without it the
    validation figures are printed, as before.
    """
    # Without an accelerator, accelerate only joins a torchrun/MPI process group when told cpu=True.
    acc = Accelerator(mixed_precision=config.mixed_precision, cpu=not has_accelerator())
    out = config.out
    ckpt_dir = out / "checkpoints"
    task = make_task(config)
    train_paths = config.train_data.paths(config.base_dir)
    if not train_paths:
        raise UsageError(
            f"the config's train_data lists no images (looked under {config.base_dir}); point "
            "train_data at a folder of face images"
        )
    dataset = FaceImages(train_paths, config.image_size, flip=True)
    val_paths = config.val_data.paths(config.base_dir)

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
    start = 0
    ckpt = latest_checkpoint(ckpt_dir) if resume else None
    if resume and ckpt is None:
        raise UsageError(f"--resume: no checkpoint under {ckpt_dir}; start without --resume")
    if ckpt is not None:
        load_weights(model, ckpt / "model.safetensors")
        if ema is not None and (ckpt / "ema.safetensors").is_file():
            load_weights(ema, ckpt / "ema.safetensors")
        state = load_state(ckpt)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start = int(state["step"])
        acc.print(f"resumed from {ckpt} at step {start}")
    model, opt = acc.prepare(model, opt)
    if ema is not None:
        ema.to(acc.device)

    val_images = None
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        if val_paths:
            val_set = FaceImages(val_paths, config.image_size)
            val_images = torch.stack([val_set[i] for i in range(len(val_set))]).to(acc.device)

    def eval_model() -> torch.nn.Module:
        return ema.module if ema is not None else acc.unwrap_model(model)

    def checkpoint(step: int) -> None:
        if acc.is_main_process:
            state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
            save_checkpoint(
                ckpt_dir,
                step,
                acc.unwrap_model(model),
                ema,
                state,
                config.keep_checkpoints,
            )
        acc.wait_for_everyone()

    def validate(step: int) -> None:
        if acc.is_main_process and val_images is not None:
            net = eval_model()
            net.eval()
            with acc.autocast():
                figures = task.validate(net, val_images)
            net.train()
            _append_csv(out / "val.csv", {"step": step, **figures})
            if progress is not None:
                progress.validated(step, figures)
            else:
                acc.print(f"step {step} validation: {json.dumps(figures)}")
            plot_curves(out)
        acc.wait_for_everyone()

    began = time.monotonic()
    batches = _batches(dataset, config, acc.process_index, start)
    model.train()
    step = start
    if progress is not None and acc.is_main_process:
        progress.started(start + 1, config.steps)
    for step in range(start + 1, config.steps + 1):
        x = next(batches).to(acc.device, non_blocking=True)
        g = torch.Generator().manual_seed(config.seed * 1_000_003 + acc.process_index * 7919 + step)
        with acc.autocast():
            loss, metrics = task.loss(model, x, g)
        acc.backward(loss)
        if config.grad_clip > 0:
            acc.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update_parameters(acc.unwrap_model(model))
        mean_loss = None
        if step % config.log_every == 0 or step == config.steps:
            mean_loss = float(acc.reduce(loss.detach().float(), reduction="mean"))
            if acc.is_main_process:
                row = {
                    "step": step,
                    "loss": mean_loss,
                    "lr": sched.get_last_lr()[0],
                    "seconds": round(time.monotonic() - began, 2),
                    **metrics,
                }
                _append_csv(out / "log.csv", row)
        if progress is not None and acc.is_main_process:
            progress.stepped(step, mean_loss)
        out_of_time = False
        if config.max_minutes is not None:  # every process must agree on stopping
            late = torch.tensor([time.monotonic() - began > 60 * config.max_minutes])
            out_of_time = bool(acc.gather(late.to(acc.device)).any())
        if step % config.val_every == 0 or step == config.steps or out_of_time:
            validate(step)
        if step % config.ckpt_every == 0 or step == config.steps or out_of_time:
            checkpoint(step)
        if out_of_time:
            acc.print(f"stopping at step {step}: max_minutes={config.max_minutes} reached")
            break
    final = out / "final.safetensors"
    if acc.is_main_process:
        meta = {
            "task": config.task,
            "step": step,
            "model": config.model,
            "image_size": config.image_size,
            "ema": ema is not None,
        }
        save_weights(eval_model(), final, meta)
        plot_curves(out)
    acc.wait_for_everyone()
    return final
