"""DPM-Solver++(2M) in data prediction, with its SDE form wherever eta > 0.

The data prediction D_i is the clipped x0 of the network after the x0 hook (the guided x0). With
alpha = sqrt(abar), sigma = sqrt(1 - abar), lambda = log(alpha / sigma), a step from s = t_i to
t = t_{i-1} with h = lambda_t - lambda_s and rho = e^{-h} is (Lu et al. 2022, "DPM-Solver++",
eq. (9) and Algorithm 2 for eta = 0, SDE-DPM-Solver++(2M) for eta = 1; the eta-family between
them as k-diffusion's `sample_dpmpp_2m_sde`, midpoint rule):

    x_t = (sigma_t / sigma_s) k x_s + alpha_t (1 - rho k) D + sigma_t sqrt(1 - k^2) z,
    D = D_i + (D_i - D_{i+1}) / (2 r_i),   r_i = h_{i+1} / h_i,   k = sqrt(1 - eta^2 (1 - rho^2)).

k = e^{-eta' h} with the SDE's eta' chosen per step so that the fresh noise, sigma_t^2 (1 - k^2) =
eta^2 sigma_t^2 (1 - rho^2), is exactly DDIM's sigma_eta^2 at the same eta (DDIM eq. 16): eta
keeps its meaning of how much fresh noise enters (this matching is ours). eta = 0 is the ODE
solver, eta = 1 the SDE solver (ancestral sampling at first order). A first step is first order
(D = D_i): a sample's first step, the last step (to t = 0: x = D_i), and a step where the x0
hook's phase changed for that sample (a guidance target switched on: the jump in x0 is not
curvature; ours). A chain of first-order steps at eta = 0 is DDIM on the data prediction.

On a spacing uniform in t the log-SNR increments grow fast near t = 0 (r_i down to 0.2), where
the extrapolation D_i + (D_i - D_{i+1}) / (2 r_i) overshoots and inflates the variance (x1.8 at
ddim50 and eta 1 on the analytic model of `dynface.diffusion.analytic`): r_i is taken at least
MIN_RATIO = 0.5 (ours; no effect on FAST's log-SNR spacing, where every r_i >= 0.7).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from dynface.diffusion.ddim import (
    Diffusion,
    NoiseSampler,
    PhasedHook,
    StepInfo,
    X0Hook,
    noise_sampler,
    per_sample,
    steps_under_way,
)


def _lambda(alpha_cumprod: Tensor) -> Tensor:
    """lambda = log(alpha / sigma) for alpha^2 = alpha_cumprod (float64)."""
    return 0.5 * torch.log(alpha_cumprod / (1 - alpha_cumprod))


#: The least r_i the correction uses: D never moves by more than D_i - D_{i+1} (ours).
MIN_RATIO = 0.5


def step_ratio(diffusion: Diffusion, index: int) -> float:
    """r_i = h_{i+1} / h_i, the previous step's log-SNR increment over this one's (index >= 1),
    at least MIN_RATIO."""
    lam = _lambda(diffusion.alphas_cumprod[index - 1 : index + 2].double())
    return max(float((lam[1] - lam[2]) / (lam[0] - lam[1])), MIN_RATIO)


def step_coefficients(diffusion: Diffusion, index: int, eta: Tensor) -> tuple[Tensor, ...]:
    """(x_s's, D's and z's coefficient) of the step from respaced `index`, each (n,) float64 for
    the rows' eta (n,); the step to t = 0 (index 0) gives (0, 1, 0): x = D."""
    a_s = diffusion.alphas_cumprod[index].double()
    a_t = diffusion.alphas_cumprod_prev[index].double()
    eta = eta.double()
    if index == 0:
        return torch.zeros_like(eta), torch.ones_like(eta), torch.zeros_like(eta)
    # rho = e^{-h} = (sigma_t alpha_s) / (alpha_t sigma_s)
    rho = ((1 - a_t) * a_s / (a_t * (1 - a_s))).sqrt()
    keep = (1 - eta**2 * (1 - rho**2)).clamp(min=0).sqrt()
    x_coef = ((1 - a_t) / (1 - a_s)).sqrt() * keep
    d_coef = a_t.sqrt() * (1 - rho * keep)
    z_coef = (1 - a_t).sqrt() * (1 - keep**2).sqrt()
    return x_coef, d_coef, z_coef


def _column(values: Tensor, like: Tensor) -> Tensor:
    """(n,) values as (n, 1, 1, 1) float32 on like's device."""
    return values.to(like.device, torch.float32).view(-1, 1, 1, 1)


def hook_phase(hook: X0Hook | None, index: int, rows: Tensor) -> Tensor:
    """The hook's phase of each row at `index` ((n,) long, CPU); 0 for a hook without phases."""
    if isinstance(hook, PhasedHook):
        return hook.phase(index, rows).cpu().long()
    return torch.zeros(len(rows), dtype=torch.long)


@torch.no_grad()
def sample_dpmpp_2m(
    diffusion: Diffusion,
    model: nn.Module,
    x: Tensor,
    start_index: int | Tensor,
    eta: float | Tensor = 0.0,
    x0_hook: X0Hook | None = None,
    noise: NoiseSampler | None = None,
    callback: Callable[[StepInfo], None] | None = None,
) -> Tensor:
    """Run DPM-Solver++(2M) (SDE form where eta > 0) from `start_index` (int or one per sample)
    down to step 0; same arguments, hook calls and noise draws as `diffusion.sample`."""
    starts = diffusion.start_indices(start_index, x.shape[0])
    eta_all = per_sample(eta, x.shape[0])
    draw = noise or noise_sampler(None, x.shape, x.device, diffusion.timesteps)
    x = x.clone()
    previous_x0 = torch.zeros_like(x, dtype=torch.float32)
    previous_phase = torch.full((x.shape[0],), -1, dtype=torch.long)  # -1: not yet under way
    # 1. The samples under way, each from its own start index.
    for index, rows in steps_under_way(starts):
        on_device = rows.to(x.device)
        # 2. The data prediction D_i: the clipped x0 (DDIM eq. 9), then the hook (guidance).
        _, x0 = diffusion.predict(model, x[on_device], index)
        if x0_hook is not None:
            x0 = x0_hook(x0, index, rows)
        # 3. Second order where the sample was under way at index + 1 in the same phase.
        phase = hook_phase(x0_hook, index, rows)
        warm = (previous_phase[rows] == phase) & (index > 0)
        data = x0
        if bool(warm.any()):
            slope = (x0 - previous_x0[on_device]) / (2 * step_ratio(diffusion, index))
            data = x0 + _column(warm.double(), x0) * slope
        previous_x0[on_device], previous_phase[rows] = x0, phase
        # 4. The step (DPM-Solver++ eq. 9 / SDE-DPM-Solver++(2M)) with DDIM's fresh noise.
        x_coef, d_coef, z_coef = step_coefficients(diffusion, index, eta_all[rows])
        update = _column(x_coef, x0) * x[on_device].float() + _column(d_coef, x0) * data
        if index > 0 and bool((z_coef > 0).any()):
            update = update + _column(z_coef, x0) * draw(rows, index).float()
        x[on_device] = update.to(x.dtype)
        # 5. One callback per step.
        if callback is not None:
            callback(StepInfo(index, int(diffusion.timesteps[index]), rows, x, x0))
    return x
