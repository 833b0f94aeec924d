"""DDIM sampling over a respaced schedule, with a hook that may replace the x0 prediction.

Matches DifFace's sampler: the model sees original timesteps, the x0 prediction is clipped to
[-1, 1], and the update uses the model's own epsilon with the (possibly guided) x0. Samples of
one batch may start at different steps (`start_index` per sample): a sample waits, unevaluated,
until the loop reaches its start, so the UNet only runs on samples that are under way. Equation
numbers refer to Song et al., "Denoising Diffusion Implicit Models" (ICLR 2021).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from dynface.diffusion.noise import Generators, KeyedNoise, noise_sampler
from dynface.diffusion.schedule import beta_schedule, respaced_timesteps

__all__ = ["Diffusion", "Generators", "KeyedNoise", "PhasedHook", "StepInfo", "noise_sampler"]

#: Replaces the x0 prediction of the samples under way: (x0 of those rows, index, rows) -> x0.
X0Hook = Callable[[Tensor, int, Tensor], Tensor]
#: Gaussian noise for the rows under way at a step: (rows, index) -> (len(rows), C, H, W).
NoiseSampler = Callable[[Tensor, int], Tensor]


@runtime_checkable
class PhasedHook(Protocol):
    """An x0 hook that says, per row, which form of x0 it gives at a step (e.g. which guidance
    targets are active): a multistep sampler extrapolates x0 only within one phase."""

    def __call__(self, x0: Tensor, index: int, rows: Tensor) -> Tensor: ...

    def phase(self, index: int, rows: Tensor) -> Tensor:
        """(n,) long on the CPU: the phase of each row at respaced step `index`."""
        ...


@dataclass(frozen=True)
class StepInfo:
    """What the sampler's one callback receives after each step (k-diffusion style)."""

    index: int  # respaced step just taken
    t: int  # its original timestep
    rows: Tensor  # (n,) the samples evaluated at this step
    x: Tensor  # (B, C, H, W) every sample's state after the step
    x0: Tensor  # (n, C, H, W) the (guided) x0 the rows' update used


