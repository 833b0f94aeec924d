"""Network architectures, in data-path order, built from configs (same parameter names as the
reference implementations):

1. `swinir`     RM, the restoration module (DifFace's SwinIR): y -> sharp estimate r.
2. `estimator`  the learned blur-level estimator SE = SDE(TM(y)).
3. `dgsa`       the learned DGSA map network (`DGSANet`).
4. `unet`       the iDDPM UNet prior (`UNetModel`) the sampler denoises with.
5. `rrdbnet`    Real-ESRGAN's RRDBNet, the background upsampler of whole photos.
`params` checks a config's constructor arguments before a network is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynface.nets.rrdbnet import RRDBNet, build_rrdbnet
from dynface.nets.swinir import SwinIR
from dynface.nets.unet import UNetModel

__all__ = ["RRDBNet", "SwinIR", "UNetModel", "build_rrdbnet", "build_swinir", "build_unet"]


def build_unet(config: Mapping[str, Any]) -> UNetModel:
    """Build the iDDPM UNet from a DifFace `model.params` dict (same parameter names)."""
    return UNetModel(**dict(config))


def build_swinir(config: Mapping[str, Any]) -> SwinIR:
    """Build RM (SwinIR) from a DifFace `model_ir.params` dict (same parameter names)."""
    return SwinIR(**dict(config))
