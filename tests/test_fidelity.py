"""The fidelity knob's mapping onto the method's levers (pure functions, no networks)."""

from __future__ import annotations

import math

import pytest
import torch

from dynface.method.dblm import guidance_levels
from dynface.method.dsst import DSSTable
from dynface.method.eta import dynamic_eta
from dynface.method.fidelity import (
    DEFAULT_FIDELITY,
    FidelityError,
    check_fidelity,
    fidelity_levers,
)
from dynface.method.guidance import LAM, MU

FIDELITY_GRID = [i / 20 for i in range(21)]
S_STAR_GRID = torch.tensor([0.0, 0.3, 0.8, 1.2, 2.0, 3.0, 4.5, 5.4, 8.0, 10.0, 12.0, 15.0, 16.0])


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan"), float("inf"), "high", None])
def test_values_outside_the_unit_interval_are_refused(bad):
    with pytest.raises(FidelityError, match=r"\[0, 1\]"):
        check_fidelity(bad)


def test_ends_and_strings_of_numbers_are_accepted():
    assert check_fidelity(0) == 0.0
    assert check_fidelity(1) == 1.0
    assert check_fidelity("0.25") == 0.25


def test_the_default_leaves_every_lever_untouched():
    levers = fidelity_levers()
    assert levers.fidelity == DEFAULT_FIDELITY and levers.neutral
    s = torch.tensor([1.234567, 7.7])
    a = torch.rand(2, 1, 8, 8)
    assert levers.blur_level(s) is s
    assert levers.dgsa(a) is a
    assert levers.mu(MU) == MU and levers.lam(LAM) == LAM
    assert levers.dgsa_range(0.25, 1.0) == (0.25, 1.0)


def test_the_ends_of_the_scale():
    low, high = fidelity_levers(0.0), fidelity_levers(1.0)
    assert low.blur_scale == pytest.approx(math.sqrt(2))
    assert high.blur_scale == pytest.approx(1 / math.sqrt(2))
    assert low.mu(MU) == pytest.approx(10 * MU) and high.mu(MU) == pytest.approx(MU / 10)
    assert high.dgsa_range(0.25, 1.0) == pytest.approx((1.0, 1.0))
    assert low.dgsa_range(0.25, 1.0) == pytest.approx((0.125, 0.5))
    assert high.lam(LAM) == pytest.approx(1.0) and high.lam(0.9) == pytest.approx(1.0)


def _effective(fidelity: float, dsst: DSSTable) -> dict[str, torch.Tensor]:
    """Every effective value the pipeline derives from s* for one fidelity, over S_STAR_GRID."""
    levers = fidelity_levers(fidelity)
    s_eff = levers.blur_level(S_STAR_GRID)
    lo, hi = levers.dgsa_range(0.25, 1.0)
    return {
        "s_levels": guidance_levels(s_eff),
        "start_steps": dsst.start_step(guidance_levels(s_eff).double()),
        "eta": dynamic_eta(s_eff),
        "mu": torch.tensor(levers.mu(MU)),
        "lam": torch.tensor(levers.lam(LAM)),
        "dgsa_lo": torch.tensor(lo),
        "dgsa_hi": torch.tensor(hi),
    }


def test_every_lever_is_monotone_in_the_fidelity():
    """As fidelity rises: blur levels, start steps, eta and mu never rise; lam and the DGSA range
    never fall (checked for every s* of the grid and every target)."""
    dsst = DSSTable.default()
    values = [_effective(f, dsst) for f in FIDELITY_GRID]
    for before, after in zip(values, values[1:], strict=False):
        for key in ("s_levels", "start_steps", "eta", "mu"):
            assert bool((after[key] <= before[key]).all()), key
        for key in ("lam", "dgsa_lo", "dgsa_hi"):
            assert bool((after[key] >= before[key]).all()), key
    # The scale really moves: the start step of a 5.4 px blur spans about 100 steps (766..863).
    span = values[0]["start_steps"][7, 0] - values[-1]["start_steps"][7, 0]
    assert span > 80


def test_the_dgsa_map_stays_in_the_unit_interval():
    a = torch.linspace(0, 1, 11)
    for f in FIDELITY_GRID:
        out = fidelity_levers(f).dgsa(a)
        assert float(out.min()) >= 0 and float(out.max()) <= 1 + 1e-12
        assert bool((out.diff() >= 0).all())
