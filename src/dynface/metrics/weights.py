"""Weight files the metrics need: registry entries, lookup, and the check of published hashes.

The entries go into `dynface.weights`' registry. Upstream publishes no full sha256 for the
torchvision/pytorch-fid files, only its first 8 hex digits in the file name (torch.hub's
convention), so those entries carry `sha256=None` and `load_state_dict` checks the prefix.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dynface.weights import (
    WeightsCorrupted,
    WeightSpec,
    WeightsUnavailable,
    get_spec,
    locate,
    published,
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


def _add(spec: WeightSpec) -> None:
    """Register `spec` with dynface's registry and remember the hash prefix published in its
    file name (`<stem>-<hex>.pth`, torch.hub's convention) when it has no full sha256."""
    prefix = None
    if spec.sha256 is None:
        match = re.search(r"-([0-9a-f]{8,})\.pth$", spec.filename)
        if match is None:
            raise ValueError(f"{spec.filename}: no sha256 and no hash prefix in the file name")
        prefix = match.group(1)
    METRIC_WEIGHTS[spec.name] = MetricWeights(register(spec), prefix)


def _lpips_heads(net: str, trunk: str, sha256: str, size: int) -> WeightSpec:
    """LPIPS v0.1's linear heads for one trunk (`net`: alex, vgg), stored under a name that
    says what they are."""
    return WeightSpec(
        name=f"lpips_{net}_lin",
        filename=f"lpips_v0.1_{net}.pth",
        url=f"{_LPIPS_RAW}/{net}.pth",
        sha256=sha256,
        size=size,
        architecture=f"lpips-lin-{net}",
        description=f"LPIPS v0.1 linear heads for {trunk} (richzhang/PerceptualSimilarity, BSD-2).",
    )


_add(
    published(
        _TORCHVISION,
        "alexnet-owt-7be5be79.pth",
        "alexnet-torchvision",
        "LPIPS backbone: torchvision's ImageNet AlexNet (BSD-3-Clause).",
        name="lpips_alex_backbone",
        size_range=(230 * _MB, 260 * _MB),
    )
)
_add(
    _lpips_heads(
        "alex", "AlexNet", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", 6009
    )
)
_add(
    published(
        _TORCHVISION,
        "vgg16-397923af.pth",
        "vgg16-torchvision",
        "LPIPS backbone: torchvision's ImageNet VGG-16 (BSD-3-Clause).",
        name="lpips_vgg_backbone",
        size_range=(520 * _MB, 590 * _MB),
    )
)
_add(
    _lpips_heads(
        "vgg", "VGG-16", "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", 7289
    )
)
_add(
    published(
        _FID_RELEASE,
        "pt_inception-2015-12-05-6726825d.pth",
        "inception-v3-fid",
        "FID InceptionV3 (TF 2015-12-05 graph ported by pytorch-fid, Apache-2.0).",
        name="fid_inception_v3",
        size_range=(85 * _MB, 105 * _MB),
    )
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
