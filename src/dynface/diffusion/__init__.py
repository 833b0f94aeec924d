"""Diffusion schedules and the DDIM sampler."""

from dynface.diffusion.ddim import Diffusion
from dynface.diffusion.schedule import beta_schedule, respaced_timesteps

__all__ = ["Diffusion", "beta_schedule", "respaced_timesteps"]
