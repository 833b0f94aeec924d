"""The method's units and constants, defined once (no torch import: the CLI reads them too).

Blur levels `s` are Gaussian standard deviations in pixels of a REFERENCE_SIZE aligned face; `t`
is a step of the DIFFUSION_STEPS-step linear beta schedule. See docs/method.md.
"""

from __future__ import annotations

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
