"""DPM-Solver++(2M) for the guided chain: DDIM's step on the guided x0, plus the second-order
correction of DPM-Solver++(2M) on the network's own x0 (its data prediction), SDE form for eta > 0.

With alpha = sqrt(abar), sigma = sqrt(1 - abar), lambda = log(alpha / sigma), a step from
s = t_i to t = t_{i-1}, h = lambda_t - lambda_s, rho = e^{-h} and k = sqrt(1 - eta^2 (1 - rho^2)):

    x_t = DDIM(x0g_i, eps_i, eta) + alpha_t (1 - rho k) (D_i - D_{i+1}) / (2 r_i),
    r_i = h_{i+1} / h_i,

where DDIM(...) is `Diffusion.ddim_update` (DDIM eq. 12: the guided, clipped x0 and the network's
epsilon, fresh noise sigma_eta), x0g the hooked x0 and D the network's clipped x0 before the hook.
Without a hook and without clipping, DDIM's step at eta is exactly the first-order step of the
SDE-DPM-Solver++ family with e^{-eta' h} = k (its fresh noise sigma_t^2 (1 - k^2) is DDIM's
sigma_eta^2), and the whole step is DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", eq. (9)
and Algorithm 2) at eta = 0, SDE-DPM-Solver++(2M) at eta = 1, with the midpoint rule of
k-diffusion's `sample_dpmpp_2m_sde` in between. So eta keeps its meaning of how much fresh noise
enters, and the guidance acts as in the method's DDIM chain: the guided x0 is applied in full at
every step (ours; taking the guided x0 itself as the data prediction applies only (1 - rho) of
the guidance per step and drifts far from the DDIM chain: see docs/method.md).

A step is first order (plain DDIM) at a sample's first step, at the last step (to t = 0), and
where the x0 hook's phase changed for that sample (`PhasedHook`: a guidance target switched on;
no extrapolation across the switch). On a spacing uniform in t the log-SNR increments grow fast
near t = 0 (r_i down to 0.2) and the extrapolation overshoots (x1.8 the variance at ddim50 and
eta 1 on `dynface.diffusion.analytic`'s model): r_i is taken at least MIN_RATIO = 0.5 (ours; no
effect on FAST's log-SNR spacing, where every r_i >= 0.7).
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


def correction_coef(diffusion: Diffusion, index: int, eta: Tensor) -> Tensor:
    """alpha_t (1 - rho k) of the step from respaced `index` (>= 1), (n,) float64 for the rows'
    eta (n,): the data prediction's coefficient in the SDE-DPM-Solver++ step."""
    a_s = diffusion.alphas_cumprod[index].double()
    a_t = diffusion.alphas_cumprod_prev[index].double()
    rho = (
        (1 - a_t) * a_s / (a_t * (1 - a_s))
    ).sqrt()  # e^{-h} = sigma_t alpha_s / (alpha_t sigma_s)
    keep = (1 - eta.double() ** 2 * (1 - rho**2)).clamp(min=0).sqrt()
    return a_t.sqrt() * (1 - rho * keep)


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
    """Run DPM-Solver++(2M) on the guided chain (SDE form where eta > 0) from `start_index` (int
    or one per sample) down to step 0; same arguments, hook calls and keyed noise as
    `diffusion.sample`, so a chain of first-order steps is DDIM's chain exactly."""
    starts = diffusion.start_indices(start_index, x.shape[0])
    eta_all = per_sample(eta, x.shape[0])
    draw = noise or noise_sampler(None, x.shape, x.device, diffusion.timesteps)
    x = x.clone()
    previous_d = torch.zeros_like(x, dtype=torch.float32)
    previous_phase = torch.full((x.shape[0],), -1, dtype=torch.long)  # -1: not yet under way
    # 1. The samples under way, each from its own start index.
    for index, rows in steps_under_way(starts):
        on_device = rows.to(x.device)
        eta_rows = eta_all[rows]
        # 2. The network's eps and clipped x0 D_i (DDIM eq. 9), then the hook's guided x0.
        eps, data = diffusion.predict(model, x[on_device], index)
        x0 = data if x0_hook is None else x0_hook(data, index, rows)
        # 3. DDIM's step on the guided x0 (eq. 12), fresh noise sigma_eta.
        step_noise = draw(rows, index) if index > 0 else None
        update = diffusion.ddim_update(x0, eps, index, eta_rows.to(x.device), step_noise)
        # 4. The second-order correction on D (DPM-Solver++(2M), midpoint rule), for the rows
        #    under way at index + 1 in the same phase.
        phase = hook_phase(x0_hook, index, rows)
        warm = (previous_phase[rows] == phase) & (index > 0)
        if bool(warm.any()):
            coef = correction_coef(diffusion, index, eta_rows) * warm.double()
            slope = (data - previous_d[on_device]) / (2 * step_ratio(diffusion, index))
            update = update + _column(coef, x0) * slope
        previous_d[on_device], previous_phase[rows] = data, phase
        x[on_device] = update.to(x.dtype)
        # 5. One callback per step.
        if callback is not None:
            callback(StepInfo(index, int(diffusion.timesteps[index]), rows, x, x0))
    return x
