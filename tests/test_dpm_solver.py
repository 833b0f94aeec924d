"""DPM-Solver-2M: converges to the many-step DDIM (eta = 0) result faster than DDIM does, and
keeps DDIM's per-sample start steps, hook and noise."""

from __future__ import annotations

import pytest
import torch

from dynface.config import load_restore_config
from dynface.diffusion import Diffusion
from dynface.diffusion.ddim import noise_sampler
from dynface.diffusion.dpm_solver import sample_dpm_2m
from dynface.nets import build_unet

START_T = 100  # low enough that the clipped x0 stays mostly in [-1, 1] with a random net


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_unet(dict(load_restore_config("tiny-random").prior.params)).eval()


def _start(batch: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    image = (torch.rand(batch, 3, 32, 32, generator=gen) * 2 - 1) * 0.2
    noise = torch.randn(batch, 3, 32, 32, generator=gen)
    return Diffusion(1000, "linear", None).q_sample(image, START_T, noise)


def _grid(steps: int) -> tuple[Diffusion, int]:
    """A respacing with `steps` steps from START_T down to 0, and START_T's index in it."""
    diffusion = Diffusion(1000, "linear", f"ddim{steps * 1000 // START_T}")
    return diffusion, int((diffusion.timesteps == START_T).nonzero())


def test_converges_to_many_step_ddim_faster_than_ddim(net):
    x = _start()
    reference = Diffusion(1000, "linear", None).sample(net, x, START_T)  # 100 DDIM steps
    errors: dict[str, list[float]] = {"ddim": [], "dpm2m": []}
    for steps in (5, 10, 20):
        diffusion, start = _grid(steps)
        ddim = diffusion.sample(net, x, start)
        dpm = sample_dpm_2m(diffusion, net, x, start)
        errors["ddim"].append(float((ddim - reference).pow(2).mean().sqrt()))
        errors["dpm2m"].append(float((dpm - reference).pow(2).mean().sqrt()))
    for name, errs in errors.items():
        assert errs[0] > errs[1] > errs[2], (name, errs)  # converges as steps grow
    for ddim_err, dpm_err in zip(errors["ddim"], errors["dpm2m"], strict=True):
        assert dpm_err < 0.9 * ddim_err, errors  # closer at every step count
    gain = [d / m for d, m in zip(errors["ddim"], errors["dpm2m"], strict=True)]
    assert gain[2] > gain[0], gain  # and the lead grows with the steps (a higher order)


def test_first_order_steps_are_ddim_and_per_sample_starts_are_independent(net):
    diffusion, _ = _grid(10)
    x = _start(2)
    one_step = sample_dpm_2m(diffusion, net, x, 0)
    assert torch.equal(one_step, diffusion.sample(net, x, 0))  # no history: plain DDIM
    starts = torch.tensor([6, 3])
    eta = torch.tensor([0.0, 0.7])

    def generators():
        return [torch.Generator().manual_seed(k) for k in (1, 2)]

    together = sample_dpm_2m(
        diffusion, net, x, starts, eta, noise=noise_sampler(generators(), x.shape, x.device)
    )
    for k in range(2):
        alone = sample_dpm_2m(
            diffusion,
            net,
            x[k : k + 1],
            starts[k : k + 1],
            eta[k : k + 1],
            noise=noise_sampler(generators()[k : k + 1], x[:1].shape, x.device),
        )
        assert torch.allclose(together[k], alone[0], atol=1e-5)


def test_hook_is_applied_like_ddim(net):
    diffusion, start = _grid(5)
    x = _start()
    seen: list[tuple[int, list[int]]] = []

    def to_zero(x0: torch.Tensor, index: int, rows: torch.Tensor) -> torch.Tensor:
        seen.append((index, rows.tolist()))
        return torch.zeros_like(x0)

    out = sample_dpm_2m(diffusion, net, x, start, x0_hook=to_zero)
    assert [index for index, _ in seen] == list(range(start, -1, -1))
    assert out.abs().max() < 1e-6  # the last step returns the hooked x0
