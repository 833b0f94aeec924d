"""`Restorer`: the one object users call to restore aligned faces (whole photos build on it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dynface import weights
from dynface.checkpoints import load_into
from dynface.config import NetworkConfig, RestoreConfig, load_restore_config
from dynface.devices import pick_device
from dynface.diffusion import Diffusion
from dynface.errors import UsageError
from dynface.method.pipeline import Pipeline
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
        self, pipeline: Pipeline, settings: RestoreConfig, device: torch.device, precision: str
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        #: The config as plain data (every default filled in), e.g. for traces.
        self.config = settings.to_dict()
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
        settings = load_restore_config(path_or_preset, overrides)
        if precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        torch_device = pick_device(device)
        if precision == "fp16" and torch_device.type == "cpu":
            raise UsageError("fp16 needs a GPU; on the CPU use --precision bf16 or fp32")
        seed = settings.random_weights_seed
        paths = _resolve_weights([settings.prior, settings.restorer], weights_dir)
        prior = _build(build_unet, settings.prior, paths[0], seed).eval()
        rm = _build(build_swinir, settings.restorer, paths[1], seed + 1).eval()
        d = settings.diffusion
        diffusion = Diffusion(d.steps, d.schedule, d.respacing)
        pipeline = Pipeline(prior, rm, diffusion, settings.method, image_size=settings.image_size)
        pipeline.to(torch_device, PRECISIONS[precision])
        return cls(pipeline, settings, torch_device, precision)

    @property
    def is_random(self) -> bool:
        """True when the nets carry random weights (tiny-random preset): the output is noise."""
        return "random" in (self.settings.prior.weights, self.settings.restorer.weights)

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
        generators = face_generators(seed, len(images), self.device)
        step = batch_size or len(images)
        outputs, traces = [], []
        for first in range(0, len(images), step):
            batch_generators = generators[first : first + step] if generators else None
            levels = None if s_star is None else torch.as_tensor(s_star)[first : first + step]
            out = self.pipeline.restore(
                images[first : first + step],
                batch_generators,
                progress,
                on_plan=on_plan,
                s_star=levels,
            )
            outputs.append(out.images.cpu())
            traces.extend(trace.to_dict() for trace in out.traces)
        return RestoreResult(torch.cat(outputs), traces)

    def estimate_blur(self, images: Tensor) -> Tensor | None:
        """Blur levels s* (B,) (px at 512) of aligned faces (B, 3, H, W) in [0, 1], on the host.

        What `restore_aligned` would estimate, without sampling: a video smooths them along a
        face's track and passes them back as `s_star`. None in the difface mode (no s*).
        """
        return self.pipeline.estimate_blur(images)


def face_seed(seed: int, index: int) -> int:
    """The seed of face `index` of a call with `seed`: independent streams per face."""
    import numpy as np

    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> 1)


def face_generators(
    seed: int | Sequence[int] | None, count: int, device: torch.device
) -> list[torch.Generator] | None:
    """One generator per face, so a face's noise does not depend on its batch or batch size:
    from (seed, face index), or from one given seed per face. None: the global generator."""
    if seed is None:
        return None
    if isinstance(seed, int):
        if seed < 0:
            raise UsageError(f"seed must be a non-negative integer, got {seed}")
        seeds = [face_seed(seed, k) for k in range(count)]
    else:
        seeds = [int(s) for s in seed]
        if len(seeds) != count:
            raise UsageError(f"got {len(seeds)} seeds for {count} faces; give one per face")
    return [torch.Generator(device).manual_seed(s) for s in seeds]


def _resolve_weights(
    sections: list[NetworkConfig], weights_dir: str | Path | None
) -> list[Path | None]:
    """Weight file of each network (None for random weights); names every missing one at once."""
    paths: list[Path | None] = []
    missing: list[str] = []
    for section in sections:
        if section.weights == "random":
            paths.append(None)
            continue
        try:
            paths.append(weights.resolve(str(section.weights), weights_dir=weights_dir))
        except weights.WeightsUnavailable as exc:
            missing.append(str(exc))
            paths.append(None)
    if missing:
        raise weights.WeightsUnavailable("\n".join(missing))
    return paths


def _build(
    builder: Callable[[dict[str, Any]], nn.Module],
    section: NetworkConfig,
    path: Path | None,
    seed: int,
) -> nn.Module:
    """Build one network and load its weights, or seed its random init when weights: random."""
    try:
        if path is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return builder(dict(section.params))
        net = builder(dict(section.params))
    except ValueError as exc:
        raise UsageError(f"{section.section}.params: {exc}") from None
    return load_into(net, path)
