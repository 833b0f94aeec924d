"""The Gaussian diffusion of the prior, in data-path order:

1. `schedule`    beta schedule and respacing (`beta_schedule`, `respaced_timesteps`: "ddimN",
                 "logsnrN", step counts).
2. `noise`       step noise keyed by (sample, timestep): `noise_sampler`, `KeyedNoise`.
3. `ddim`        `Diffusion`: q_sample (noise to a start step), `ddim_step` (eqs. 9 and 12 of DDIM)
                 and `sample`, the loop over steps with an x0 hook and one callback (`StepInfo`).
4. `dpm_solver`  `sample_dpmpp_2m`: DPM-Solver++(2M) on the guided x0, SDE form where eta > 0.

`SOLVERS` names the samplers, `FAST = (solver, respacing)` the recommended few-step setting.
"""

from collections.abc import Callable
from functools import partial

from torch import Tensor

from dynface.config import FAST, SOLVER_ALIASES, SOLVERS, solver_name
from dynface.diffusion.ddim import Diffusion
from dynface.diffusion.dpm_solver import sample_dpmpp_2m
from dynface.diffusion.schedule import beta_schedule, respaced_timesteps

__all__ = [
    "FAST",
    "SOLVERS",
    "SOLVER_ALIASES",
    "Diffusion",
    "beta_schedule",
    "respaced_timesteps",
    "sampler",
]


def sampler(diffusion: Diffusion, solver: str = "ddim") -> Callable[..., Tensor]:
    """The sampling function of `solver` (SOLVERS, or an old name of SOLVER_ALIASES) on
    `diffusion`, called like `diffusion.sample`."""
    name = solver_name(solver)
    if name == "ddim":
        return diffusion.sample
    return partial(sample_dpmpp_2m, diffusion)
