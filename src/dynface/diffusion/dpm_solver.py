"""DPM-Solver-2M: a second-order multistep sampler for the same guided chain as DDIM.

Each step is the DDIM step of `Diffusion.ddim_step` (the clipped, hooked x0 and the model's own
epsilon, with the same eta and the same noise) plus the multistep correction of DPM-Solver-2
(Lu et al. 2022, "DPM-Solver", multistep form in noise prediction; midpoint rule as in
k-diffusion's `sample_dpmpp_2m_sde`) applied to the model's epsilon:

    x_{i-1} = DDIM(x0_i, eps_i, eta) + c_i (eps_i - eps_{i+1}) / (2 r_i),   r_i = h_{i+1} / h_i,
    h_i = lambda_{i-1} - lambda_i,   lambda = log(alpha / sigma),
    c_i = sqrt(sigma_{i-1}^2 - sigma_eta^2) - alpha_{i-1} sigma_i / alpha_i   (eps's coefficient).

The correction extrapolates only the network's epsilon, never the guided x0: guidance targets
switch on at their own steps, and a jump in x0 would otherwise read as curvature (ours). With
eta = 0 and no clipping it is exactly DPM-Solver-2M. A sample's first step and the last step
(to t = 0) are first order, i.e. DDIM. Stateless between calls (k-diffusion style).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from dynface.diffusion.ddim import (
    Diffusion,
    NoiseSampler,
    StepInfo,
    X0Hook,
    noise_sampler,
    per_sample,
    steps_under_way,
)


def _log_snr(alpha_cumprod: float) -> float:
    """lambda = log(alpha / sigma) for alpha^2 = alpha_cumprod."""
    return 0.5 * math.log(alpha_cumprod / (1 - alpha_cumprod))


def step_ratio(diffusion: Diffusion, index: int) -> float:
    """r_i = h_{i+1} / h_i: the previous step's log-SNR increment over this one's (index >= 1)."""
    lam = [_log_snr(float(diffusion.alphas_cumprod[j])) for j in (index - 1, index, index + 1)]
    return (lam[1] - lam[2]) / (lam[0] - lam[1])


def correction_coef(diffusion: Diffusion, index: int, eta: Tensor) -> Tensor:
    """c_i of the module docstring for each sample's eta, as (n, 1, 1, 1) float32."""
    a = float(diffusion.alphas_cumprod[index])
    a_prev = float(diffusion.alphas_cumprod_prev[index])
    eta = eta.double().reshape(-1, 1, 1, 1)
    sigma_eta_sq = eta**2 * (1 - a_prev) / (1 - a) * (1 - a / a_prev)
    coef = (1 - a_prev - sigma_eta_sq).clamp(min=0).sqrt() - math.sqrt(a_prev * (1 - a) / a)
    return coef.float()


@torch.no_grad()
def sample_dpm_2m(
    diffusion: Diffusion,
    model: nn.Module,
    x: Tensor,
    start_index: int | Tensor,
    eta: float | Tensor = 0.0,
    x0_hook: X0Hook | None = None,
    noise: NoiseSampler | None = None,
    callback: Callable[[StepInfo], None] | None = None,
) -> Tensor:
    """Run DPM-Solver-2M from `start_index` (int or one per sample) down to step 0.

    Same arguments, hook calls and noise draws as `diffusion.sample`, so a chain of first-order
    steps is DDIM's chain exactly; `callback` gets a `StepInfo` per step.
    """
    starts = diffusion.start_indices(start_index, x.shape[0])
    eta_all = per_sample(eta, x.shape[0])
    draw = noise or noise_sampler(None, x.shape, x.device)
    x = x.clone()
    previous_eps = torch.zeros_like(x, dtype=torch.float32)
    # 1. The samples under way; those that were also under way at index + 1 get order 2.
    for index, rows in steps_under_way(starts):
        on_device = rows.to(x.device)
        warm = starts[rows] > index
        # 2. The DDIM step: eps and clipped x0 (DDIM eq. 9), hooked x0, update (eq. 12).
        eps, x0 = diffusion.predict(model, x[on_device], index)
        if x0_hook is not None:
            x0 = x0_hook(x0, index, rows)
        step_noise = draw(rows, index) if index > 0 else None
        update = diffusion.ddim_update(x0, eps, index, eta_all[rows].to(x.device), step_noise)
        # 3. The multistep correction on eps (DPM-Solver-2M); none at a sample's first step.
        if index > 0 and bool(warm.any()):
            coef = correction_coef(diffusion, index, eta_all[rows]).to(x.device)
            coef = coef * warm.to(x.device, torch.float32).view(-1, 1, 1, 1)
            slope = (eps - previous_eps[on_device]) / (2 * step_ratio(diffusion, index))
            update = update + coef * slope
        previous_eps[on_device] = eps
        x[on_device] = update.to(x.dtype)
        # 4. One callback per step.
        if callback is not None:
            callback(StepInfo(index, int(diffusion.timesteps[index]), rows, x, x0))
    return x
