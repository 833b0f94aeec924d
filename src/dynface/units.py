"""The method's units and constants, defined once (no torch import: the CLI reads them too).

Blur levels `s` are Gaussian standard deviations in pixels of a REFERENCE_SIZE aligned face; `t`
is a step of the DIFFUSION_STEPS-step linear beta schedule. See docs/method.md.
"""

from __future__ import annotations

import numbers

#: Face size (px) at which blur levels and the DSST table are defined.
REFERENCE_SIZE = 512
#: Blur levels are clipped to [0, S_MAX] px at REFERENCE_SIZE.
S_MAX = 16.0
#: Smallest guidance blur level: s_j = max(s* - j, S_MIN).
S_MIN = 0.3
#: Prior weight of the closed-form guidance (ours): data wins below |K|^2 = MU.
MU = 0.01
#: Step of the gradient guidance (ours); below 1 it cannot increase the data term.
LAM = 0.5
#: Blur level (px) at which the dynamic DDIM eta reaches 1: eta = clip(s* / ETA_SCALE, 0, 1).
ETA_SCALE = 10.0
#: The fidelity knob's neutral setting: the method exactly as configured (dynface.method.fidelity).
DEFAULT_FIDELITY = 0.5
#: Steps of the diffusion the prior was trained with, and its linear beta range.
DIFFUSION_STEPS = 1000
BETA_START = 1e-4
BETA_END = 0.02
#: DifFace's published inference: noise the RM output to t = 400, then DDIM with eta 0.5.
DIFFACE_START_T = 400
DIFFACE_ETA = 0.5
#: The whole-photo upscale range (the CLI's --upscale, the web UI's slider, the API's option).
UPSCALE_MIN = 1.0
UPSCALE_MAX = 4.0


def check_upscale(value: object) -> float:
    """`value` as a float in [UPSCALE_MIN, UPSCALE_MAX]; a UsageError naming the setting for
    anything else (NaN, inf, bools, strings), so the CLI, the UI and the API refuse alike."""
    from dynface.errors import UsageError

    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    upscale = float(value) if real else float("nan")  # type: ignore[arg-type]
    if not UPSCALE_MIN <= upscale <= UPSCALE_MAX:
        raise UsageError(
            f"upscale must be a number from {UPSCALE_MIN:g} to {UPSCALE_MAX:g}, got {value!r}"
        )
    return upscale


#: Seeds are whole numbers from 0 to MAX_SEED (what a torch generator and a 64-bit int hold).
MAX_SEED = 2**63 - 1


def check_seed(value: object, name: str = "seed") -> int:
    """`value` as an int in [0, MAX_SEED]; a UsageError naming `name` for anything else (NaN,
    1.5, "x", True), as the API, the CLI and the UI refuse a seed of -1."""
    from dynface.errors import UsageError

    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    number = int(value) if isinstance(value, numbers.Integral) and whole else -1
    if not 0 <= number <= MAX_SEED:
        raise UsageError(f"{name} must be a whole number from 0 to 2**63-1, got {value!r}")
    return number
