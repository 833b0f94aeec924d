"""`Restorer`: the one object users call to restore aligned faces (whole photos build on it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dynface import weights
from dynface.checkpoints import load_into
from dynface.config import load_config
from dynface.devices import pick_device
from dynface.diffusion import Diffusion
from dynface.method.pipeline import MethodSettings, Pipeline
from dynface.nets import build_swinir, build_unet

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class RestoreResult:
    """Restored images (B, 3, H, W) in [0, 1], on the host, and one trace dict per image."""

    images: Tensor
    traces: list[dict[str, Any]]


class Restorer:
    """Diffusion face restorer (DynFaceRestore on DifFace's networks).

    Build it with `Restorer.from_config("default")` (the official 512 networks; run
    `dynface weights download` first) or `"tiny-random"` (tiny random nets for smoke tests: the
    output is noise), then call `restore_aligned(images)` on aligned face crops.
    """

    def __init__(
        self, pipeline: Pipeline, config: dict[str, Any], device: torch.device, precision: str
    ) -> None:
        self.pipeline = pipeline
        self.config = config
        self.device = device
        self.precision = precision

    @classmethod
    def from_config(
        cls,
        path_or_preset: str | Path = "default",
        device: str | torch.device = "auto",
        precision: str = "fp32",
        weights_dir: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Restorer:
        """Load a preset or YAML config, fetch or find its weights, and move it to `device`."""
        config = load_config(path_or_preset, overrides)
        torch_device = pick_device(device)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        if precision == "fp16" and torch_device.type == "cpu":
            raise ValueError("fp16 needs a GPU; on the CPU use --precision bf16 or fp32")
        seed = int(config.get("random_weights_seed", 0))
        paths = _resolve_weights([config["prior"], config["restorer"]], weights_dir)
        prior = _build(build_unet, config["prior"], paths[0], seed)
        restorer = _build(build_swinir, config["restorer"], paths[1], seed + 1)
        dtype = PRECISIONS[precision]
        prior = prior.to(torch_device, dtype).eval()
        restorer = restorer.to(torch_device, dtype).eval()
        diffusion_cfg = config["diffusion"]
        diffusion = Diffusion(
            diffusion_cfg.get("steps", 1000),
            diffusion_cfg.get("schedule", "linear"),
            diffusion_cfg.get("respacing", "ddim250"),
        )
        pipeline = Pipeline(
            prior,
            restorer,
            diffusion,
            MethodSettings.from_config(config["method"]),
            image_size=config.get("image_size", 512),
        )
        return cls(pipeline, config, torch_device, precision)

    @property
    def is_random(self) -> bool:
        """True when the nets carry random weights (tiny-random preset): the output is noise."""
        return "random" in (self.config["prior"]["weights"], self.config["restorer"]["weights"])

    def restore_aligned(
        self,
        images: Tensor,
        seed: int | None = None,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        on_plan: Callable[[int], None] | None = None,
        s_star: Tensor | None = None,
    ) -> RestoreResult:
        """Restore aligned faces (B, 3, H, W) in [0, 1], any size; same size out, with traces.

        `seed` makes the result reproducible; `batch_size` bounds how many faces run at once;
        `progress(n)` is called after every sampling step with the faces evaluated in it, and
        `on_plan(n)` before each batch's sampling with the total that batch will report (the
        sum of its traces' "nfe"); the plans of all batches add up to the sum of progress.
        `s_star` (B,) replaces the estimated blur levels (see `estimate_blur`).
        """
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) RGB faces, got {tuple(images.shape)}")
        if images.shape[-1] < 8 or images.shape[-2] < 8:
            raise ValueError(f"a face of {tuple(images.shape[-2:])} px is too small to restore")
        generator = None
        if seed is not None:
            generator = torch.Generator(self.device).manual_seed(int(seed))
        step = batch_size or len(images)
        outputs, traces = [], []
        for first in range(0, len(images), step):
            levels = None if s_star is None else torch.as_tensor(s_star)[first : first + step]
            out, trace = self.pipeline.restore(
                images[first : first + step], generator, progress, on_plan=on_plan, s_star=levels
            )
            outputs.append(out.cpu())
            traces.extend(trace)
        return RestoreResult(torch.cat(outputs), traces)

    def estimate_blur(self, images: Tensor) -> Tensor | None:
        """Blur levels s* (B,) (px at 512) of aligned faces (B, 3, H, W) in [0, 1], on the host.

        What `restore_aligned` would estimate, without sampling: a video smooths them along a
        face's track and passes them back as `s_star`. None in the difface mode (no s*).
        """
        s_star = self.pipeline.estimate_blur(images)
        return None if s_star is None else s_star.cpu()


def _resolve_weights(
    sections: list[Mapping[str, Any]], weights_dir: str | Path | None
) -> list[Path | None]:
    """Weight file of each network (None for random weights); names every missing one at once."""
    paths: list[Path | None] = []
    missing: list[str] = []
    for section in sections:
        if section["weights"] == "random":
            paths.append(None)
            continue
        try:
            paths.append(weights.resolve(str(section["weights"]), weights_dir=weights_dir))
        except weights.WeightsUnavailable as exc:
            missing.append(str(exc))
            paths.append(None)
    if missing:
        raise weights.WeightsUnavailable("\n".join(missing))
    return paths


def _build(
    builder: Callable[[dict], nn.Module], section: Mapping[str, Any], path: Path | None, seed: int
) -> nn.Module:
    """Build one network and load its weights, or seed its random init when weights: random."""
    if path is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return builder(dict(section["params"]))
    return load_into(builder(dict(section["params"])), path)
