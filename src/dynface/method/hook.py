"""The guidance hook: at each sampling step, pull the x0 of every face towards its targets.

`x0 <- x0 + A (x0' - x0)` where x0' is the closed-form (or gradient) guidance over the targets
that are active at this step (t <= t(s_j)) and A the DGSA map (docs/method.md, "Guidance" and
"DGSA"). The hook keeps the mean strength it applied per face, for the traces, and says which
targets are active per face (`phase`), so a multistep sampler treats a switch as a first step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynface.config import MethodConfig
from dynface.method.blur import kernel_radius
from dynface.method.dgsa import GuidanceScale
from dynface.method.guidance import active_targets, blend, guide, padded_transfer
from dynface.method.plan import SamplingPlan
from dynface.units import S_MAX


class GuidanceHook:
    """`Diffusion.sample`'s x0 hook for one plan: (x0 of the rows under way, index, rows) -> x0."""

    def __init__(
        self,
        plan: SamplingPlan,
        method: MethodConfig,
        dgsa: GuidanceScale | None,
        timesteps: Tensor,
        pixel_scale: float,
    ) -> None:
        if plan.guidance is None or plan.s_levels is None or plan.t_levels is None:
            raise ValueError("a guidance hook needs a DynFaceRestore plan (guidance images)")
        self.guidance, self.t_levels, self.dgsa_map = plan.guidance, plan.t_levels, plan.dgsa_map
        self.s_work = plan.s_levels * pixel_scale  # (B, J) px at the working size, CPU
        self.levers = plan.levers
        self.mode = method.guidance
        self.mu, self.lam = self.levers.mu(method.mu), self.levers.lam(method.lam)
        self.dgsa, self.timesteps = dgsa, timesteps
        self.transfer: Tensor | None = None
        if self.mode == "closed-form":
            h, w = self.guidance.shape[-2:]
            pad = kernel_radius(S_MAX)
            self.transfer = padded_transfer(self.s_work, h, w, pad, self.guidance)
        batch = self.guidance.shape[0]
        self.strength_sum = torch.zeros(batch, device=self.guidance.device)
        self.strength_steps = torch.zeros(batch, dtype=torch.int64)

    def __call__(self, x0: Tensor, index: int, rows: Tensor) -> Tensor:
        """Guided x0 (n, 3, H, W) in [-1, 1] for the faces `rows` at respaced step `index`."""
        t_now = int(self.timesteps[index])
        active = active_targets(t_now, self.t_levels[rows])  # (n, J), CPU
        guided_rows = active.any(dim=1)
        if self.mode == "none" or not bool(guided_rows.any()):
            return x0
        on_device = rows.to(x0.device)
        g = self.guidance[on_device]
        transfer = self.transfer[on_device] if self.transfer is not None else None
        target = guide(x0, g, self.s_work[rows], active, self.mode, self.mu, self.lam, transfer)
        strength = self._strength(g[:, 0], x0, t_now, on_device)
        mask = guided_rows.to(x0.device, x0.dtype)[:, None, None, None]
        self.strength_sum[on_device] += (strength.float() * mask).mean(dim=(1, 2, 3))
        self.strength_steps[rows] += guided_rows.long()
        return blend(x0, target, strength * mask).clamp(-1, 1)

    def phase(self, index: int, rows: Tensor) -> Tensor:
        """(n,) long, CPU: how many targets are active for each face at step `index` (they switch
        on one by one as t falls, so the count names the set); a multistep sampler does not
        extrapolate the guided x0 across a change (`dynface.diffusion.ddim.PhasedHook`)."""
        if self.mode == "none":
            return torch.zeros(len(rows), dtype=torch.long)
        t_now = int(self.timesteps[index])
        return active_targets(t_now, self.t_levels[rows]).sum(dim=1).cpu().long()

    def _strength(self, g0: Tensor, x0: Tensor, t_now: int, on_device: Tensor) -> Tensor:
        """The DGSA map A (n, 1, H, W) for these faces at this step (ones without a DGSA), moved
        by the fidelity's DGSA lever (the plan's static map already is)."""
        if self.dgsa is not None and self.dgsa.dynamic:
            t = torch.full((len(x0),), t_now, device=x0.device)
            return self.levers.dgsa(self.dgsa(g0, x0, t))
        if self.dgsa_map is not None:
            return self.dgsa_map[on_device]
        return self.levers.dgsa(torch.ones_like(x0[:, :1]))

    def mean_strength(self) -> list[float | None]:
        """Mean DGSA strength each face received over its guided steps (None: never guided)."""
        means = self.strength_sum.cpu() / self.strength_steps.clamp_min(1)
        return [
            float(m) if n > 0 else None
            for m, n in zip(means.tolist(), self.strength_steps.tolist(), strict=True)
        ]
