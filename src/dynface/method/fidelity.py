"""The fidelity knob (ours): one number in [0, 1] leaning the method towards the input or the prior.

0 = more detail from the prior, 0.5 = the method as configured (the default; omitting the knob
gives the same results bit for bit), 1 = closer to the input. Two groups of levers move:

- the blur level: the method runs as if the equivalent blur were `s* * 2^(0.5 - fidelity)`
  (sqrt(2) times the estimate at 0, 1/sqrt(2) times it at 1), so the start steps (DSST), the
  guidance images and the dynamic eta all follow the method's own rules: higher fidelity starts
  later (less noise), guides with sharper images and uses a smaller eta;
- the guidance strength: the closed-form prior weight `mu` is divided by 10^(2 fidelity - 1)
  (the gradient variant's step `lam` multiplied by 2^(2 fidelity - 1), at most 1), and the DGSA
  map is raised linearly towards 1 above 0.5 (reached at 1) and scaled down towards half of
  itself below 0.5.

Every lever is monotone in the fidelity. Why these levers and ranges: docs/method.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dynface.errors import UsageError
from dynface.units import DEFAULT_FIDELITY, S_MAX

if TYPE_CHECKING:  # no torch import at run time: the CLI checks --fidelity before loading torch
    from torch import Tensor

__all__ = [
    "DEFAULT_FIDELITY",
    "FidelityError",
    "FidelityLevers",
    "check_fidelity",
    "fidelity_levers",
]

#: Blur-level lever: octaves of s* between fidelity 0.5 and either end.
BLUR_OCTAVES = 0.5
#: Closed-form lever: decades of mu between fidelity 0.5 and either end.
MU_DECADES = 1.0
#: Gradient-variant lever: octaves of lam between fidelity 0.5 and either end.
LAM_OCTAVES = 1.0
#: The gradient step stays stable up to 1 (the data term's gradient is 2-Lipschitz).
LAM_MAX = 1.0
#: DGSA lever at fidelity 0: the map is scaled by this gain (at fidelity 1 it is 1 everywhere).
DGSA_GAIN_AT_ZERO = 0.5


class FidelityError(UsageError):
    """A fidelity outside [0, 1], or not a number (a UsageError, so also a ValueError)."""


def check_fidelity(value: float) -> float:
    """`value` as a float in [0, 1]; FidelityError for anything else (a bool included)."""
    if isinstance(value, bool):
        raise FidelityError(f"fidelity must be a number in [0, 1], got {value!r}")
    try:
        fidelity = float(value)
    except (TypeError, ValueError):
        raise FidelityError(f"fidelity must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= fidelity <= 1.0:
        raise FidelityError(
            f"fidelity must be in [0, 1] (0 = more detail from the prior, 0.5 = default, "
            f"1 = closer to the input), got {value!r}"
        )
    return fidelity


@dataclass(frozen=True)
class FidelityLevers:
    """How one fidelity value moves each lever of the method; the identity at 0.5.

    `blur_scale` multiplies s* before the guidance levels, start steps and eta are derived from
    it; `mu_scale` and `lam_scale` multiply the closed-form prior weight and the gradient step;
    the DGSA map A becomes `dgsa_floor + dgsa_gain * A`.
    """

    fidelity: float
    blur_scale: float
    mu_scale: float
    lam_scale: float
    dgsa_floor: float
    dgsa_gain: float

    @property
    def neutral(self) -> bool:
        """True at the default fidelity: every lever is left exactly as configured."""
        return self.fidelity == DEFAULT_FIDELITY

    def blur_level(self, s_star: Tensor) -> Tensor:
        """The blur level the method acts on, in [0, S_MAX] (s* itself at 0.5): same shape."""
        return s_star if self.neutral else (s_star * self.blur_scale).clamp(0.0, S_MAX)

    def mu(self, mu: float) -> float:
        """Effective closed-form prior weight (smaller = stronger pull towards the guidance)."""
        return mu if self.neutral else mu * self.mu_scale

    def lam(self, lam: float) -> float:
        """Effective gradient step, capped at LAM_MAX (or at `lam` itself if that is larger)."""
        return lam if self.neutral else min(lam * self.lam_scale, max(lam, LAM_MAX))

    def dgsa(self, a: Tensor) -> Tensor:
        """Effective DGSA map, still in [0, 1]: `dgsa_floor + dgsa_gain * a`."""
        return a if self.neutral else self.dgsa_floor + self.dgsa_gain * a

    def dgsa_range(self, a_lo: float = 0.0, a_hi: float = 1.0) -> tuple[float, float]:
        """Where a map ranging over [a_lo, a_hi] lands after the fidelity transform."""
        if self.neutral:
            return a_lo, a_hi
        return self.dgsa_floor + self.dgsa_gain * a_lo, self.dgsa_floor + self.dgsa_gain * a_hi


def fidelity_levers(fidelity: float = DEFAULT_FIDELITY) -> FidelityLevers:
    """The levers for `fidelity` in [0, 1]: 0 = more detail from the prior, 1 = closer to the input.

    With u = fidelity - 0.5 in [-0.5, 0.5]: blur scale 2^(-2u BLUR_OCTAVES), mu scale
    10^(-2u MU_DECADES), lam scale 2^(2u LAM_OCTAVES); the DGSA map moves linearly in u towards 1
    (u > 0) or towards DGSA_GAIN_AT_ZERO times itself (u < 0).
    """
    f = check_fidelity(fidelity)
    u = f - DEFAULT_FIDELITY
    if u >= 0:
        gain = 1.0 - 2.0 * u
        floor = 1.0 - gain
    else:
        gain = 1.0 + 2.0 * u * (1.0 - DGSA_GAIN_AT_ZERO)
        floor = 0.0
    return FidelityLevers(
        fidelity=f,
        blur_scale=2.0 ** (-2.0 * u * BLUR_OCTAVES),
        mu_scale=10.0 ** (-2.0 * u * MU_DECADES),
        lam_scale=2.0 ** (2.0 * u * LAM_OCTAVES),
        dgsa_floor=floor,
        dgsa_gain=gain,
    )
