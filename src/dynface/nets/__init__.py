"""Network architectures: DifFace's UNet prior and SwinIR restorer, Real-ESRGAN's RRDBNet."""

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
    """Build the SwinIR restorer from a DifFace `model_ir.params` dict (same parameter names)."""
    return SwinIR(**dict(config))
