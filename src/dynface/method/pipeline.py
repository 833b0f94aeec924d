"""The aligned-face pipeline: RM, blur level, plan, guided DDIM (see docs/architecture.md).

For a batch y of aligned faces in [0, 1]:
  1. r = clamp(RM(y), 0, 1) at the working size (RM: the restoration module, DifFace's SwinIR);
  2. the plan (`dynface.method.plan`): s* = SE(y, r), s_j, g_j = k(s_j) * r, t_j = DSST(s_j),
     the start step, eta(s*) and the DGSA map;
  3. x_start = q_sample(g_0, start) with each face's own noise;
  4. DDIM from each face's start, every x0 prediction guided by `GuidanceHook`;
  5. back to [0, 1] at the input size, with one `FaceTrace` per face.
Blur levels are in pixels at 512 (where the DSST table is defined), scaled to the working size.
In `difface` mode DifFace's chain runs instead: no guidance, a fixed start (t = 400) and eta.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dynface.config import MethodConfig, solver_name
from dynface.diffusion import Diffusion, sampler
from dynface.diffusion.ddim import Generators, StepInfo, noise_sampler
from dynface.errors import UsageError
from dynface.method.dblm import BlurLevelEstimator, LearnedEstimator, ZeroShotEstimator
from dynface.method.dgsa import GuidanceScale, HeuristicDGSA, LearnedDGSA
from dynface.method.dsst import DSSTable
from dynface.method.fidelity import DEFAULT_FIDELITY, FidelityLevers, fidelity_levers
from dynface.method.hook import GuidanceHook
from dynface.method.plan import SamplingPlan, plan_difface, plan_dynface
from dynface.method.trace import FaceTrace, build_traces
from dynface.resize import resize
from dynface.units import REFERENCE_SIZE, S_MAX


@dataclass(frozen=True)
class PipelineOutput:
    """Restored faces (B, 3, H, W) in [0, 1] at the input size, on the pipeline's device."""

    images: Tensor
    traces: list[FaceTrace]


