"""An analytic check of the samplers: Gaussian data and its exact epsilon predictor.

With x0 ~ N(m, v) per pixel and x_t = alpha_t x0 + sigma_t eps, E[x0 | x_t] = m + alpha_t v
(x_t - alpha_t m) / (alpha_t^2 v + sigma_t^2) in closed form, and so is the exact epsilon. Started
from the exact marginal at a step, an exact sampler ends with variance v; the ratio of what a
solver produces to v shows its error at a given spacing and eta (issue 21's table). Used by
tests/test_few_steps.py and benchmarks/few_steps.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dynface.diffusion import Diffusion, sampler
from dynface.diffusion.noise import noise_sampler

#: The data of the check: mean and variance per pixel (well inside [-1, 1], so clipping is moot).
MEAN, VARIANCE = 0.1, 0.04
START_T = 750


class GaussianEpsilon(nn.Module):
    """The exact epsilon prediction of x0 ~ N(mean, variance) per pixel at timestep t."""

    def __init__(
        self, alphas_cumprod: Tensor, mean: float = MEAN, variance: float = VARIANCE
    ) -> None:
        super().__init__()
        self.alphas_cumprod, self.mean, self.variance = alphas_cumprod.double(), mean, variance
        self.dummy = nn.Parameter(torch.zeros(()))  # so the samplers find a device and dtype

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """epsilon(x_t, t) = (x_t - alpha_t E[x0 | x_t]) / sigma_t."""
        a = self.alphas_cumprod[t.cpu()].to(x.device).view(-1, 1, 1, 1)
        xd = x.double()
        gain = a.sqrt() * self.variance / (a * self.variance + 1 - a)
        x0 = self.mean + gain * (xd - a.sqrt() * self.mean)
        return ((xd - a.sqrt() * x0) / (1 - a).sqrt()).to(x.dtype)


@dataclass(frozen=True)
class VarianceCheck:
    """One solver on one spacing at one eta: output variance / v, mean error, evaluations."""

    solver: str
    respacing: str
    eta: float
    variance_ratio: float
    mean_error: float
    nfe: int


def variance_check(
    solver: str,
    respacing: str,
    eta: float,
    start_t: int = START_T,
    shape: tuple[int, ...] = (8, 3, 32, 32),
    seed: int = 0,
) -> VarianceCheck:
    """Start `shape` samples from the exact marginal at the respaced step at or below `start_t`,
    run `solver` to t = 0 at `eta`, and compare the samples' variance with v."""
    diffusion = Diffusion(1000, "linear", respacing)
    model = GaussianEpsilon(diffusion.base_alphas_cumprod)
    start = int((diffusion.timesteps <= start_t).nonzero().max())  # at or below start_t
    a = float(diffusion.alphas_cumprod[start])
    gen = torch.Generator().manual_seed(seed)
    spread = (a * VARIANCE + 1 - a) ** 0.5
    x = a**0.5 * MEAN + spread * torch.randn(shape, generator=gen)
    generators = [torch.Generator().manual_seed(seed * 1000 + k) for k in range(shape[0])]
    noise = noise_sampler(generators, shape, x.device, diffusion.timesteps)
    out = sampler(diffusion, solver)(model, x, start, eta, noise=noise).double()
    return VarianceCheck(
        solver=solver,
        respacing=respacing,
        eta=eta,
        variance_ratio=round(float(out.var()) / VARIANCE, 4),
        mean_error=round(float(out.mean()) - MEAN, 4),
        nfe=start + 1,
    )


def exact_flow_output(x: Tensor, start_t: int, alphas_cumprod: Tensor) -> Tensor:
    """Where the exact probability-flow ODE takes `x` (at timestep `start_t`) at t = 0, then its
    x0 prediction there (what an exact deterministic sampler returns): the flow keeps the
    standardised value (x_t - alpha_t m) / sqrt(alpha_t^2 v + sigma_t^2)."""
    a_start, a_end = alphas_cumprod[start_t].double(), alphas_cumprod[0].double()
    spread = (a_start * VARIANCE + 1 - a_start).sqrt()
    u = (x.double() - a_start.sqrt() * MEAN) / spread
    x_end = a_end.sqrt() * MEAN + (a_end * VARIANCE + 1 - a_end).sqrt() * u
    gain = a_end.sqrt() * VARIANCE / (a_end * VARIANCE + 1 - a_end)
    return MEAN + gain * (x_end - a_end.sqrt() * MEAN)