class Diffusion:
    """A Gaussian diffusion (epsilon prediction) respaced for DDIM sampling."""

    def __init__(
        self, steps: int = 1000, schedule: str = "linear", respacing: str | int | None = "ddim250"
    ) -> None:
        base = torch.cumprod(1.0 - beta_schedule(schedule, steps), dim=0)
        kept = respaced_timesteps(steps, respacing, schedule)
        self.original_steps = steps
        self.respacing = str(respacing)
        self.timesteps = torch.tensor(kept, dtype=torch.long)
        self.base_alphas_cumprod = base
        self.alphas_cumprod = base[self.timesteps]
        self._device_tables: dict[tuple[str, torch.device], Tensor] = {}
        self.alphas_cumprod_prev = torch.cat(
            [torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]]
        )

    @property
    def num_steps(self) -> int:
        """Number of respaced steps."""
        return len(self.timesteps)

    def _coef(self, name: str, index: Tensor | int, like: Tensor) -> Tensor:
        """Schedule values at `index` (int or one per sample) as (B, 1, 1, 1) float32 on like's
        device; each table is copied to a device once, not at every step."""
        table = self._device_tables.get((name, like.device))
        if table is None:
            table = getattr(self, name).to(like.device, torch.float32)
            self._device_tables[(name, like.device)] = table
        idx = torch.as_tensor(index, device=like.device).long().expand(like.shape[0])
        return table[idx].view(-1, 1, 1, 1)

    def start_indices(self, start_index: int | Tensor, batch: int) -> Tensor:
        """Each sample's start index as (batch,) long on the CPU, from one index or one per
        sample; an index outside [0, num_steps - 1] raises ValueError."""
        starts = torch.as_tensor(start_index).cpu().long().expand(batch)
        if int(starts.max()) >= self.num_steps or int(starts.min()) < 0:
            raise ValueError(f"start index must lie in [0, {self.num_steps - 1}]")
        return starts

    def q_sample(self, x0: Tensor, index: Tensor | int, noise: Tensor | None = None) -> Tensor:
        """Noise clean images `x0` to respaced step `index` (int or one per sample)."""
        noise = torch.randn_like(x0) if noise is None else noise
        a = self._coef("alphas_cumprod", index, x0)
        return (a.sqrt() * x0 + (1 - a).sqrt() * noise).to(x0.dtype)

    def predict(self, model: nn.Module, x: Tensor, index: int) -> tuple[Tensor, Tensor]:
        """Model epsilon and the clipped x0 prediction at respaced step `index`."""
        t = self.timesteps[index].to(x.device).expand(x.shape[0])
        eps = model(x, t)[:, : x.shape[1]].float()
        a = self._coef("alphas_cumprod", index, x)
        x0 = ((x.float() - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
        return eps, x0

    def ddim_update(
        self, x0: Tensor, eps: Tensor, index: int, eta: float | Tensor, noise: Tensor | None
    ) -> Tensor:
        """x_{t-1} from x0 and epsilon (DDIM equation 12); `eta` scalar or one per sample."""
        a = self._coef("alphas_cumprod", index, x0)
        a_prev = self._coef("alphas_cumprod_prev", index, x0)
        eta_t = torch.as_tensor(eta, dtype=torch.float32, device=x0.device).reshape(-1, 1, 1, 1)
        sigma = eta_t * ((1 - a_prev) / (1 - a)).sqrt() * (1 - a / a_prev).sqrt()
        mean = x0 * a_prev.sqrt() + (1 - a_prev - sigma**2).sqrt() * eps
        if index == 0:
            return mean
        noise = torch.randn_like(x0) if noise is None else noise.float()
        return mean + sigma * noise

    def ddim_step(
        self,
        model: nn.Module,
        x: Tensor,
        index: int,
        eta: float | Tensor = 0.0,
        noise: Tensor | None = None,
        guide: Callable[[Tensor], Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One DDIM step from respaced `index`: returns (x_prev, x0 used for the update).

        `guide` (optional) replaces the clipped x0 prediction before the update.
        """
        eps, x0 = self.predict(model, x, index)
        if guide is not None:
            x0 = guide(x0)
        return self.ddim_update(x0, eps, index, eta, noise).to(x.dtype), x0

    @torch.no_grad()
    def sample(
        self,
        model: nn.Module,
        x: Tensor,
        start_index: int | Tensor,
        eta: float | Tensor = 0.0,
        x0_hook: X0Hook | None = None,
        noise: NoiseSampler | None = None,
        callback: Callable[[StepInfo], None] | None = None,
    ) -> Tensor:
        """Run DDIM from `start_index` (int or one per sample) down to step 0.

        `x` holds each sample's state at its own start step. At each step only the samples
        under way are evaluated; `x0_hook` sees their x0 and their row numbers. `noise` draws the
        stochastic part (default: the global generator); `callback` gets a `StepInfo` per step.
        """
        starts = self.start_indices(start_index, x.shape[0])
        eta_all = per_sample(eta, x.shape[0]).to(x.device)
        draw = noise or noise_sampler(None, x.shape, x.device, self.timesteps)
        x = x.clone()
        # 1. The samples under way: each joins at its own start index.
        for index, rows in steps_under_way(starts):
            on_device = rows.to(x.device)
            # 2. Fresh noise for the stochastic term (sigma_t epsilon_t, eq. 12); none at t = 0.
            step_noise = draw(rows, index) if index > 0 else None
            # 3. Predict eps and x0 (eq. 9), guide x0, then the DDIM update (eq. 12).
            guide = None
            if x0_hook is not None:
                guide = _bind(x0_hook, index, rows)
            x_prev, x0 = self.ddim_step(
                model, x[on_device], index, eta_all[on_device], step_noise, guide
            )
            x[on_device] = x_prev
            # 4. One callback per step.
            if callback is not None:
                callback(StepInfo(index, int(self.timesteps[index]), rows, x, x0))
        return x


def per_sample(value: float | Tensor, batch: int) -> Tensor:
    """One value or one per sample (e.g. eta) as (batch,) float32 on the CPU."""
    return torch.as_tensor(value, dtype=torch.float32).flatten().expand(batch)


def steps_under_way(starts: Tensor) -> Iterator[tuple[int, Tensor]]:
    """(index, rows) from the latest start index down to 0: `rows` (n,) are the samples under
    way at `index`, each having joined at its own start (`starts`, (B,) on the CPU)."""
    for index in range(int(starts.max()), -1, -1):
        yield index, (starts >= index).nonzero().squeeze(1)


def _bind(hook: X0Hook, index: int, rows: Tensor) -> Callable[[Tensor], Tensor]:
    """The hook as a function of x0 alone, for one step."""
    return lambda x0: hook(x0, index, rows)
