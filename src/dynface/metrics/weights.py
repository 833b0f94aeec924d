"""Weight files the metrics need: registry entries, lookup, and the check of published hashes.

The entries go into `dynface.weights`' registry. Upstream publishes no full sha256 for the
torchvision/pytorch-fid files, only its first 8 hex digits in the file name (torch.hub's
convention), so those entries carry `sha256=None` and `load_state_dict` checks the prefix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dynface.weights import (
    WeightsCorrupted,
    WeightSpec,
    WeightsUnavailable,
    get_spec,
    locate,
    record_loaded,
    register,
    resolve,
    sha256_file,
)

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "METRIC_WEIGHTS",
    "MetricWeights",
    "WeightsCorrupted",
    "WeightsUnavailable",
    "load_state_dict",
    "trust_loaded",
]

_TORCHVISION = "https://download.pytorch.org/models"
_LPIPS_RAW = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1"
_FID_RELEASE = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights"
# Size ranges: the networks' float32 parameters (AlexNet 61.1 M, VGG-16 138.4 M, FID Inception
# 23.9 M) within about 5 %; torch.hub files are plain float32 state dicts.
_MB = 1_000_000


@dataclass(frozen=True)
class MetricWeights:
    """A registered weight file plus the sha256 prefix its publisher put in the file name."""

    spec: WeightSpec
    sha256_prefix: str | None


METRIC_WEIGHTS: dict[str, MetricWeights] = {}


def _add(spec: WeightSpec, sha256_prefix: str | None = None) -> None:
    """Register `spec` with dynface's registry and remember its published hash prefix."""
    METRIC_WEIGHTS[spec.name] = MetricWeights(register(spec), sha256_prefix)


_add(
    WeightSpec(
        name="lpips_alex_backbone",
        filename="alexnet-owt-7be5be79.pth",
        url=f"{_TORCHVISION}/alexnet-owt-7be5be79.pth",
        sha256=None,
        size=None,
        architecture="alexnet-torchvision",
        description="LPIPS backbone: torchvision's ImageNet AlexNet (BSD-3-Clause).",
        size_range=(230 * _MB, 260 * _MB),
    ),
    sha256_prefix="7be5be79",
)
_add(
    WeightSpec(
        name="lpips_alex_lin",
        filename="lpips_v0.1_alex.pth",
        url=f"{_LPIPS_RAW}/alex.pth",
        sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        size=6009,
        architecture="lpips-lin-alex",
        description="LPIPS v0.1 linear heads for AlexNet (richzhang/PerceptualSimilarity, BSD-2).",
    )
)
_add(
    WeightSpec(
        name="lpips_vgg_backbone",
        filename="vgg16-397923af.pth",
        url=f"{_TORCHVISION}/vgg16-397923af.pth",
        sha256=None,
        size=None,
        architecture="vgg16-torchvision",
        description="LPIPS backbone: torchvision's ImageNet VGG-16 (BSD-3-Clause).",
        size_range=(520 * _MB, 590 * _MB),
    ),
    sha256_prefix="397923af",
)
_add(
    WeightSpec(
        name="lpips_vgg_lin",
        filename="lpips_v0.1_vgg.pth",
        url=f"{_LPIPS_RAW}/vgg.pth",
        sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        size=7289,
        architecture="lpips-lin-vgg",
        description="LPIPS v0.1 linear heads for VGG-16 (richzhang/PerceptualSimilarity, BSD-2).",
    )
)
_add(
    WeightSpec(
        name="fid_inception_v3",
        filename="pt_inception-2015-12-05-6726825d.pth",
        url=f"{_FID_RELEASE}/pt_inception-2015-12-05-6726825d.pth",
        sha256=None,
        size=None,
        architecture="inception-v3-fid",
        description="FID InceptionV3 (TF 2015-12-05 graph ported by pytorch-fid, Apache-2.0).",
        size_range=(85 * _MB, 105 * _MB),
    ),
    sha256_prefix="6726825d",
)


def load_state_dict(
    name: str, weights_dir: str | os.PathLike[str] | None = None, download: bool = False
) -> dict[str, Tensor]:
    """Tensors of a registered metric weight file, checked; raises WeightsUnavailable/Corrupted."""
    path = Path(resolve(name, weights_dir=weights_dir, download=download))
    entry = METRIC_WEIGHTS.get(name)
    if entry is not None and entry.sha256_prefix and entry.spec.sha256 is None:
        digest = sha256_file(path)
        if not digest.startswith(entry.sha256_prefix):
            raise WeightsCorrupted(
                f"{path}: sha256 {digest} does not start with {entry.sha256_prefix}, the hash "
                f"published in the file name; delete it and fetch {entry.spec.url} again"
            )
    from dynface.checkpoints import CheckpointError
    from dynface.checkpoints import load_state_dict as read_checkpoint

    try:
        return read_checkpoint(path)
    except CheckpointError as exc:  # a truncated or foreign file: say which and why
        raise WeightsCorrupted(str(exc)) from None


def trust_loaded(name: str, weights_dir: str | os.PathLike[str] | None = None) -> None:
    """Record the first-use sha256 of `name` once its tensors loaded into the metric's network."""
    path = locate(get_spec(name), weights_dir)
    if path is not None:
        record_loaded(name, path)