class Pipeline:
    """Runs the method on batches of aligned faces; holds no state between batches."""

    def __init__(
        self,
        prior: nn.Module,
        rm: nn.Module,
        diffusion: Diffusion,
        method: MethodConfig,
        image_size: int = REFERENCE_SIZE,
        solver: str = "ddim",
    ) -> None:
        self.prior, self.rm, self.diffusion, self.method = prior, rm, diffusion, method
        self.sampler = sampler(diffusion, solver)
        self.solver = solver_name(solver)
        self.image_size = image_size
        self.pixel_scale = image_size / REFERENCE_SIZE
        self.dsst = DSSTable.default() if method.dsst == "default" else DSSTable.load(method.dsst)
        self.estimator = build_estimator(method)
        # The zero-shot fit measures s in pixels of its input; the learned SE answers at 512.
        learned = isinstance(self.estimator, LearnedEstimator)
        self.estimator_px_scale = 1.0 if learned else self.pixel_scale
        self.dgsa = build_dgsa(method)
        first = next(prior.parameters())
        self.device, self.dtype = first.device, first.dtype
        self.to(self.device)

    def modules(self) -> dict[str, nn.Module]:
        """Every network the pipeline holds, by name (prior, rm, learned SE parts, DGSA net)."""
        nets: dict[str, nn.Module] = {"prior": self.prior, "rm": self.rm}
        if isinstance(self.estimator, LearnedEstimator):
            nets.update(self.estimator.modules())
        if self.dgsa is not None:
            nets.update(self.dgsa.modules())
        return nets

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> Pipeline:
        """Move every network to `device`; `dtype` (default: unchanged) applies to the prior and
        RM, the small learned estimator and DGSA nets stay float32. Float64 work (spectra, kernels,
        schedule tables) stays on the CPU whatever the device."""
        self.device = torch.device(device)
        self.dtype = dtype or self.dtype
        for name, module in self.modules().items():
            big = name in ("prior", "rm")
            module.to(self.device, self.dtype if big else torch.float32)
        return self

    def _lap(self, since: float) -> tuple[float, float]:
        """(seconds since `since`, now), once the device has finished its queued work."""
        now = self._sync()
        return now - since, now

    def _sync(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def run_rm(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """The input at the working size and r = clamp(RM(y), 0, 1), both float32 on the device."""
        work = resize(y.to(self.device, torch.float32), self.image_size).clamp(0, 1)
        return work, self.rm(work.to(self.dtype)).float().clamp(0, 1)

    @torch.no_grad()
    def estimate_blur(self, y: Tensor) -> Tensor | None:
        """Blur levels s* (B,) in px at 512 (CPU) of aligned faces in [0, 1]; None in difface
        mode. What `restore` would estimate, without sampling."""
        if self.method.mode == "difface":
            return None
        return self.blur_levels(*self.run_rm(y))

    def blur_levels(self, work: Tensor, r: Tensor) -> Tensor:
        """s* (B,) in px at 512, on the CPU, from the working-size input and the RM output."""
        s_star = self.estimator(work, r).float().cpu() / self.estimator_px_scale
        return s_star.clamp(0, S_MAX)

    @torch.no_grad()
    def restore(
        self,
        y: Tensor,
        generator: Generators = None,
        progress: Callable[[int], None] | None = None,
        initial_noise: Tensor | None = None,
        on_plan: Callable[[int], None] | None = None,
        s_star: Tensor | None = None,
        fidelity: float = DEFAULT_FIDELITY,
    ) -> PipelineOutput:
        """Restore a (B, 3, H, W) batch in [0, 1]; returns the same size in [0, 1] and traces.

        `generator`: one per face (a face's noise is keyed by its generator's seed and each
        step's timestep, so its result depends on that seed only: `dynface.diffusion.noise`),
        one for the batch, or None. `initial_noise` (working size) replaces the start noise, so
        a reference chain can be reproduced exactly. A NaN input or s* is a UsageError.
        `on_plan(total)` is called once the start steps are known, with the batch's network
        evaluations (the sum of the traces' nfe);
        `progress(n)` after each sampling step with the faces evaluated in it. `s_star` (B,), px
        at 512, replaces the estimated blur levels (video smooths them along a face's track).
        `fidelity` in [0, 1]: 0 = more detail from the prior, 0.5 = the method as configured,
        1 = closer to the input (`dynface.method.fidelity`).
        """
        self.levers(fidelity)  # refuse a bad fidelity before any work
        if y.ndim != 4 or y.shape[1] != 3:
            raise UsageError(f"expected a (B, 3, H, W) batch of RGB faces, got {tuple(y.shape)}")
        if not bool(torch.isfinite(y).all()):
            raise UsageError("the faces have NaN or infinite pixels: no blur level to act on")
        timing: dict[str, float] = {}
        clock = self._sync()
        # 1. RM: the restoration module's sharp estimate r at the working size.
        work, r = self.run_rm(y)
        timing["rm_s"], clock = self._lap(clock)
        # 2. The plan: s*, s_j, g_j, t_j, start steps, eta, DGSA map.
        plan = self.plan(work, r, s_star, fidelity)
        timing["estimate_s"], clock = self._lap(clock)
        if on_plan is not None:
            on_plan(int(plan.nfe.sum()))
        # 3-4. Noise each face to its start, then guided DDIM down to step 0.
        x, hook = self._sample(plan, generator, progress, initial_noise)
        timing["sampling_s"], _ = self._lap(clock)
        # 5. Back to [0, 1] at the input size.
        out = resize((x.float() + 1) / 2, (y.shape[-2], y.shape[-1])).clamp(0, 1)
        means = hook.mean_strength() if hook is not None else None
        traces = build_traces(plan, self.method, self.diffusion, timing, means, self.solver)
        return PipelineOutput(out, traces)

    @torch.no_grad()
    def sample(
        self,
        plan: SamplingPlan,
        generator: Generators = None,
        progress: Callable[[int], None] | None = None,
        initial_noise: Tensor | None = None,
    ) -> Tensor:
        """Run a plan: x (B, 3, H, W) in [-1, 1] at the working size, on the device."""
        return self._sample(plan, generator, progress, initial_noise)[0]

    def _sample(
        self,
        plan: SamplingPlan,
        generator: Generators,
        progress: Callable[[int], None] | None,
        initial_noise: Tensor | None,
    ) -> tuple[Tensor, GuidanceHook | None]:
        """x_start = sqrt(abar) x0 + sqrt(1 - abar) eps with each face's own noise, then DDIM (or
        DPM-Solver++(2M)) from each face's first step, every x0 guided by the hook (None: DifFace).
        Each face's noise is keyed by (its generator's seed, the timestep)."""
        shape = plan.x_start.shape
        draw = noise_sampler(generator, shape, self.device, self.diffusion.timesteps)
        noise = draw.start(torch.arange(shape[0])) if initial_noise is None else initial_noise
        x = self.diffusion.q_sample(plan.x_start, plan.start_index, noise.to(plan.x_start))
        hook = None
        if plan.mode == "dynface":
            timesteps = self.diffusion.timesteps
            hook = GuidanceHook(plan, self.method, self.dgsa, timesteps, self.pixel_scale)
        x = self.sampler(
            self.prior,
            x,
            plan.first_step,
            plan.eta,
            x0_hook=hook,
            noise=draw,
            callback=_progress_callback(progress),
        )
        return x, hook

    def levers(self, fidelity: float) -> FidelityLevers:
        """The fidelity knob's levers; FidelityError outside [0, 1], and a UsageError for any
        fidelity but 0.5 in the difface mode (DifFace's chain has no levers)."""
        levers = fidelity_levers(fidelity)
        if self.method.mode == "difface" and not levers.neutral:
            raise UsageError(
                "fidelity applies to the dynface method; the difface baseline runs DifFace's "
                "fixed chain (leave fidelity at 0.5, or use method.mode: dynface)"
            )
        return levers

    def plan(
        self,
        work: Tensor,
        r: Tensor,
        s_star: Tensor | None = None,
        fidelity: float = DEFAULT_FIDELITY,
    ) -> SamplingPlan:
        """The per-face plan from the working-size input and RM output, both in [0, 1];
        `s_star` (B,) replaces the estimate; `fidelity` leans it (see `restore`)."""
        levers = self.levers(fidelity)
        if self.method.mode == "difface":
            return plan_difface(r, self.method, self.diffusion)
        given = s_star is not None
        if s_star is None:
            s_star = self.blur_levels(work, r)
        else:
            s_star = torch.as_tensor(s_star, dtype=torch.float32).cpu().reshape(len(r))
        check_blur_levels(s_star, "given" if given else "estimated")
        return plan_dynface(
            s_star, r, self.method, self.dsst, self.diffusion, self.dgsa, self.pixel_scale, levers
        )


def check_blur_levels(s_star: Tensor, origin: str) -> None:
    """A UsageError naming the faces whose blur level s* is NaN or infinite (never a NaN image)."""
    bad = (~torch.isfinite(s_star)).nonzero().flatten().tolist()
    if bad:
        faces = ", ".join(str(k) for k in bad[:8])
        raise UsageError(
            f"blur level s* ({origin}) is {float(s_star[bad[0]])} for face(s) {faces}: "
            f"pass finite blur levels (px at 512, 0 to {S_MAX:g})"
        )


def _progress_callback(
    progress: Callable[[int], None] | None,
) -> Callable[[StepInfo], None] | None:
    """The sampler's callback that reports the faces evaluated at each step."""
    if progress is None:
        return None
    return lambda info: progress(len(info.rows))


def build_estimator(method: MethodConfig) -> BlurLevelEstimator:
    """The blur-level estimator of a config: the zero-shot fit, or the learned SE (shipped
    weights, or `method.estimator_weights`)."""
    if method.estimator == "zero-shot":
        return ZeroShotEstimator()
    from dynface.method.learned_se import load_estimator

    return LearnedEstimator(sde=load_estimator(method.estimator_weights))


def build_dgsa(method: MethodConfig) -> GuidanceScale | None:
    """The DGSA of a config: the heuristic map, a learned net, or None."""
    if method.dgsa == "heuristic":
        return HeuristicDGSA()
    if method.dgsa == "learned":
        from dynface.nets.dgsa import DGSANet

        assert method.dgsa_weights is not None  # MethodConfig refuses learned without weights
        return LearnedDGSA(DGSANet.from_file(method.dgsa_weights))
    return None
