"""The Gaussian diffusion of the prior, in data-path order:

1. `schedule`  beta schedule and respacing (`beta_schedule`, `respaced_timesteps`).
2. `ddim`      `Diffusion`: q_sample (noise to a start step), `ddim_step` (eqs. 9 and 12 of DDIM)
               and `sample`, the loop over steps with an x0 hook and one callback (`StepInfo`).
"""

from dynface.diffusion.ddim import Diffusion
from dynface.diffusion.schedule import beta_schedule, respaced_timesteps

__all__ = ["Diffusion", "beta_schedule", "respaced_timesteps"]
