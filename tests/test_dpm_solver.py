"""DPM-Solver++(2M): second order on the exact flow of Gaussian data (DDIM: first order), keeps
DDIM's per-sample start steps, hook and keyed noise, and does not extrapolate across a change of
the hook's phase (a guidance target switching on)."""

from __future__ import annotations

import dataclasses
import functools
import itertools

import pytest
import torch

from dynface.config import load_restore_config
from dynface.diffusion import Diffusion, sampler
from dynface.diffusion.analytic import MEAN, VARIANCE, GaussianEpsilon, exact_flow_output
from dynface.diffusion.ddim import StepInfo
from dynface.diffusion.dpm_solver import sample_dpmpp_2m
from dynface.diffusion.noise import noise_sampler
from dynface.method.dsst import to_respaced_index
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


def test_second_order_on_the_exact_flow_where_ddim_is_first_order():
    """Gaussian data, the exact epsilon: the error against the exact ODE solution falls about 4x
    per doubling of the log-SNR steps for DPM-Solver++(2M), 2x for DDIM."""
    full = Diffusion(1000, "linear", None)
    model = GaussianEpsilon(full.base_alphas_cumprod)
    u = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    errors: dict[str, list[float]] = {"ddim": [], "dpmpp2m": []}
    for steps in (6, 12, 24, 48):
        diffusion = Diffusion(1000, "linear", f"logsnr{steps}")
        start = int(to_respaced_index(torch.tensor([750]), diffusion.timesteps)[0])
        a = full.base_alphas_cumprod[int(diffusion.timesteps[start])]
        x = (a.sqrt() * MEAN + (a * VARIANCE + 1 - a).sqrt() * u).float()
        exact = exact_flow_output(x, int(diffusion.timesteps[start]), full.base_alphas_cumprod)
        for name, errs in errors.items():
            out = sampler(diffusion, name)(model, x, start)
            errs.append(float((out - exact).pow(2).mean().sqrt()))
    for low, high in itertools.pairwise(errors["ddim"]):
        assert 1.6 < low / high < 2.4, errors
    for low, high in itertools.pairwise(errors["dpmpp2m"]):
        assert low / high > 2.5, errors
    assert errors["dpmpp2m"][0] < errors["ddim"][0] / 3, errors


def test_first_order_steps_are_ddim_and_per_sample_starts_are_independent(net):
    diffusion, _ = _grid(10)
    x = _start(2)
    one_step = sample_dpmpp_2m(diffusion, net, x, 0)
    assert torch.equal(one_step, diffusion.sample(net, x, 0))  # no history: plain DDIM
    starts = torch.tensor([6, 3])
    eta = torch.tensor([0.0, 0.7])

    def generators():
        return [torch.Generator().manual_seed(k) for k in (1, 2)]

    def noise(gens, shape):
        return noise_sampler(gens, shape, x.device, diffusion.timesteps)

    together = sample_dpmpp_2m(diffusion, net, x, starts, eta, noise=noise(generators(), x.shape))
    for k in range(2):
        alone = sample_dpmpp_2m(
            diffusion,
            net,
            x[k : k + 1],
            starts[k : k + 1],
            eta[k : k + 1],
            noise=noise(generators()[k : k + 1], x[:1].shape),
        )
        assert torch.allclose(together[k], alone[0], atol=1e-5)


def test_hook_is_applied_like_ddim(net):
    diffusion, start = _grid(5)
    x = _start()
    seen: list[tuple[int, list[int]]] = []

    def to_zero(x0: torch.Tensor, index: int, rows: torch.Tensor) -> torch.Tensor:
        seen.append((index, rows.tolist()))
        return torch.zeros_like(x0)

    out = sample_dpmpp_2m(diffusion, net, x, start, x0_hook=to_zero)
    assert [index for index, _ in seen] == list(range(start, -1, -1))
    assert out.abs().max() < 1e-6  # the last step returns the hooked x0


