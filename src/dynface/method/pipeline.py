"""The aligned-face pipeline: restorer, blur-level mapping, dynamic start steps, guided DDIM.

For a batch y of aligned faces in [0, 1] at the working size:
  r = clamp(RM(y), 0, 1);  s* = SE(y, r);  s_j = max(s* - j, s_min);  g_j = k(s_j) * r;
  t_j = DSST(s_j);  x_{t_0} = q_sample(g_0, t_0);  then DDIM with eta(s*) where every x0
  prediction is pulled towards the active targets (t <= t_j) and blended by the DGSA map.
Blur levels are in pixels at 512 (where the DSST table is defined) and scaled to the working
size. In `difface` mode the reference DifFace chain is run instead: no guidance, a fixed start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynface.diffusion import Diffusion
from dynface.method.dblm import (
    BlurLevelEstimator,
    LearnedEstimator,
    guidance_images,
    guidance_levels,
    make_estimator,
)
from dynface.method.dgsa import make_dgsa
from dynface.method.dsst import DSSTable, to_respaced_index
from dynface.method.eta import dynamic_eta
from dynface.method.guidance import active_targets, blend, guide, refine_blur_levels
from dynface.resize import resize

#: Side of the DGSA thumbnail stored in each trace.
THUMBNAIL = 16
#: The resolution at which blur levels and the DSST table are defined.
REFERENCE_SIZE = 512


@dataclass
class MethodSettings:
    """The `method` section of a config, typed."""

    mode: str = "dynface"
    estimator: str | dict = "zero-shot"
    num_targets: int = 3
    s_min: float = 0.3
    dsst: str = "default"
    guidance: str = "closed-form"
    mu: float = 0.01
    lam: float = 0.5
    refine_s: bool = False
    dgsa: str = "heuristic"
    dgsa_weights: str | None = None
    eta: str | float = "dynamic"
    difface_start_index: int = 100
    difface_eta: float = 0.0

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> MethodSettings:
        """Typed settings; an unknown key (a typo, say) is an error that names it."""
        unknown = sorted(set(section) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"unknown method setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(cls.__dataclass_fields__)}"
            )
        return cls(**section)


class Pipeline:
    """Runs the method on batches of aligned faces; holds no state between batches."""

    def __init__(
        self,
        prior: nn.Module,
        restorer: nn.Module,
        diffusion: Diffusion,
        settings: MethodSettings,
        image_size: int = REFERENCE_SIZE,
    ) -> None:
        self.prior = prior
        self.restorer = restorer
        self.diffusion = diffusion
        self.settings = settings
        self.image_size = image_size
        self.scale = image_size / REFERENCE_SIZE
        dsst = settings.dsst
        self.dsst = DSSTable.default() if dsst == "default" else DSSTable.load(dsst)
        self.estimator = _build_estimator(settings.estimator, self.device)
        # The zero-shot fit measures s in pixels of its input; the learned SE answers at 512.
        self.estimator_px_scale = (
            1.0 if isinstance(self.estimator, LearnedEstimator) else self.scale
        )
        self.dgsa = None
        if settings.dgsa != "none":
            dgsa_config: str | dict = settings.dgsa
            if settings.dgsa == "learned":
                dgsa_config = {"name": "learned", "weights": settings.dgsa_weights}
            self.dgsa = make_dgsa(dgsa_config)

    @property
    def device(self) -> torch.device:
        return next(self.prior.parameters()).device

    def _sync(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @torch.no_grad()
    def restore(
        self,
        y: Tensor,
        generator: torch.Generator | None = None,
        progress: Callable[[int], None] | None = None,
        initial_noise: Tensor | None = None,
        on_plan: Callable[[int], None] | None = None,
        s_star: Tensor | None = None,
    ) -> tuple[Tensor, list[dict[str, Any]]]:
        """Restore a (B, 3, H, W) batch in [0, 1]; returns the same size in [0, 1] and traces.

        `initial_noise` (working size) replaces the noise of the first q_sample, so a reference
        chain can be reproduced exactly; by default it is drawn from `generator`. `progress(n)`
        is called after each sampling step with the faces evaluated in it; `on_plan(total)`,
        once the start steps are known and before sampling, with the sum of those counts (the
        batch's network evaluations, the sum of the traces' "nfe"), so a caller can show an ETA.
        `s_star` (B,), px at 512, replaces the estimated blur levels (video smooths them along a
        face's track); the dynface mode only.
        """
        if y.ndim != 4 or y.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) batch of RGB faces, got {tuple(y.shape)}")
        height, width = y.shape[-2:]
        y = y.to(self.device, torch.float32)
        start = self._sync()
        work = resize(y, self.image_size).clamp(0, 1)
        r = self.restorer(work.to(_dtype(self.restorer))).float().clamp(0, 1)
        timing = {"restorer_s": self._sync() - start}
        if self.settings.mode == "difface":
            x, traces = self._difface(r, generator, progress, on_plan, timing, initial_noise)
        else:
            x, traces = self._dynface(
                work, r, generator, progress, on_plan, timing, initial_noise, s_star
            )
        out = resize((x.float() + 1) / 2, (height, width)).clamp(0, 1)
        return out, traces

    @torch.no_grad()
    def estimate_blur(self, y: Tensor) -> Tensor | None:
        """Blur levels s* (B,) in px at 512 of aligned faces in [0, 1]; None in difface mode."""
        if self.settings.mode == "difface":
            return None
        work = resize(y.to(self.device, torch.float32), self.image_size).clamp(0, 1)
        r = self.restorer(work.to(_dtype(self.restorer))).float().clamp(0, 1)
        return self._blur_levels(work, r)

    def _blur_levels(self, work: Tensor, r: Tensor) -> Tensor:
        """s* (B,) in px at 512 from the working-size input and the restorer's output."""
        return (self.estimator(work, r).float() / self.estimator_px_scale).clamp(0, 16)

    def _difface(self, r, generator, progress, on_plan, timing, noise):
        t0 = self._sync()
        index = self.settings.difface_start_index
        if on_plan is not None:
            on_plan(index * r.shape[0])
        noise = _randn(r.shape, generator, r.device) if noise is None else noise.to(r)
        x = self.diffusion.q_sample(r * 2 - 1, index, noise)
        # DifFace noises to `index` and then denoises from `index - 1` (its reference chain).
        x = self.diffusion.sample(
            self.prior,
            x,
            index - 1,
            self.settings.difface_eta,
            generator=generator,
            progress=progress,
        )
        timing["sampling_s"] = self._sync() - t0
        trace = {
            "mode": "difface",
            "start_index": index,
            "start_t": int(self.diffusion.timesteps[index]),
            "eta": self.settings.difface_eta,
            "nfe": index,
            "timing": timing,
        }
        return x, [dict(trace) for _ in range(r.shape[0])]

    def _dynface(self, work, r, generator, progress, on_plan, timing, noise, s_star=None):
        settings, diffusion = self.settings, self.diffusion
        t0 = self._sync()
        if s_star is None:
            s_star = self._blur_levels(work, r)
        else:
            s_star = torch.as_tensor(s_star, dtype=torch.float32, device=self.device)
            s_star = s_star.reshape(len(r)).clamp(0, 16)
        s_levels = guidance_levels(s_star, settings.num_targets, settings.s_min)
        t_levels = self.dsst.start_step(s_levels.cpu()).to(self.device)
        start_index = to_respaced_index(t_levels[:, 0].cpu(), diffusion.timesteps).to(self.device)
        s_work = s_levels * self.scale
        g = guidance_images(r * 2 - 1, s_work)
        eta = (
            dynamic_eta(s_star)
            if settings.eta == "dynamic"
            else dynamic_eta(s_star, float(settings.eta))
        )
        dgsa_map = self.dgsa(g[:, 0]) if self.dgsa is not None and not self.dgsa.dynamic else None
        timing["estimate_s"] = self._sync() - t0
        if on_plan is not None:
            on_plan(int((start_index + 1).sum()))

        zeros = torch.zeros(len(r), device=self.device)
        state = {"s": s_work, "dgsa_sum": zeros.clone(), "dgsa_n": zeros.clone()}

        def hook(x0: Tensor, index: int) -> Tensor:
            t_now = int(diffusion.timesteps[index])
            active = active_targets(t_now, t_levels)
            if settings.guidance == "none" or not bool(active.any()):
                return x0
            if settings.refine_s:
                state["s"] = refine_blur_levels(
                    x0, g, state["s"], active, s_min=settings.s_min * self.scale
                )
            target = guide(x0, g, state["s"], active, settings.guidance, settings.mu, settings.lam)
            strength = dgsa_map
            if self.dgsa is not None and self.dgsa.dynamic:
                strength = self.dgsa(g[:, 0], x0, torch.full((len(x0),), t_now, device=x0.device))
            if strength is None:
                strength = torch.ones_like(x0[:, :1])
            rows = active.any(dim=1)
            state["dgsa_sum"] += torch.where(rows, strength.mean(dim=(1, 2, 3)), 0.0)
            state["dgsa_n"] += rows.float()
            return blend(x0, target, strength * rows[:, None, None, None]).clamp(-1, 1)

        t1 = self._sync()
        noise = _randn(r.shape, generator, r.device) if noise is None else noise.to(r)
        x = diffusion.q_sample(g[:, 0], start_index, noise)
        x = diffusion.sample(
            self.prior, x, start_index, eta, x0_hook=hook, generator=generator, progress=progress
        )
        timing["sampling_s"] = self._sync() - t1
        thumbs = None
        if dgsa_map is not None:
            thumbs = F.adaptive_avg_pool2d(dgsa_map.float(), THUMBNAIL)[:, 0].cpu()
        traces = []
        for b in range(len(r)):
            traces.append(
                {
                    "mode": "dynface",
                    "s_star": round(float(s_star[b]), 3),
                    "s_levels": [round(float(v), 3) for v in s_levels[b]],
                    "t_levels": [int(v) for v in t_levels[b]],
                    "eta": round(float(eta[b]), 4),
                    "start_index": int(start_index[b]),
                    "start_t": int(diffusion.timesteps[int(start_index[b])]),
                    "nfe": int(start_index[b]) + 1,
                    "estimator": str(settings.estimator),
                    "guidance": settings.guidance,
                    "dgsa": settings.dgsa,
                    "dgsa_mean": (
                        round(float(state["dgsa_sum"][b] / state["dgsa_n"][b]), 4)
                        if state["dgsa_n"][b] > 0
                        else None
                    ),
                    "dgsa_thumbnail": (
                        [[round(float(v), 3) for v in row] for row in thumbs[b]]
                        if thumbs is not None
                        else None
                    ),
                    "timing": dict(timing),
                }
            )
        return x, traces


def _build_estimator(spec: str | Mapping[str, Any], device: torch.device) -> BlurLevelEstimator:
    """The blur-level estimator of a config: "zero-shot", or "learned" (shipped weights, or
    `{name: learned, weights: PATH}`), with its networks on `device`."""
    name = spec if isinstance(spec, str) else str(spec.get("name", "zero-shot"))
    if name != "learned":
        return make_estimator(spec)
    from dynface.method.learned_se import load_estimator

    weights = None if isinstance(spec, str) else spec.get("weights")
    return LearnedEstimator(sde=load_estimator(weights).to(device))


def _dtype(module: nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype


def _randn(shape, generator: torch.Generator | None, device: torch.device) -> Tensor:
    return torch.randn(shape, generator=generator, device=device)
