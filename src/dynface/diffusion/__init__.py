"""The Gaussian diffusion of the prior, in data-path order:

1. `schedule`    beta schedule and respacing (`beta_schedule`, `respaced_timesteps`).
2. `ddim`        `Diffusion`: q_sample (noise to a start step), `ddim_step` (eqs. 9 and 12 of DDIM)
                 and `sample`, the loop over steps with an x0 hook and one callback (`StepInfo`).
3. `dpm_solver`  `sample_dpm_2m`: the same loop with a second-order correction (DPM-Solver-2M).
"""

from collections.abc import Callable
from functools import partial

from torch import Tensor

from dynface.diffusion.ddim import Diffusion
from dynface.diffusion.dpm_solver import sample_dpm_2m
from dynface.diffusion.schedule import beta_schedule, respaced_timesteps

__all__ = ["Diffusion", "beta_schedule", "respaced_timesteps", "sampler"]


def sampler(diffusion: Diffusion, solver: str = "ddim") -> Callable[..., Tensor]:
    """The sampling function of `solver` (config.SOLVERS) on `diffusion`, called like
    `diffusion.sample`."""
    if solver == "ddim":
        return diffusion.sample
    if solver == "dpm2m":
        return partial(sample_dpm_2m, diffusion)
    raise ValueError(f"unknown solver {solver!r}; use ddim or dpm2m")
