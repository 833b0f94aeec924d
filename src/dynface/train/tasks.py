"""What each trainer learns: model, loss on a batch of clean faces, and validation figures.

Every task receives batches of clean faces at `config.image_size` and makes its own inputs on the
device (blur, degradation, s* targets), so the loop in `loop.py` is the same for all of them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynface.data.datasets import BlurredFaces, DegradedPairs
from dynface.data.degrade import DegradationConfig
from dynface.errors import ResourceError
from dynface.method.blur import gaussian_blur
from dynface.nets.estimator import SDE, SE, TM
from dynface.resize import resize
from dynface.train.config import TrainConfig

#: Blur levels (px at 512) of the SDE validation set: every held-out face at every level.
SDE_VAL_LEVELS = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0)
#: Fixed seed of validation draws, so figures are comparable between runs and steps.
VAL_SEED = 1234


def exact(x: Tensor) -> torch.autocast:
    """A context without mixed precision: inputs and targets are made in float32."""
    return torch.autocast(device_type=x.device.type, enabled=False)


def _chunks(x: Tensor, size: int):
    for i in range(0, x.shape[0], size):
        yield x[i : i + size]


def degradation_config(args: dict[str, Any]) -> DegradationConfig:
    """DegradationConfig from the `degradation` mapping of task_args (lists become tuples)."""
    raw = args.get("degradation") or {}
    return DegradationConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


class Task:
    """Base: subclasses set `name` and implement build_model, loss and validate."""

    name = ""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.args = dict(config.task_args)

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def loss(self, model: nn.Module, x: Tensor, g: torch.Generator) -> tuple[Tensor, dict]:
        raise NotImplementedError

    @torch.no_grad()
    def validate(self, model: nn.Module, x: Tensor) -> dict[str, float]:
        raise NotImplementedError

    def _path(self, value: str) -> Path:
        return self.config.base_dir / value


class SDETask(Task):
    """SDE: regress the known blur s of clean faces blurred by k(s) plus mild noise (L1 in px)."""

    name = "sde"

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        self.maker = BlurredFaces(
            s_range=tuple(self.args.get("s_range", (0.0, 16.0))),
            noise_max=float(self.args.get("noise_max", 3.0)),
            pixel_scale=config.pixel_scale,
        )

    def build_model(self) -> nn.Module:
        return SDE(**self.config.model)

    def loss(self, model, x, g):
        with exact(x):
            y, s = self.maker(x, g)
        pred = model(y)
        loss = F.l1_loss(pred.float(), s)
        return loss, {"mae_px": loss.item()}

    @torch.no_grad()
    def validate(self, model, x):
        g = torch.Generator().manual_seed(VAL_SEED)
        errors = []
        for level in SDE_VAL_LEVELS:
            for chunk in _chunks(x, self.config.batch_size):
                noise = torch.randn(chunk.shape, generator=g).to(chunk.device) / 255.0
                with exact(chunk):
                    y = gaussian_blur(chunk, level * self.config.pixel_scale) + noise
                y = y.clamp(0, 1)
                errors.append((model(y).float() - level).abs())
        err = torch.cat(errors).reshape(len(SDE_VAL_LEVELS), -1)
        out = {"val_mae_px": float(err.mean())}
        out.update(
            {f"val_mae_s{lv:g}": float(e.mean()) for lv, e in zip(SDE_VAL_LEVELS, err, strict=True)}
        )
        return out


class _PairTask(Task):
    """Shared by TM and SE: degraded pairs with s* targets, and a fixed validation set."""

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        self.maker = DegradedPairs(degradation_config(self.args), config.pixel_scale)
        self._val: list[tuple[Tensor, Tensor, Tensor]] | None = None

    def _val_pairs(self, x: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
        if self._val is None:
            g = torch.Generator().manual_seed(VAL_SEED)
            with exact(x):
                self._val = [self.maker(c, g) for c in _chunks(x, self.config.batch_size)]
        return self._val


class TMTask(_PairTask):
    """TM: degraded y -> k(s*) * x, L1 at the TM's working size."""

    name = "tm"

    def build_model(self) -> nn.Module:
        return TM(**self.config.model)

    def loss(self, model, x, g):
        with exact(x):
            y, target, _ = self.maker(x, g)
        pred = model(y)
        loss = F.l1_loss(pred.float(), resize(target, pred.shape[-1], mode="bilinear"))
        return loss, {"l1": loss.item()}

    @torch.no_grad()
    def validate(self, model, x):
        mse, l1 = [], []
        for y, target, _ in self._val_pairs(x):
            pred = model(y).float()
            target = resize(target, pred.shape[-1], mode="bilinear")
            l1.append((pred - target).abs().mean(dim=(1, 2, 3)))
            mse.append((pred - target).pow(2).mean(dim=(1, 2, 3)))
        mse_t = torch.cat(mse)
        return {
            "val_l1": float(torch.cat(l1).mean()),
            "val_psnr": float((-10 * torch.log10(mse_t.clamp_min(1e-10))).mean()),
        }


class SETask(_PairTask):
    """SE = SDE(TM(y)) fine-tuned jointly: L1 on s* plus `tm_weight` x the TM image L1."""

    name = "se"

    def build_model(self) -> nn.Module:
        from dynface.train.checkpoint import load_weights

        model = SE(TM(**self.config.model.get("tm", {})), SDE(**self.config.model.get("sde", {})))
        for part in ("tm", "sde"):
            init = self.args.get(f"init_{part}")
            if init and not self._path(init).is_file():
                raise ResourceError(
                    f"se training starts from the {part.upper()} trained first, but "
                    f"{self._path(init)} does not exist: run `dynface train {part} --config "
                    f"{part}` first (it writes runs/{part}/final.safetensors), or set "
                    f"task_args.init_{part} to your {part.upper()} weights, or to null"
                )
            if init:
                load_weights(getattr(model, part), self._path(init))
        return model

    def loss(self, model, x, g):
        with exact(x):
            y, target, s = self.maker(x, g)
        pred, blurred = model(y, return_blurred=True)
        s_loss = F.l1_loss(pred.float(), s)
        tm_loss = F.l1_loss(blurred.float(), resize(target, blurred.shape[-1], mode="bilinear"))
        loss = s_loss + float(self.args.get("tm_weight", 1.0)) * tm_loss
        return loss, {"mae_px": s_loss.item(), "tm_l1": tm_loss.item()}

    @torch.no_grad()
    def validate(self, model, x):
        err = torch.cat([(model(y).float() - s).abs() for y, _, s in self._val_pairs(x)])
        return {"val_mae_px": float(err.mean())}


def dgsa_task(config: TrainConfig) -> Task:
    """The DGSA trainer lives in its own module (it needs the diffusion prior)."""
    from dynface.train.dgsa import DGSATask

    return DGSATask(config)


TASK_TYPES = {"sde": SDETask, "tm": TMTask, "se": SETask, "dgsa": dgsa_task}


def make_task(config: TrainConfig) -> Task:
    """The task object for `config.task`."""
    return TASK_TYPES[config.task](config)


def cosine_lr(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warm-up, then cosine decay to 5% of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
