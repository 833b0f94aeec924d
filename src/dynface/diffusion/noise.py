"""Step noise keyed by (sample, timestep), not by draw order.

Each sample has one integer key (its seed); the noise of a step is drawn from a generator seeded
with (key, the step's timestep on the 1000 scale), and the start noise from (key, START). So a
sample's noise does not depend on the other samples of its batch, and a sample whose start step
moves keeps the same noise at every step it shares with the old chain (a clip's track, where the
blur level and so the start step change from frame to frame). Ours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

Generators = torch.Generator | Sequence[torch.Generator] | None
#: The tag of the start noise (q_sample), apart from every step's timestep.
START = -1
_KEY_BITS = 62


def sample_keys(generators: Generators, batch: int) -> list[int]:
    """One key per sample: the seed of each sample's own generator, or keys drawn from one shared
    generator (or the global one, None) in batch order."""
    if generators is None or isinstance(generators, torch.Generator):
        device = generators.device if generators is not None else torch.device("cpu")
        keys = torch.randint(2**_KEY_BITS, (batch,), generator=generators, device=device)
        return [int(k) for k in keys.tolist()]
    if len(generators) < batch:
        raise ValueError(f"{len(generators)} generators for {batch} samples; give one per sample")
    return [int(g.initial_seed()) for g in generators[:batch]]


def step_seed(key: int, tag: int) -> int:
    """The seed of one sample's noise at one step: mixes (key, tag) into independent streams."""
    state = np.random.SeedSequence([key, tag - START]).generate_state(1, np.uint64)
    return int(state[0] >> 1)


class KeyedNoise:
    """Gaussian noise for the rows under way at a step, each row's from (its key, the timestep).

    Called as the samplers' `NoiseSampler`: (rows, respaced index) -> (len(rows), C, H, W).
    """

    def __init__(
        self, keys: Sequence[int], shape: Sequence[int], device: torch.device, timesteps: Tensor
    ) -> None:
        self.keys, self.sample_shape = list(keys), tuple(shape[1:])
        self.device, self.timesteps = torch.device(device), timesteps
        #: Where the generators live: the device, or the CPU for one without them (meta).
        self.draw_device = torch.device("cpu") if self.device.type == "meta" else self.device

    def __call__(self, rows: Tensor, index: int) -> Tensor:
        """The noise of the step from respaced `index`, for the samples `rows`."""
        return self._draw(rows, int(self.timesteps[index]))

    def start(self, rows: Tensor) -> Tensor:
        """The start noise (q_sample to each sample's start step), the same at any start."""
        return self._draw(rows, START)

    def _draw(self, rows: Tensor, tag: int) -> Tensor:
        """One draw per row from its own freshly seeded generator."""
        out = []
        for row in rows.tolist():
            gen = torch.Generator(self.draw_device).manual_seed(step_seed(self.keys[row], tag))
            out.append(torch.randn(self.sample_shape, generator=gen, device=self.draw_device))
        if not out:
            return torch.empty(0, *self.sample_shape, device=self.device)
        return torch.stack(out).to(self.device)


def noise_sampler(
    generators: Generators, shape: Sequence[int], device: torch.device, timesteps: Tensor
) -> KeyedNoise:
    """Keyed step noise for a batch of `shape`: keys from one generator per sample (a sample's
    result then depends on its generator's seed only), one shared generator, or the global one."""
    return KeyedNoise(sample_keys(generators, shape[0]), shape, device, timesteps)
