"""The fidelity knob in the pipeline, on the tiny random nets: neutral default, monotone levers,
outputs that move towards the guidance, traces that record the effective values."""

from __future__ import annotations

import math

import pytest
import torch

from dynface.api import Restorer
from dynface.errors import UsageError
from dynface.method.dblm import guidance_levels
from dynface.method.eta import dynamic_eta
from dynface.method.fidelity import FidelityError, fidelity_levers
from dynface.method.hook import GuidanceHook
from dynface.method.trace import build_traces

FIDELITIES = [0.0, 0.25, 0.5, 0.75, 1.0]
S_STARS = [0.0, 0.3, 1.0, 1.7, 2.5, 3.3, 4.5, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0]


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    return Restorer.from_config("tiny-random", device="cpu")


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny nets run fastest on one thread (and the machine is shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _without_timing(traces: list[dict]) -> list[dict]:
    return [{k: v for k, v in trace.items() if k != "timing"} for trace in traces]


def test_omitting_fidelity_is_exactly_fidelity_one_half(restorer, faces):
    default = restorer.restore_aligned(faces, seed=7)
    half = restorer.restore_aligned(faces, seed=7, fidelity=0.5)
    assert torch.equal(default.images, half.images)
    assert _without_timing(default.traces) == _without_timing(half.traces)
    # ... and 0.5 is the method as configured: s*, its levels, steps, eta and mu untouched.
    dsst = restorer.pipeline.dsst
    for trace in half.traces:
        assert trace["fidelity"] == 0.5 and trace["s_effective"] == trace["s_star"]
        s_levels = guidance_levels(torch.tensor([trace["s_star"]]))[0]
        assert trace["s_levels"] == pytest.approx(s_levels.tolist(), abs=1e-3)
        assert trace["t_levels"] == dsst.start_step(s_levels.double()).tolist()
        assert trace["eta"] == pytest.approx(float(dynamic_eta(torch.tensor([trace["s_star"]]))))
        assert (trace["mu"], trace["lam"], trace["dgsa_range"]) == (0.01, 0.5, [0.25, 1.0])


def _plan_traces(restorer: Restorer, fidelity: float) -> list[dict]:
    """Traces of the plans of len(S_STARS) faces with those blur levels (no sampling)."""
    pipeline = restorer.pipeline
    r = torch.rand(len(S_STARS), 3, 32, 32, generator=torch.Generator().manual_seed(0))
    plan = pipeline.plan(r, r, torch.tensor(S_STARS), fidelity)
    traces = build_traces(plan, pipeline.method, pipeline.diffusion, {})
    return [trace.to_dict() for trace in traces]


def test_as_fidelity_rises_no_lever_moves_towards_the_prior(restorer):
    """Start steps, eta and the guidance blur never rise and the pull never weakens (mu never
    rises, lam and the DGSA range never fall), for every blur level of the grid."""
    plans = [_plan_traces(restorer, f) for f in FIDELITIES]
    for lower, higher in zip(plans, plans[1:], strict=False):
        for a, b in zip(lower, higher, strict=True):
            assert b["start_t"] <= a["start_t"] and b["nfe"] <= a["nfe"]
            assert all(tb <= ta for ta, tb in zip(a["t_levels"], b["t_levels"], strict=True))
            assert all(sb <= sa for sa, sb in zip(a["s_levels"], b["s_levels"], strict=True))
            assert b["eta"] <= a["eta"] and b["mu"] <= a["mu"] and b["lam"] >= a["lam"]
            assert b["dgsa_range"][0] >= a["dgsa_range"][0]
            assert b["dgsa_range"][1] >= a["dgsa_range"][1]
    # The knob really acts: at s* = 6, t(s_0) moves by about 100 steps end to end (879 -> 779).
    assert plans[0][7]["t_levels"][0] - plans[-1][7]["t_levels"][0] > 80


def test_output_moves_towards_the_guidance_as_fidelity_rises(restorer, faces):
    """Mean squared distance of the output to r = RM(y), the image every guidance image is a
    blur of, at the strongest blur level (s* = 16, the longest chain), with a fixed seed."""
    with torch.no_grad():
        r = restorer.pipeline.rm(faces).float().clamp(0, 1)
    s_star = torch.full((len(faces),), 16.0)
    distances = []
    for fidelity in FIDELITIES:
        out = restorer.restore_aligned(faces, seed=0, s_star=s_star, fidelity=fidelity).images
        distances.append(float((out - r).square().mean()))
    assert all(b < a for a, b in zip(distances, distances[1:], strict=False)), distances
    assert distances[-1] < distances[0] / 100


def test_traces_record_the_effective_values(restorer, faces):
    s_star = torch.tensor([4.0, 9.0])
    result = restorer.restore_aligned(faces, seed=0, s_star=s_star, fidelity=0.8)
    for trace, s in zip(result.traces, s_star.tolist(), strict=True):
        assert trace["fidelity"] == 0.8 and trace["s_star"] == s
        assert trace["s_effective"] == pytest.approx(s * 2**-0.3, abs=1e-3)
        assert trace["eta"] == pytest.approx(trace["s_effective"] / 10, abs=1e-3)
        assert trace["mu"] == pytest.approx(0.01 * 10**-0.6, rel=1e-5)  # 6 digits kept
        assert trace["dgsa_range"] == pytest.approx([0.25 + 0.6 * 0.75, 1.0])
        assert math.isclose(trace["s_levels"][0], trace["s_effective"], abs_tol=1e-3)


def test_a_dynamic_dgsa_map_is_moved_by_the_knob(restorer, faces):
    """A learned (per-step) DGSA map goes through the same lever as the static one."""

    class ConstantMap:
        dynamic = True

        def __call__(self, g0, x0, t):
            return torch.full_like(x0[:, :1], 0.4)

    pipeline = restorer.pipeline
    for fidelity, expected in ((0.0, 0.2), (0.5, 0.4), (1.0, 1.0)):
        plan = pipeline.plan(faces, faces, torch.tensor([5.0, 5.0]), fidelity)
        hook = GuidanceHook(
            plan, pipeline.method, ConstantMap(), pipeline.diffusion.timesteps, 1 / 16
        )
        x0 = torch.zeros(2, 3, 32, 32)
        strength = hook._strength(x0[:, :1], x0, 500, torch.arange(2))
        assert torch.allclose(strength, torch.full_like(strength, expected))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_a_fidelity_outside_the_unit_interval_is_refused_before_any_work(restorer, faces, bad):
    with pytest.raises(FidelityError, match=r"\[0, 1\]"):
        restorer.restore_aligned(faces, fidelity=bad)


def test_the_difface_baseline_refuses_a_fidelity_other_than_one_half():
    baseline = Restorer.from_config("tiny-random", device="cpu", overrides={"mode": "difface"})
    assert baseline.pipeline.levers(0.5) == fidelity_levers(0.5)
    with pytest.raises(UsageError, match="difface"):
        baseline.restore_aligned(torch.rand(1, 3, 32, 32), fidelity=0.7)
