"""What the method did to each face, typed; `to_dict()` gives the JSON written beside results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch.nn.functional as F

from dynface.config import MethodConfig
from dynface.diffusion import Diffusion
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
    timing: dict[str, float] = field(default_factory=dict)  # seconds of the whole batch
    s_star: float | None = None  # estimated blur level, px at 512
    s_levels: list[float] | None = None  # s_j
    t_levels: list[int] | None = None  # t(s_j)
    estimator: str | None = None
    guidance: str | None = None
    dgsa: str | None = None
    dgsa_mean: float | None = None  # mean guidance strength over the guided steps
    dgsa_thumbnail: list[list[float]] | None = None  # 16x16 static DGSA map

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
) -> list[FaceTrace]:
    """The traces of one sampled batch."""
    starts = plan.start_index.tolist()
    common = [
        {
            "mode": plan.mode,
            "start_index": start,
            "start_t": int(diffusion.timesteps[start]),
            "eta": round(eta, 4),
            "nfe": nfe,
            "timing": dict(timing),
        }
        for start, eta, nfe in zip(starts, plan.eta.tolist(), plan.nfe.tolist(), strict=True)
    ]
    if plan.mode == "difface" or plan.s_star is None:
        return [FaceTrace(**c) for c in common]
    assert plan.s_levels is not None and plan.t_levels is not None
    thumbs = None
    if plan.dgsa_map is not None:
        thumbs = F.adaptive_avg_pool2d(plan.dgsa_map.float(), THUMBNAIL)[:, 0].cpu().tolist()
    means = [None if m is None else round(m, 4) for m in dgsa_means or [None] * len(starts)]
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
        )
        for b in range(len(starts))
    ]
