"""What the method did to each face, typed; `to_dict()` gives the JSON written beside results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch.nn.functional as F

from dynface.config import MethodConfig
from dynface.diffusion import Diffusion
from dynface.method.dgsa import A_HI, A_LO
from dynface.method.fidelity import DEFAULT_FIDELITY
from dynface.method.plan import SamplingPlan

#: Side of the DGSA thumbnail stored in each trace.
THUMBNAIL = 16


@dataclass(frozen=True)
class FaceTrace:
    """One face: its plan (blur levels, start steps, eta), its cost and timings."""

    mode: str  # "dynface" or "difface"
    start_index: int  # respaced step the face was noised to
    start_t: int  # its timestep on the 1000 scale
    eta: float
    nfe: int  # network evaluations of the prior
    solver: str = "ddim"  # the sampler that ran (dynface.diffusion.SOLVERS)
    respacing: str = ""  # the respacing it ran on, e.g. "ddim250" or "logsnr14"
    timing: dict[str, float] = field(default_factory=dict)  # seconds of the whole batch
    s_star: float | None = None  # estimated blur level, px at 512
    s_levels: list[float] | None = None  # s_j
    t_levels: list[int] | None = None  # t(s_j)
    estimator: str | None = None
    guidance: str | None = None
    dgsa: str | None = None
    dgsa_mean: float | None = None  # mean guidance strength over the guided steps
    dgsa_thumbnail: list[list[float]] | None = None  # 16x16 static DGSA map
    fidelity: float = DEFAULT_FIDELITY  # the fidelity knob (0.5: the method as configured)
    s_effective: float | None = None  # blur level acted on: s* moved by the fidelity
    mu: float | None = None  # effective closed-form prior weight
    lam: float | None = None  # effective gradient step
    dgsa_range: list[float] | None = None  # effective range [low, high] of the DGSA map

    def to_dict(self) -> dict[str, object]:
        """JSON-ready; the DifFace baseline omits the fields it has no use for."""
        data = asdict(self)
        if self.mode == "difface":
            return {k: v for k, v in data.items() if v is not None}
        return data


def build_traces(
    plan: SamplingPlan,
    method: MethodConfig,
    diffusion: Diffusion,
    timing: dict[str, float],
    dgsa_means: list[float | None] | None = None,
    solver: str = "ddim",
) -> list[FaceTrace]:
    """The traces of one sampled batch, run by `solver` on `diffusion`'s respacing."""
    common = _common_fields(plan, diffusion, timing, solver)
    if plan.mode == "difface" or plan.s_star is None:
        return [FaceTrace(**c) for c in common]
    assert plan.s_levels is not None and plan.t_levels is not None
    thumbs = _dgsa_thumbnails(plan)
    means = [None if m is None else round(m, 4) for m in dgsa_means or [None] * len(common)]
    assert plan.s_effective is not None
    mu, lam, dgsa_range = _effective_guidance(plan, method)
    return [
        FaceTrace(
            **common[b],
            s_star=round(float(plan.s_star[b]), 3),
            s_levels=[round(v, 3) for v in plan.s_levels[b].tolist()],
            t_levels=[int(v) for v in plan.t_levels[b].tolist()],
            estimator=method.estimator,
            guidance=method.guidance,
            dgsa=method.dgsa,
            dgsa_mean=means[b],
            dgsa_thumbnail=[[round(v, 3) for v in row] for row in thumbs[b]] if thumbs else None,
            s_effective=round(float(plan.s_effective[b]), 3),
            mu=mu,
            lam=lam,
            dgsa_range=dgsa_range,
        )
        for b in range(len(common))
    ]


def _common_fields(
    plan: SamplingPlan, diffusion: Diffusion, timing: dict[str, float], solver: str
) -> list[dict[str, Any]]:
    """The fields every mode records, one dict per face: start step, eta, cost, sampler,
    timing."""
    starts, etas, nfes = plan.start_index.tolist(), plan.eta.tolist(), plan.nfe.tolist()
    return [
        {
            "mode": plan.mode,
            "start_index": start,
            "start_t": int(diffusion.timesteps[start]),
            "eta": round(eta, 4),
            "nfe": nfe,
            "solver": solver,
            "respacing": diffusion.respacing,
            "timing": dict(timing),
            "fidelity": plan.levers.fidelity,
        }
        for start, eta, nfe in zip(starts, etas, nfes, strict=True)
    ]


def _dgsa_thumbnails(plan: SamplingPlan) -> list[list[list[float]]] | None:
    """Each face's static DGSA map averaged down to THUMBNAIL x THUMBNAIL, or None."""
    if plan.dgsa_map is None:
        return None
    thumbs: list[list[list[float]]] = (
        F.adaptive_avg_pool2d(plan.dgsa_map.float(), THUMBNAIL)[:, 0].cpu().tolist()
    )
    return thumbs


def _effective_guidance(
    plan: SamplingPlan, method: MethodConfig
) -> tuple[float, float, list[float]]:
    """mu, lam (6 significant digits) and the DGSA map's range after the fidelity knob; the
    configured map spans [A_LO, A_HI] (heuristic), [0, 1] (learned) or is 1 (no DGSA)."""
    low, high = {"heuristic": (A_LO, A_HI), "learned": (0.0, 1.0)}.get(method.dgsa, (1.0, 1.0))
    mu, lam = plan.levers.mu(method.mu), plan.levers.lam(method.lam)
    dgsa_range = [round(v, 4) for v in plan.levers.dgsa_range(low, high)]
    return float(f"{mu:.6g}"), float(f"{lam:.6g}"), dgsa_range
