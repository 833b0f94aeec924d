"""DGSA: per-pixel guidance strength A in [0, 1], learned or by the heuristic map (ours).

Heuristic: `A = a_hi - (a_hi - a_lo) * E`, where E in [0, 1] is the local high-frequency energy of
the guidance image g_0: per-pixel energy of g_0 - k(1.5) * g_0, saturated at its per-image 80th
percentile (so one strong edge does not count more than a patch of texture), box-smoothed over
31 px and divided by its per-image 99th percentile. Smooth skin and isolated contours keep strong
guidance (a_hi); dense texture such as hair gets a_lo, so the prior supplies its detail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynface.method.blur import gaussian_blur, reflect_pad2d
from dynface.nets.dgsa import DGSANet

#: Defaults of the heuristic (ours), for faces at 512 px; sizes scale with the image height.
A_HI = 1.0
A_LO = 0.25
HF_SIGMA = 1.5
BOX = 31
SATURATION = 0.8
PERCENTILE = 0.99
#: Energy floor, in [-1, 1] units squared: detail weaker than this counts as smooth.
ENERGY_FLOOR = 1e-4
#: Floor of the final normaliser: a map whose 99th percentile is below it is not stretched.
DENSITY_FLOOR = 0.05


def _percentile(x: Tensor, q: float) -> Tensor:
    """Per-image q-quantile of a (B, 1, H, W) map (kthvalue: no size limit), shape (B, 1, 1, 1)."""
    flat = x.reshape(x.shape[0], -1)
    k = min(flat.shape[1], max(1, round(q * flat.shape[1])))
    return flat.kthvalue(k, dim=1).values.view(-1, 1, 1, 1)


def high_frequency_energy(
    g0: Tensor, hf_sigma: float = HF_SIGMA, box: int = BOX, percentile: float = PERCENTILE
) -> Tensor:
    """E in [0, 1], (B, 1, H, W): density of high-frequency detail of g0 (see module doc)."""
    b, _, h, w = g0.shape
    scale = h / 512
    detail = g0 - gaussian_blur(g0, hf_sigma * scale)
    energy = detail.square().mean(dim=1, keepdim=True)
    sat = _percentile(energy, SATURATION).clamp_min(ENERGY_FLOOR)
    energy = (energy / sat).clamp_max(1)
    size = max(3, int(round(box * scale)) | 1)
    padded = reflect_pad2d(energy, size // 2)
    density = F.avg_pool2d(F.avg_pool2d(padded, (1, size), stride=1), (size, 1), stride=1)
    ref = _percentile(density, percentile).clamp_min(DENSITY_FLOOR)
    return (density / ref).clamp(0, 1)


def heuristic_map(
    g0: Tensor,
    a_hi: float = A_HI,
    a_lo: float = A_LO,
    hf_sigma: float = HF_SIGMA,
    box: int = BOX,
    percentile: float = PERCENTILE,
) -> Tensor:
    """A = a_hi - (a_hi - a_lo) * E(g0), (B, 1, H, W) in [a_lo, a_hi]; g0 in [-1, 1]."""
    if not 0 <= a_lo <= a_hi <= 1:
        raise ValueError(f"need 0 <= a_lo <= a_hi <= 1, got a_lo={a_lo}, a_hi={a_hi}")
    return a_hi - (a_hi - a_lo) * high_frequency_energy(g0, hf_sigma, box, percentile)


@runtime_checkable
class GuidanceScale(Protocol):
    """Maps (g0, x0, t) to the per-pixel guidance strength A in [0, 1], (B, 1, H, W).

    `dynamic` says whether A changes with x0 and t (then the sampler asks at every step) or
    depends on g0 only (then it is computed once per image). `modules()` names the networks it
    holds, so a pipeline can move them with everything else.
    """

    dynamic: bool

    def __call__(self, g0: Tensor, x0: Tensor, t: Tensor | int) -> Tensor: ...

    def modules(self) -> dict[str, nn.Module]: ...


class HeuristicDGSA:
    """The heuristic map (ours). It depends on g0 only: a sampler may compute it once per image."""

    dynamic = False

    def __init__(self, a_hi: float = A_HI, a_lo: float = A_LO, **kwargs: float) -> None:
        self.kwargs: dict[str, Any] = {"a_hi": a_hi, "a_lo": a_lo, **kwargs}

    def __call__(self, g0: Tensor, x0: Tensor | None = None, t: Tensor | int = 0) -> Tensor:
        """A for this g0; x0 and t are ignored."""
        return heuristic_map(g0, **self.kwargs)

    def modules(self) -> dict[str, nn.Module]:
        """No networks."""
        return {}


class LearnedDGSA:
    """A trained `DGSANet` on [g0, x0, t-map]; changes with every step."""

    dynamic = True

    def __init__(self, net: DGSANet) -> None:
        self.net = net

    def modules(self) -> dict[str, nn.Module]:
        """The DGSA network."""
        return {"dgsa": self.net}

    @torch.no_grad()
    def __call__(self, g0: Tensor, x0: Tensor, t: Tensor | int) -> Tensor:
        """A = net(g0, x0, t) in [0, 1]; the net stays float32."""
        strength: Tensor = self.net(g0.float(), x0.float(), t)
        return strength


def make_dgsa(config: str | dict[str, Any] | None = None) -> GuidanceScale:
    """DGSA from a name or config: "heuristic" (default; keys a_hi, a_lo, hf_sigma, box,
    percentile) or "learned" (key `weights`: a file path, or `net`: a built DGSANet)."""
    cfg: dict[str, Any] = (
        {"name": config} if isinstance(config, str) or config is None else dict(config)
    )
    name = (cfg.pop("name", None) or "heuristic").lower()
    if name == "heuristic":
        return HeuristicDGSA(**cfg)
    if name == "learned":
        if "net" in cfg:
            return LearnedDGSA(cfg["net"])
        if "weights" in cfg:
            return LearnedDGSA(DGSANet.from_file(Path(cfg["weights"])))
        raise ValueError("the learned DGSA needs `weights` (a file) or `net` (a DGSANet)")
    raise ValueError(f"unknown DGSA {name!r}; use 'heuristic' or 'learned'")
