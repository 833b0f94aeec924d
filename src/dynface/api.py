"""`Restorer`: the one object users call to restore aligned faces (whole photos build on it)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dynface import weights
from dynface.backends import check_backend, compile_net
from dynface.checkpoints import load_resolved
from dynface.config import NetworkConfig, RestoreConfig, load_restore_config
from dynface.devices import pick_device
from dynface.diffusion import Diffusion
from dynface.errors import UsageError
from dynface.identity.guard import IdentityOptions, guard_faces
from dynface.inputs import ImageInput, as_face_list
from dynface.method.fidelity import DEFAULT_FIDELITY
from dynface.method.pipeline import Pipeline, PipelineOutput, check_blur_levels
from dynface.nets import build_swinir, build_unet
from dynface.results import RestoreResult
from dynface.units import check_seed

__all__ = ["PRECISIONS", "RestoreResult", "Restorer", "face_generators", "face_seed"]

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Restorer:
    """Diffusion face restorer (DynFaceRestore on DifFace's networks).

    Build it with `Restorer.from_config("default")` (the official 512 networks; run
    `dynface weights download` first) or `"tiny-random"` (tiny random nets for smoke tests: the
    method runs in full, the faces come out as flat patches), then call `restore_aligned(images)`
    on aligned face crops.
    """

    def __init__(
        self, pipeline: Pipeline, settings: RestoreConfig, device: torch.device, precision: str
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        #: The config as plain data (every default filled in), e.g. for traces.
        self.config = settings.to_dict()
        self.precision = precision
        #: The backend asked for ("auto", "onnxruntime", ...): the background upsampler follows it.
        self.backend = "torch"
        pipeline.to(device)

    @property
    def device(self) -> torch.device:
        """Where the networks run (the pipeline's device)."""
        return self.pipeline.device

    def to(self, device: str | torch.device, precision: str | None = None) -> Restorer:
        """Move every network to `device` (and `precision`: fp32, fp16, bf16); returns self."""
        if precision is not None and precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.precision = precision or self.precision
        self.pipeline.to(device, PRECISIONS[self.precision])
        return self

    @classmethod
    def from_config(
        cls,
        path_or_preset: str | Path = "default",
        device: str | torch.device = "auto",
        precision: str = "fp32",
        weights_dir: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        backend: str = "auto",
    ) -> Restorer:
        """Load a preset or YAML config, fetch or find its weights, and move it to `device`.

        `backend` runs the prior and the RM on a faster runtime (`dynface.backends`): "auto"
        measures, once per machine, eager torch against ONNX Runtime and OpenVINO (`dynface[cpu]`
        for OpenVINO) on a CPU and keeps the fastest that agrees with eager fp32 (bf16 only
        where asked for and measured faster); GPUs and small nets stay on torch. On a CPU,
        bf16 is applied by the backend (autocast or the runtime's precision hint) and the
        weights stay float32; on a GPU the weights are cast. `backend_choices` says what ran.
        """
        settings = load_restore_config(path_or_preset, overrides)
        check_backend(backend, precision)
        if precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        torch_device = pick_device(device)
        if precision == "fp16" and torch_device.type == "cpu":
            raise UsageError("fp16 needs a GPU; on the CPU use --precision bf16 or fp32")
        seed = settings.random_weights_seed
        paths = _resolve_weights([settings.prior, settings.restorer], weights_dir)
        prior = _build(build_unet, settings.prior, paths[0], seed).eval()
        rm = _build(build_swinir, settings.restorer, paths[1], seed + 1).eval()
        d = settings.diffusion
        diffusion = Diffusion(d.steps, d.schedule, d.respacing)
        pipeline = Pipeline(
            prior, rm, diffusion, settings.method, settings.image_size, solver=d.solver
        )
        on_cpu = torch_device.type == "cpu"
        pipeline.to(torch_device, torch.float32 if on_cpu else PRECISIONS[precision])
        _compile_nets(pipeline, backend, precision, settings.image_size)
        restorer = cls(pipeline, settings, torch_device, precision)
        restorer.backend = backend
        return restorer

    @property
    def backends(self) -> dict[str, str]:
        """The runtime each big network runs on, e.g. {"prior": "openvino", "rm": "openvino"}."""
        return {name: choice[0] for name, choice in self.backend_choices.items()}

    @property
    def backend_choices(self) -> dict[str, tuple[str, str, str]]:
        """(runtime, precision, why) of the prior and the RM, e.g. ("onnxruntime", "fp32",
        "measured fastest: 1.76 s vs eager 2.50 s"): what the run's first line says."""
        nets = self.pipeline.modules()
        return {
            name: (
                str(getattr(nets[name], "backend", "torch")),
                str(getattr(nets[name], "precision", self.precision)),
                str(getattr(nets[name], "reason", "")),
            )
            for name in ("prior", "rm")
        }

    @property
    def sampling(self) -> dict[str, str]:
        """What samples the faces: {"solver": "dpmpp2m", "respacing": "logsnr14"} (e.g.)."""
        return {"solver": self.pipeline.solver, "respacing": self.pipeline.diffusion.respacing}

    @property
    def is_random(self) -> bool:
        """True when the nets carry random weights (tiny-random): the output is no restoration."""
        return "random" in (self.settings.prior.weights, self.settings.restorer.weights)

    def restore_aligned(
        self,
        images: ImageInput,
        seed: int | Sequence[int] | None = None,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        on_plan: Callable[[int], None] | None = None,
        s_star: Tensor | Sequence[float] | None = None,
        fidelity: float = DEFAULT_FIDELITY,
        identity: IdentityOptions | None = None,
    ) -> RestoreResult:
        """Restore aligned face crops; each comes back at its own size, with a trace.

        `images`: a torch tensor (C, H, W) / (B, C, H, W), uint8 or float in [0, 1]; a numpy
        array (H, W, C) / (B, H, W, C); a PIL image; or a list of these (sizes may differ). See
        `RestoreResult` for how to use the result. `seed` makes it reproducible: face k gets its
        own noise from (seed, k), or from `seed[k]` when one seed per face is given, so a face
        does not depend on its batch. `batch_size` bounds how many faces run at once.
        `progress(n)` is called after every sampling step with the faces evaluated in it, and
        `on_plan(n)` before each batch's sampling with the total that batch will report (the
        sum of its traces' "nfe"); the plans of all batches add up to the sum of progress.
        `s_star` (one per face) replaces the estimated blur levels (see `estimate_blur`).

        `fidelity` in [0, 1] leans the result: 0 = more detail from the prior (the face may
        drift from the input), 0.5 = the method as configured (the default; the same result as
        omitting it), 1 = closer to the input (less invented detail). Each trace records it
        with the effective blur level, start step, eta, mu and DGSA range. A value outside
        [0, 1] raises `FidelityError` (a `UsageError`, hence a `ValueError`).

        `identity` (`IdentityOptions`) measures each face against its input (or reference
        photos) into `trace["identity"]`; `guard=True` restores a drifting face again at
        fidelity 0.75, then 1.0, and keeps the first that holds (dynface.identity.guard).
        """
        self.pipeline.levers(fidelity)
        faces = as_face_list(images)
        if batch_size is not None and batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {batch_size}")
        levels = None if s_star is None else _per_face(s_star, len(faces))
        restored, traces = self._restore_all(
            faces, seed, batch_size, levels, fidelity, progress, on_plan
        )
        if identity is not None:
            again = partial(self._again, faces, seed, batch_size, progress, on_plan, traces)
            inputs = [_face_rgb(face) for face in faces]
            restored, traces = guard_faces(
                again, inputs, (restored, traces), identity, fidelity, _face_rgb
            )
        return RestoreResult(_stack_if_one_size(restored), traces)

    def _restore_all(
        self,
        faces: list[Tensor],
        seed: int | Sequence[int] | None,
        batch_size: int | None,
        levels: Tensor | None,
        fidelity: float,
        progress: Callable[[int], None] | None,
        on_plan: Callable[[int], None] | None,
    ) -> tuple[list[Tensor], list[dict[str, Any]]]:
        """Every face restored, batch by batch, each with its own generator: images, traces."""
        generators = face_generators(seed, len(faces), self.device)
        restored: list[Tensor] = [torch.empty(0)] * len(faces)
        traces: list[dict[str, Any]] = [{}] * len(faces)
        for group in _batches(faces, batch_size):
            out = self._restore_group(faces, group, generators, levels, fidelity, progress, on_plan)
            for k, image, trace in zip(group, out.images.cpu(), out.traces, strict=True):
                restored[k], traces[k] = image, trace.to_dict()
        return restored, traces

    def _again(
        self,
        faces: list[Tensor],
        seed: int | Sequence[int] | None,
        batch_size: int | None,
        progress: Callable[[int], None] | None,
        on_plan: Callable[[int], None] | None,
        first_traces: list[dict[str, Any]],
        indices: list[int],
        fidelity: float,
    ) -> tuple[list[Tensor], list[dict[str, Any]]]:
        """The faces `indices` restored again at `fidelity`, with their own seeds and first s*."""
        levels = [first_traces[k].get("s_star") for k in indices]
        result = self.restore_aligned(
            [faces[k] for k in indices],
            seed=_seed_subset(seed, indices),
            batch_size=batch_size,
            progress=progress,
            on_plan=on_plan,
            s_star=None if None in levels else [float(v) for v in levels if v is not None],
            fidelity=fidelity,
        )
        return result.tensors(), result.traces

    def _restore_group(
        self,
        faces: list[Tensor],
        group: list[int],
        generators: list[torch.Generator] | None,
        levels: Tensor | None,
        fidelity: float,
        progress: Callable[[int], None] | None,
        on_plan: Callable[[int], None] | None,
    ) -> PipelineOutput:
        """The faces numbered `group` (all one size) as one batch, each with its own generator
        and blur level."""
        return self.pipeline.restore(
            torch.stack([faces[k] for k in group]),
            [generators[k] for k in group] if generators else None,
            progress,
            on_plan=on_plan,
            s_star=levels[group] if levels is not None else None,
            fidelity=fidelity,
        )

    def estimate_blur(self, images: ImageInput) -> Tensor | None:
        """Blur levels s* (B,) (px at 512) of aligned faces, on the host; any input that
        `restore_aligned` takes.

        What `restore_aligned` would estimate, without sampling: a video smooths them along a
        face's track and passes them back as `s_star`. None in the difface mode (no s*).
        """
        faces = as_face_list(images)
        levels = torch.zeros(len(faces))
        for group in _same_size_runs(faces, 0, len(faces)):
            s_star = self.pipeline.estimate_blur(torch.stack([faces[k] for k in group]))
            if s_star is None:
                return None
            levels[group] = s_star
        return levels


def _seed_subset(seed: int | Sequence[int] | None, indices: list[int]) -> list[int] | None:
    """The seeds of faces `indices` of a call with `seed` (see `face_generators`)."""
    if seed is None:
        return None
    if not isinstance(seed, Sequence):
        return [face_seed(seed, k) for k in indices]
    return [int(seed[k]) for k in indices]


def _face_rgb(face: Tensor) -> np.ndarray:
    """A (3, H, W) face in [0, 1] as an HxWx3 uint8 RGB array (for the identity meter)."""
    array = face.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
    return np.ascontiguousarray(array.cpu().numpy())


def _per_face(values: Tensor | Sequence[float], count: int) -> Tensor:
    """One float per face, (count,), or a UsageError."""
    levels = torch.as_tensor(values, dtype=torch.float32).flatten().cpu()
    if len(levels) != count:
        raise UsageError(f"got {len(levels)} blur levels for {count} faces; give one per face")
    check_blur_levels(levels, "given")
    return levels


def _batches(faces: list[Tensor], batch_size: int | None) -> Iterator[list[int]]:
    """Face indices in batches of at most `batch_size` (all at once when None), each batch
    split by face size."""
    step = batch_size or len(faces)
    for first in range(0, len(faces), step):
        yield from _same_size_runs(faces, first, min(first + step, len(faces)))


def _same_size_runs(faces: list[Tensor], start: int, stop: int) -> list[list[int]]:
    """Indices start..stop-1 grouped by face size (order kept within each group)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for k in range(start, stop):
        groups.setdefault(tuple(faces[k].shape), []).append(k)
    return list(groups.values())


def _stack_if_one_size(faces: list[Tensor]) -> Tensor | list[Tensor]:
    """One (B, 3, H, W) tensor when every face has the same size, else the list."""
    if len({tuple(face.shape) for face in faces}) == 1:
        return torch.stack(faces)
    return faces


def face_seed(seed: int, index: int) -> int:
    """The seed of face `index` of a call with `seed`: independent streams per face."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> 1)


def face_generators(
    seed: int | Sequence[int] | None, count: int, device: torch.device
) -> list[torch.Generator] | None:
    """One generator per face, so a face's noise does not depend on its batch or batch size:
    from (seed, face index), or from one given seed per face. None: the global generator."""
    if seed is None:
        return None
    if not isinstance(seed, Sequence) or isinstance(seed, str):
        seeds = [face_seed(check_seed(seed), k) for k in range(count)]
    else:
        seeds = [check_seed(s, f"seed[{k}]") for k, s in enumerate(seed)]
        if len(seeds) != count:
            raise UsageError(f"got {len(seeds)} seeds for {count} faces; give one per face")
    return [torch.Generator(device).manual_seed(s) for s in seeds]


def _resolve_weights(
    sections: list[NetworkConfig], weights_dir: str | Path | None
) -> list[Path | None]:
    """Weight file of each network (None for random weights); names every missing one at once."""
    paths: list[Path | None] = []
    missing: list[str] = []
    for section in sections:
        if section.weights == "random":
            paths.append(None)
            continue
        try:
            paths.append(weights.resolve(str(section.weights), weights_dir=weights_dir))
        except weights.WeightsUnavailable as exc:
            missing.append(str(exc))
            paths.append(None)
    if missing:
        raise weights.WeightsUnavailable("\n".join(missing))
    return paths


def _compile_nets(pipeline: Pipeline, backend: str, precision: str, size: int) -> None:
    """Put the prior and the RM on `backend` for batches of (N, 3, size, size) faces."""
    x = torch.zeros(1, 3, size, size, device=pipeline.device)
    t = torch.zeros(1, device=pipeline.device)
    pipeline.prior = compile_net(pipeline.prior, backend, precision, example_inputs=(x, t))
    pipeline.rm = compile_net(pipeline.rm, backend, precision, example_inputs=(x,))


def _build(
    builder: Callable[[dict[str, Any]], nn.Module],
    section: NetworkConfig,
    path: Path | None,
    seed: int,
) -> nn.Module:
    """Build one network and load its weights, or seed its random init when weights: random."""
    try:
        if path is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return builder(dict(section.params))
        with _without_random_init():  # the file overwrites every parameter (a strict load)
            net = builder(dict(section.params))
    except ValueError as exc:
        raise UsageError(f"{section.section}.params: {exc}") from None
    return load_resolved(net, str(section.weights), path)


_INIT_LOCK = threading.Lock()


@contextmanager
def _without_random_init() -> Iterator[None]:
    """Build linear and conv layers without drawing their random init: the prior's 160 M values
    took a large part of every start, only to be overwritten by the weight file."""
    with _INIT_LOCK:
        saved = {layer: layer.reset_parameters for layer in (nn.Linear, nn.modules.conv._ConvNd)}
        try:
            for layer in saved:
                layer.reset_parameters = _skip_init  # type: ignore[method-assign]
            yield
        finally:
            for layer, method in saved.items():
                layer.reset_parameters = method  # type: ignore[method-assign]


def _skip_init(self: nn.Module) -> None:
    """A layer's reset_parameters that leaves its (about to be loaded) weights as allocated."""