class _SwitchingHook:
    """Pulls x0 to a different constant once its phase changes (a target switching on)."""

    def __init__(self, switch: int, phased: bool) -> None:
        self.switch, self.phased = switch, phased

    def __call__(self, x0: torch.Tensor, index: int, rows: torch.Tensor) -> torch.Tensor:
        return 0.5 * x0 + (0.4 if index <= self.switch else -0.4)

    def phase(self, index: int, rows: torch.Tensor) -> torch.Tensor:
        return torch.full((len(rows),), int(self.phased and index <= self.switch))


def test_a_phase_change_is_a_first_step(net):
    """At the step where the hook's phase changes, the step is DDIM's: no extrapolation."""
    diffusion, start = _grid(10)
    x, switch = _start(), 4
    for phased, first_order in ((True, True), (False, False)):
        states: list[StepInfo] = []  # the sampler updates x in place: keep copies

        def keep(info: StepInfo, states: list[StepInfo] = states) -> None:
            states.append(dataclasses.replace(info, x=info.x.clone()))

        hook = _SwitchingHook(switch, phased)
        sample_dpmpp_2m(diffusion, net, x, start, x0_hook=hook, callback=keep)
        before = next(s for s in states if s.index == switch + 1).x
        after = next(s for s in states if s.index == switch).x
        guide = functools.partial(hook, index=switch, rows=torch.arange(1))
        ddim, _ = diffusion.ddim_step(net, before, switch, guide=guide)
        assert torch.allclose(after, ddim, atol=1e-5) is first_order


def _sde_dpmpp_2m(diffusion, model, x, start, eta, noise):
    """SDE-DPM-Solver++(2M) written out (VP form of k-diffusion's midpoint rule), eta' per step
    such that e^{-eta' h} = sqrt(1 - eta^2 (1 - e^{-2h}))."""
    old, h_last = None, None
    for i in range(start, -1, -1):
        _, d = diffusion.predict(model, x, i)
        if i == 0:
            return d
        a_s, a_t = diffusion.alphas_cumprod[i], diffusion.alphas_cumprod_prev[i]
        h = 0.5 * (torch.log(a_t / (1 - a_t)) - torch.log(a_s / (1 - a_s)))
        k = (1 - eta**2 * (1 - torch.exp(-2 * h))).sqrt()
        phi = a_t.sqrt() * (1 - torch.exp(-h) * k)
        new = ((1 - a_t) / (1 - a_s)).sqrt() * k * x + phi * d
        if old is not None:
            new = new + phi / (2 * max(float(h_last / h), 0.5)) * (d - old)
        z = noise(torch.arange(len(x)), i)
        x = (new + (1 - a_t).sqrt() * (1 - k**2).sqrt() * z).float()
        old, h_last = d, h
    return x


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_without_a_hook_it_is_sde_dpm_solver_pp_2m(eta):
    """DDIM's step plus the correction equals the SDE-DPM-Solver++(2M) step whenever x0 is not
    clipped (the Gaussian model): eta' matched so the fresh noise is DDIM's."""
    diffusion = Diffusion(1000, "linear", "logsnr18")
    model = GaussianEpsilon(diffusion.base_alphas_cumprod)
    x = 0.6 * torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    gens = [torch.Generator().manual_seed(k) for k in (4, 5)]
    noise = noise_sampler(gens, x.shape, x.device, diffusion.timesteps)
    ours = sample_dpmpp_2m(diffusion, model, x, 13, eta, noise=noise)
    torch.testing.assert_close(ours, _sde_dpmpp_2m(diffusion, model, x, 13, eta, noise),
                               atol=1e-4, rtol=0)  # fmt: skip


def test_the_old_dpm2m_name_runs_the_new_solver():
    diffusion = Diffusion(1000, "linear", "ddim10")
    assert sampler(diffusion, "dpm2m").func is sample_dpmpp_2m  # type: ignore[attr-defined]
    assert load_restore_config("tiny-random", {"solver": "dpm2m"}).diffusion.solver == "dpmpp2m"
    with pytest.raises(ValueError, match="unknown solver 'euler'; use ddim or dpmpp2m"):
        sampler(diffusion, "euler")
