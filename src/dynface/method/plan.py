"""The sampling plan: everything the method decides about each face before sampling starts.

DynFaceRestore (docs/method.md): s* = SE(y, r); s_j = max(s* - j, s_min); g_j = k(s_j) * r;
t_j = DSST(s_j); start at the respaced step at or below t_0; eta = clip(s* / 10, 0, 1); the static
DGSA map of g_0 (when the DGSA depends on g_0 only). The DifFace baseline plans a fixed start and
eta and no guidance. Per-face numbers live on the CPU; images on the pipeline's device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dynface.config import MethodConfig
from dynface.diffusion import Diffusion
from dynface.method.dblm import guidance_images, guidance_levels
from dynface.method.dgsa import GuidanceScale
from dynface.method.dsst import DSSTable, to_respaced_index
from dynface.method.eta import dynamic_eta
from dynface.method.fidelity import FidelityLevers, fidelity_levers
from dynface.units import S_MAX


@dataclass(frozen=True)
class SamplingPlan:
    """Per-face decisions of one batch of B faces (J guidance targets)."""

    mode: str  # "dynface" or "difface"
    start_index: Tensor  # (B,) long, CPU: respaced step the guidance image is noised to
    first_step: Tensor  # (B,) long, CPU: first DDIM step (DifFace: start_index - 1)
    eta: Tensor  # (B,) float32, CPU: DDIM eta per face
    x_start: Tensor  # (B, 3, H, W) in [-1, 1], device: the image noised to start_index
    s_star: Tensor | None = None  # (B,) px at 512, CPU
    s_levels: Tensor | None = None  # (B, J) px at 512, CPU
    t_levels: Tensor | None = None  # (B, J) long, CPU: t(s_j) on the 1000 scale
    guidance: Tensor | None = None  # (B, J, 3, H, W) in [-1, 1], device: g_j
    dgsa_map: Tensor | None = None  # (B, 1, H, W) in [0, 1], device: static DGSA map
    levers: FidelityLevers = fidelity_levers()  # the fidelity knob's levers (neutral: 0.5)
    s_effective: Tensor | None = None  # (B,) px at 512, CPU: the blur level acted on

    @property
    def nfe(self) -> Tensor:
        """Network evaluations per face, (B,)."""
        return self.first_step + 1


def plan_dynface(
    s_star: Tensor,
    r: Tensor,
    method: MethodConfig,
    dsst: DSSTable,
    diffusion: Diffusion,
    dgsa: GuidanceScale | None,
    pixel_scale: float,
    levers: FidelityLevers | None = None,
) -> SamplingPlan:
    """The DynFaceRestore plan from s* (B,) and the RM output r (B, 3, H, W) in [0, 1]; `levers`
    (default: fidelity 0.5, the method as configured) lean it towards the input or the prior."""
    levers = levers or fidelity_levers()
    # 1. The blur level acted on (s* itself at fidelity 0.5), guidance levels
    #    s_j = max(s - j, s_min) (px at 512) and their start steps t(s_j).
    s_star = s_star.detach().float().cpu().clamp(0, S_MAX)
    s_eff = levers.blur_level(s_star)
    s_levels = guidance_levels(s_eff, method.num_targets, method.s_min)
    t_levels = dsst.start_step(s_levels)
    start = to_respaced_index(t_levels[:, 0], diffusion.timesteps)
    # 2. Guidance images g_j = k(s_j) * r, with s_j in px of the working size.
    g = guidance_images(r * 2 - 1, s_levels * pixel_scale)
    # 3. A static DGSA map depends on g_0 only: once per face (moved by the fidelity's DGSA lever).
    dgsa_map = None
    if dgsa is not None and not dgsa.dynamic:
        dgsa_map = levers.dgsa(dgsa(g[:, 0], g[:, 0], 0))
    return SamplingPlan(
        mode="dynface",
        start_index=start,
        first_step=start,
        eta=dynamic_eta(s_eff, method.fixed_eta),
        x_start=g[:, 0],
        s_star=s_star,
        s_levels=s_levels,
        t_levels=t_levels,
        guidance=g,
        dgsa_map=dgsa_map,
        levers=levers,
        s_effective=s_eff,
    )


def difface_start_index(method: MethodConfig, diffusion: Diffusion) -> int:
    """DifFace's start on this respacing: `difface_start_index` when set, else the respaced step
    at or below `difface_start_t` (t = 400 by default, DifFace's published start)."""
    if method.difface_start_index is not None:
        return method.difface_start_index
    t = torch.tensor([method.difface_start_t])
    return max(1, int(to_respaced_index(t, diffusion.timesteps)[0]))


def plan_difface(r: Tensor, method: MethodConfig, diffusion: Diffusion) -> SamplingPlan:
    """DifFace's chain: noise RM(y) to the start step, then DDIM from the step below it."""
    b = r.shape[0]
    start = torch.full((b,), difface_start_index(method, diffusion), dtype=torch.long)
    return SamplingPlan(
        mode="difface",
        start_index=start,
        first_step=start - 1,
        eta=torch.full((b,), method.difface_eta, dtype=torch.float32),
        x_start=r * 2 - 1,
    )
