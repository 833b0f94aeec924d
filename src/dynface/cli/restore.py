"""`dynface restore INPUT... -o OUTDIR`: restore every face of photos, folders and globs."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dynface.cli import video
from dynface.cli.progress import ProgressBar
from dynface.errors import UsageError
from dynface.units import DEFAULT_FIDELITY, check_seed, check_upscale

if TYPE_CHECKING:
    from dynface.photos import RestoreOptions
    from dynface.scale import Share


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Precision(StrEnum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class Backend(StrEnum):
    auto = "auto"
    torch = "torch"
    torch_compile = "torch-compile"
    onnxruntime = "onnxruntime"
    openvino = "openvino"


class Solver(StrEnum):
    ddim = "ddim"
    dpmpp2m = "dpmpp2m"
    dpm2m = "dpm2m"  # the old name: runs dpmpp2m


class BgUpsampler(StrEnum):
    auto = "auto"
    realesrgan = "realesrgan"
    none = "none"


ConfigOption = Annotated[
    str, typer.Option(help='Preset ("default", "tiny-random") or a YAML config file.')
]
WeightsDirOption = Annotated[
    Path | None, typer.Option(help="Folder with the weight files (default: the dynface cache).")
]
DeviceOption = Annotated[Device, typer.Option(help="Where to run the networks.")]
PrecisionOption = Annotated[Precision, typer.Option(help="Network precision (fp16/bf16 on GPUs).")]
StepsOption = Annotated[
    str | None,
    typer.Option(
        help='Sampling steps: "fast" (DPM-Solver++ on 14 log-SNR steps, at most 14 per face), '
        '"ddim50", "logsnr14" or "250"; default: the config\'s.'
    ),
]
BackendOption = Annotated[
    Backend,
    typer.Option(
        help="Runtime of the networks: auto = ONNX Runtime/OpenVINO on a CPU when installed "
        '(pip install "dynface\\[cpu]"; 2-3x faster, exported once and cached), else torch.'
    ),
]
SolverOption = Annotated[
    Solver | None,
    typer.Option(
        help="Sampler: ddim or dpmpp2m (DPM-Solver++(2M), second order: use with --steps "
        "logsnrN; dpm2m is its old name); default: the config's, or fast's with --steps fast."
    ),
]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
VideoQualityOption = Annotated[int, typer.Option("--video-quality", help=video.QUALITY_HELP)]
FidelityOption = Annotated[
    float,
    typer.Option(
        help="0 = more detail from the prior, 0.5 = the method as is, 1 = closer to the input."
    ),
]
InputsArgument = Annotated[
    list[str],
    typer.Argument(help="Image files, folders (their images, not recursive) and glob patterns."),
]
OutputOption = Annotated[Path, typer.Option("-o", "--output", help="Output folder.")]
AlignedOption = Annotated[
    bool,
    typer.Option("--aligned", help="Inputs are already aligned square face crops (FFHQ style)."),
]
SeedOption = Annotated[
    int | None, typer.Option(help="Random seed for reproducible results (0 to 2**63-1).")
]
UpscaleOption = Annotated[
    float,
    typer.Option(help="Scale of the whole output photo, 1 to 4 (background: see --bg-upsampler)."),
]
BgUpsamplerOption = Annotated[
    BgUpsampler,
    typer.Option(
        help="Background (all but the faces): realesrgan = Real-ESRGAN network (x2 up to "
        "--upscale 2, x4 above; get it with `dynface weights download RealESRGAN_x2plus "
        "RealESRGAN_x4plus`), none = bicubic resize, auto = realesrgan when its weights are "
        "downloaded and a GPU is there, else none."
    ),
]
OnlyCenterFaceOption = Annotated[
    bool,
    typer.Option("--only-center-face", help="Restore only the face nearest the photo's centre."),
]
SaveTraceOption = Annotated[
    bool,
    typer.Option("--save-trace", help="Write traces/NAME.json (faces, transforms, method steps)."),
]
SaveComparisonOption = Annotated[
    bool,
    typer.Option("--save-comparison", help="Write compare/NAME.png: each face before and after."),
]
ShardOption = Annotated[
    str | None,
    typer.Option(
        help='Restore share i of n independent jobs, e.g. "0/4" (Slurm job arrays, Kubernetes '
        "indexed jobs): the n jobs into one -o restore every photo once. See docs/scale.md."
    ),
]
BatchSizeOption = Annotated[
    int, typer.Option(min=1, help="Faces restored together (across photos).")
]
IdentityGuardOption = Annotated[
    bool,
    typer.Option(
        "--identity-guard",
        help="Check that every restored face is still the same person; restore a face that "
        "drifted again at fidelity 0.75, then 1.0 (needs dynface\\[identity]; docs/identity.md).",
    ),
]
ReferenceOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--reference",
        help="A photo of the person (repeatable): identity is measured against it instead of "
        "each face's input.",
    ),
]

EPILOG = (
    "Writes final/, faces/, traces/ (--save-trace) and records/ (one per photo, written last). "
    "Video clips (.mp4 .mov .mkv .avi .webm) keep their size, timing and sound: final/NAME.ext, "
    "traces/NAME.frames.jsonl and traces/NAME.tracks.json (see docs/video.md).\n\n"
    "Example: dynface restore old_photos/ scan.tif -o results/ --seed 0\n\n"
    "Quick smoke test without weights: --config tiny-random --steps ddim5 (32 px faces, "
    "restored as flat patches). "
    "See docs/restore.md."
)
STEPS_HINT = (
    "use e.g. --steps fast (the few-step setting), --steps ddim50 (50 evenly spaced steps) "
    "or --steps 250"
)
#: The steps `demo` and `restore` take on a CPU when neither --steps nor --solver is given: FAST
#: (at most 14 network evaluations a face; as close to the 1000-step DDIM chain as ddim50 on the
#: analytic model and the tiny nets: docs/method.md). GPUs keep the config's (ddim250).
CPU_STEPS = "fast"


@dataclass(frozen=True)
class ModelChoice:
    """The networks a run asks for: --config, --weights-dir, --device, --precision, --steps,
    --solver and --backend, as given."""

    config: str = "default"
    weights_dir: Path | None = None
    device: str = "auto"
    precision: str = "fp32"
    steps: str | None = None
    solver: str | None = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        """Typer's choices arrive as enum members: keep their plain text."""
        for name, value in vars(self).items():
            if isinstance(value, StrEnum):
                object.__setattr__(self, name, value.value)

    def with_cpu_steps(self, command: str) -> ModelChoice:
        """This choice with `CPU_STEPS` when neither --steps nor --solver was given and the run
        is on a CPU (`cpu_steps`: said on stderr)."""
        if self.steps is not None or self.solver is not None:
            return self
        return replace(self, steps=cpu_steps(self.config, self.device, command))


@contextlib.contextmanager
def usage_error(
    param_hint: str, errors: type[Exception] = UsageError, advice: str = ""
) -> Iterator[None]:
    """Report `errors` raised inside as a usage error of `param_hint` (exit 2), with `advice`."""
    try:
        yield
    except errors as exc:
        raise typer.BadParameter(f"{exc}{advice}", param_hint=param_hint) from None


def check_model(model: ModelChoice) -> None:
    """Reject a bad --config, --steps, --device, --precision or --backend before loading any
    network."""
    from dynface.config import ConfigError, load_restore_config
    from dynface.devices import pick_device

    with usage_error("--config", ConfigError, "; pass a preset name or the path of a YAML config"):
        loaded = load_restore_config(model.config)
    if model.steps is not None:
        _check_steps(model.steps, loaded.diffusion.steps, loaded.diffusion.schedule)
    with usage_error("--device", RuntimeError, "; use --device auto (or cpu)"):
        torch_device = pick_device(model.device)
    if model.precision == "fp16" and torch_device.type == "cpu":
        raise typer.BadParameter(
            "fp16 needs a GPU; on the CPU use --precision fp32 (or bf16)",
            param_hint="--precision",
        )
    _check_backend(model.backend, model.precision)


def _check_steps(steps: str, total: int, schedule: str = "linear") -> None:
    """--steps must be "fast" or a respacing of the config's `total`-step diffusion."""
    from dynface.config import STEPS_PATTERN, steps_respacing
    from dynface.diffusion.schedule import respaced_timesteps

    if not re.fullmatch(STEPS_PATTERN, steps.strip()):
        raise typer.BadParameter(
            f"{steps!r} is not a step count; {STEPS_HINT}", param_hint="--steps"
        )
    try:
        respaced_timesteps(total, steps_respacing(steps), schedule)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{steps!r} does not fit the {total}-step diffusion ({exc}); {STEPS_HINT}",
            param_hint="--steps",
        ) from None


def cpu_speedup(config: str) -> tuple[str, int] | None:
    """(the config's respacing, how many times more steps it takes than `CPU_STEPS`) when it
    takes at least twice as many; None otherwise, and for a config that does not load (the
    usage checks say so)."""
    from dynface.config import ConfigError, load_restore_config, steps_respacing
    from dynface.diffusion.schedule import respaced_timesteps

    try:
        diffusion = load_restore_config(config).diffusion
        configured = len(diffusion.timesteps)
    except (ConfigError, ValueError):
        return None
    cpu = steps_respacing(CPU_STEPS)
    fast = len(respaced_timesteps(diffusion.steps, cpu, diffusion.schedule))
    return (str(diffusion.respacing), round(configured / fast)) if configured >= 2 * fast else None


def cpu_steps(config: str, device: str, command: str) -> str | None:
    """`CPU_STEPS` when the run is on a CPU and the config asks for more steps; said on stderr.

    None otherwise, and when the config or device is wrong (the usage checks report those).
    """
    from rich.console import Console

    from dynface.devices import pick_device

    try:
        on_cpu = pick_device(device).type == "cpu"
    except RuntimeError:
        return None
    speedup = cpu_speedup(config)
    if not on_cpu or speedup is None:
        return None
    configured, ratio = speedup
    Console(stderr=True).print(
        f"On a CPU {command} runs --steps {CPU_STEPS}: {ratio}x fewer steps than the config's "
        f"{configured}; pass --steps {configured} for those.",
        highlight=False,
        markup=False,
    )
    return CPU_STEPS


def _check_fidelity(fidelity: float, pipeline: Any = None) -> None:
    """--fidelity in [0, 1] (and 0.5 in the difface mode, once the pipeline is known)."""
    from dynface.method.fidelity import check_fidelity

    with usage_error("--fidelity"):
        check_fidelity(fidelity)
        if pipeline is not None:
            pipeline.levers(fidelity)


def load_restorer(
    config: str,
    device: str,
    precision: str,
    weights_dir: Path | None,
    steps: str | None,
    backend: str = "auto",
    solver: str | None = None,
) -> Any:
    """Build the restorer for the CLI (tests replace this function with a fake)."""
    from dynface.api import Restorer

    overrides = {"respacing": steps, "solver": solver}
    return Restorer.from_config(
        config,
        device=device,
        precision=precision,
        weights_dir=weights_dir,
        overrides={key: value for key, value in overrides.items() if value is not None},
        backend=backend,
    )


def load_background(choice: str, restorer: Any, weights_dir: Path | None, upscale: float) -> Any:
    """The background upsampler for --bg-upsampler, on the restorer's device and precision."""
    from dynface.background import make_background_upsampler

    config = getattr(restorer, "config", None) or {}
    return make_background_upsampler(
        choice,
        config.get("background"),
        getattr(restorer, "device", "cpu"),
        getattr(restorer, "precision", "fp32"),
        weights_dir,
        scale=upscale,
        seed=int(config.get("random_weights_seed", 0)),
        backend=getattr(restorer, "backend", "torch"),
    )


def restore(
    inputs: InputsArgument,
    output: OutputOption,
    aligned: AlignedOption = False,
    config: ConfigOption = "default",
    weights_dir: WeightsDirOption = None,
    device: DeviceOption = Device.auto,
    precision: PrecisionOption = Precision.fp32,
    steps: StepsOption = None,
    solver: SolverOption = None,
    backend: BackendOption = Backend.auto,
    seed: SeedOption = None,
    upscale: UpscaleOption = 2.0,
    bg_upsampler: BgUpsamplerOption = BgUpsampler.auto,
    only_center_face: OnlyCenterFaceOption = False,
    save_trace: SaveTraceOption = False,
    save_comparison: SaveComparisonOption = False,
    overwrite: OverwriteOption = False,
    batch_size: BatchSizeOption = 4,
    shard: ShardOption = None,
    video_quality: VideoQualityOption = 18,
    fidelity: FidelityOption = DEFAULT_FIDELITY,
    identity_guard: IdentityGuardOption = False,
    reference: ReferenceOption = None,
) -> None:
    """Detect, align and restore the faces of photos and clips and paste them back.

    Exit status: 0 when every input was restored, 1 when some failed, 2 for usage errors.
    """
    from dynface.photos import RestoreOptions

    model = ModelChoice(config, weights_dir, device, precision, steps, solver, backend)
    model = model.with_cpu_steps("restore")
    options = RestoreOptions(
        aligned=aligned,
        upscale=upscale,
        only_center_face=only_center_face,
        batch_size=batch_size,
        seed=seed,
        save_trace=save_trace,
        save_comparison=save_comparison,
        overwrite=overwrite,
        bg_upsampler=bg_upsampler.value,
        fidelity=fidelity,
        identity_guard=identity_guard,
        references=tuple(reference or ()),
    )
    if run_restore(list(inputs), output, model, options, parse_shard(shard), video_quality):
        raise typer.Exit(1)


def run_restore(
    inputs: list[str],
    output: Path,
    model: ModelChoice,
    options: RestoreOptions,
    share: Share | None = None,
    video_quality: int = 18,
) -> bool:
    """Check the request, load the networks, restore the clips, then the photos; True when any
    input failed. Every usage error is raised before any network loads."""
    from rich.console import Console

    from dynface.parallel import finish
    from dynface.scale import Share

    console = Console()
    clips, photos = video.split_videos(inputs)
    clips, failed = video.probe_videos(clips, console)  # a clip too large: exit 2, no folder
    paths = check_request(photos, output, model, options)
    clip_options = video.options(clips, options, video_quality)
    if not paths and not clips:
        return True
    procs, restorer = _launch(console, model)
    try:  # every process leaves the process group, also those with no photo to restore
        share = (share or Share()).within(procs.rank, procs.world_size)
        _check_fidelity(options.fidelity, getattr(restorer, "pipeline", None))
        background = None
        if paths and not options.aligned:
            background = load_background(
                options.bg_upsampler, restorer, model.weights_dir, options.upscale
            )
        if procs.is_main:
            _announce(console, restorer, len(paths) + len(clips), model, background, share)
            failed |= video.restore_videos(clips, restorer, output, clip_options, console)
        if paths:
            failed |= _restore_photos(
                console, paths, restorer, output, options, share, procs, background
            )
    finally:
        finish()
    return failed


def check_request(
    inputs: list[str], output: Path, model: ModelChoice, options: RestoreOptions
) -> list[Path]:
    """Every usage check before any network loads; returns the input images."""
    _check_fidelity(options.fidelity)
    with usage_error("--upscale"):
        check_upscale(options.upscale)
    if options.seed is not None:
        with usage_error("--seed"):
            check_seed(options.seed)
    paths = find_inputs(inputs) if inputs else []  # none when every input is a video clip
    if options.identity_guard or options.references:
        from dynface.photos import identity_options

        with usage_error("--reference" if options.references else "--identity-guard"):
            identity_options(options)
    check_model(model)
    check_output(output, paths)
    return paths


def parse_shard(text: str | None) -> Share:
    """The `--shard i/n` share (the whole run without it); a usage error when malformed."""
    from dynface.scale import Share

    with usage_error("--shard"):
        share = Share() if text is None else Share.parse(text)
    return share


def _restore_photos(
    console: Any,
    paths: list[Path],
    restorer: Any,
    output: Path,
    options: RestoreOptions,
    share: Share,
    procs: Any,
    background: Any,
) -> bool:
    """Restore this process's share; the main process prints every process's results, in input
    order. True when any photo failed."""
    from rich.console import Console

    from dynface.photos import restore_photos

    started = time.perf_counter()
    progress = _FaceProgress(Console(stderr=True)) if procs.is_main else None
    with progress or contextlib.nullcontext():
        mine = restore_photos(
            paths, restorer, output, options, progress=progress, share=share, background=background
        )
    order = {path: k for k, path in enumerate(paths)}
    results = sorted((r for part in procs.gather(mine) for r in part), key=lambda r: order[r.path])
    if procs.is_main:
        _summary(console, results, time.perf_counter() - started, output)
    return any(result.failed for result in results)


def find_inputs(inputs: list[str]) -> list[Path]:
    """The image paths named by files, folders and globs; usage errors for what matches nothing.

    Only a file named on the command line must exist; a broken link found in a folder fails on
    its own later, as an unreadable file does.
    """
    from dynface.io import is_glob, list_images
    from dynface.outputs import printable

    named = [item for item in inputs if not is_glob(item) and not Path(item).is_dir()]
    missing = [printable(item) for item in named if not os.path.lexists(item)]
    if missing:
        raise typer.BadParameter(
            "no such file: " + ", ".join(missing) + "; check the path", param_hint="INPUT"
        )
    paths = list_images(list(inputs))
    if not paths:
        raise typer.BadParameter(
            "no image files found in "
            + ", ".join(printable(item) for item in inputs)
            + " (folders are read without their subfolders; quote a glob such as "
            "'photos/**/*.jpg' to go deeper)",
            param_hint="INPUT",
        )
    return paths


def check_output(output: Path, paths: list[Path]) -> None:
    """Usage error, before any network loads, for an -o that cannot take this run's outputs."""
    from dynface.outputs import OutputFolder, printable

    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"{printable(output)} is a file, not a folder", param_hint="-o")
    with usage_error("-o"):
        OutputFolder(output).check(paths)


def _launch(console: Any, model: ModelChoice) -> tuple[Any, Any]:
    """This process's place in a launched run (torchrun, accelerate) and its restorer."""
    from dynface.parallel import processes

    procs = processes(model.device)
    on_device = model.device if procs.world_size == 1 else str(procs.device)
    with procs.main_first():  # one process at a time fetches or checks weight files
        restorer = _load(console, model, on_device)
    return procs, restorer


def _load(console: Any, model: ModelChoice, device: str) -> Any:
    """The restorer on `device`; a bad config is a usage error, a missing weight file a failure
    (exit 1)."""
    from rich.markup import escape

    try:
        return load_restorer(
            model.config,
            device,
            model.precision,
            model.weights_dir,
            model.steps,
            backend=model.backend,
            solver=model.solver,
        )
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from exc
    except RuntimeError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from exc


def _announce(
    console: Any, restorer: Any, count: int, model: ModelChoice, background: Any, share: Share
) -> None:
    """First lines of a run: inputs, device, config, background, share; a warning for random
    weights."""
    part = f", share {share} (every process and job: its share of the photos)"
    console.print(
        f"dynface restore: {count} input(s), device {restorer.device}, "
        f"config {model.config}, precision {model.precision}{_backends_note(restorer)}"
        + _sampling_note(restorer)
        + (f", background {_describe_background(background)}" if background else "")
        + (part if share.count > 1 else ""),
        soft_wrap=True,
        highlight=False,
        markup=False,  # paths and notes are shown as they are
    )
    for tip in _cpu_tips(restorer, model):
        console.print(f"tip: on a CPU, {tip}", highlight=False, markup=False)
    if getattr(restorer, "is_random", False):
        console.print(
            "[yellow]warning:[/yellow] this config uses random weights (a smoke test): "
            "the method runs in full, but the faces come out as flat patches, not restorations"
        )


def _sampling_note(restorer: Any) -> str:
    """ ", solver dpmpp2m, steps logsnr14": what samples the faces (empty for a fake restorer)."""
    sampling = getattr(restorer, "sampling", None)
    if not isinstance(sampling, dict):
        return ""
    return f", solver {sampling['solver']}, steps {sampling['respacing']}"


def _cpu_tips(restorer: Any, model: ModelChoice) -> list[str]:
    """What would make this run faster on a CPU: fewer steps, a CPU runtime (none on a GPU)."""
    from dynface.backends import available_backends

    if str(getattr(restorer, "device", "")) != "cpu":
        return []
    tips = []
    speedup = cpu_speedup(model.config) if model.steps is None else None
    if speedup:
        tips.append(
            f"--steps {CPU_STEPS} takes {speedup[1]}x fewer steps than the config's "
            f"{speedup[0]} (DPM-Solver++, at most 14 network evaluations a face)"
        )
    if model.backend == "auto" and not {"onnxruntime", "openvino"} & set(available_backends()):
        tips.append(
            'pip install "dynface[cpu]" runs the networks on ONNX Runtime or OpenVINO '
            "(the demo took 185 s instead of 284 s on our 2-core CPU)"
        )
    return tips


def _describe_background(background: Any) -> str:
    """E.g. "realesrgan (cuda, float16)" or "bicubic (auto: no GPU; ...)"."""
    note = getattr(background, "note", None)
    if background.name == "realesrgan":
        backend = getattr(background, "backend", "torch")
        runtime = str(background.device) == "cpu" and backend in ("onnxruntime", "openvino")
        on = f", tiles on backend {backend}" if runtime else ""
        dtype = str(background.dtype).removeprefix("torch.")
        return f"realesrgan ({background.device}, {dtype}{on})"
    return f"{background.name} ({note})" if note else background.name


def _check_backend(backend: str, precision: str) -> None:
    """Reject --backend with a --precision it cannot run, before loading any network."""
    from dynface.backends import check_backend

    with usage_error("--backend"):
        check_backend(backend, precision)


def _backends_note(restorer: Any) -> str:
    """ ", backend onnxruntime fp32 (measured fastest: 1.76 s vs eager 2.50 s)": the runtime,
    precision and reason of the prior and the RM (named each when they differ); empty for a
    fake restorer."""
    choices = getattr(restorer, "backend_choices", None)
    if not choices:
        names = getattr(restorer, "backends", None) or {}
        choices = {net: (name, "", "") for net, name in names.items()}
    if not choices:
        return ""
    said = {net: _say_choice(*choice) for net, choice in choices.items()}
    if len(set(said.values())) == 1:
        return f", backend {next(iter(said.values()))}"
    return ", backends " + ", ".join(f"{net} {text}" for net, text in said.items())


def _say_choice(backend: str, precision: str, reason: str) -> str:
    """E.g. "onnxruntime fp32 (measured fastest: 1.76 s vs eager 2.50 s)"."""
    text = f"{backend} {precision}".strip()
    return f"{text} ({reason})" if reason else text


class _FaceProgress(ProgressBar):
    """Rich progress over faces (the total grows as photos are read) and over denoising steps.

    A face takes hundreds of network evaluations on a CPU, so the second line counts
    face-steps: its total grows by each batch's plan once its start steps are known, and its
    ETA covers the batches planned so far.
    """

    def __init__(self, console: Any) -> None:
        super().__init__(console)
        self._faces = self._bar.add_task("faces", total=0)
        self._steps = self._bar.add_task("denoising steps", total=0)
        self._totals = {self._faces: 0, self._steps: 0}

    def _grow(self, task: Any, count: int) -> None:
        self._totals[task] += count
        self._bar.update(task, total=self._totals[task])

    def faces_found(self, count: int) -> None:
        """More faces to restore."""
        self._grow(self._faces, count)

    def faces_done(self, count: int) -> None:
        """Faces restored (or failed)."""
        self._bar.advance(self._faces, count)

    def steps_planned(self, count: int) -> None:
        """A batch will take `count` face-steps."""
        self._grow(self._steps, count)

    def steps_done(self, count: int) -> None:
        """Face-steps evaluated."""
        self._bar.advance(self._steps, count)


def _summary(console: Any, results: list[Any], seconds: float, output: Path) -> None:
    """One line per input, then a table: images, faces found, restored, failed, time per face."""
    from rich.markup import escape
    from rich.table import Table

    from dynface.outputs import printable

    for result in results:
        console.print(_result_line(result), soft_wrap=True, highlight=False)
    found = sum(result.faces_found for result in results)
    restored = sum(result.faces_restored for result in results)
    table = Table(title=f"dynface restore -> {escape(printable(output))}")
    for column in ("images", "failed", "skipped", "faces found", "restored", "failed faces"):
        table.add_column(column, justify="right")
    table.add_column("time per face", justify="right")
    table.add_row(
        str(len(results)),
        str(sum(result.failed for result in results)),
        str(sum(result.status == "skipped" for result in results)),
        str(found),
        str(restored),
        str(found - restored),
        f"{seconds / restored:.2f} s" if restored else "-",
    )
    console.print(table)
    from dynface.identity.report import identity_lines

    for line in identity_lines(results):
        console.print(line, soft_wrap=True, highlight=False, markup=False)


def _result_line(result: Any) -> str:
    """`     ok path: 1/1 faces; 2.0 s` as Rich markup, control characters shown escaped."""
    from rich.markup import escape

    from dynface.outputs import printable

    parts = []
    if result.faces_found or result.status == "ok":
        parts.append(f"{result.faces_restored}/{result.faces_found} faces")
    if result.status == "ok":
        parts.append(f"{result.seconds:.1f} s")
    message = result.message.removeprefix(f"{result.path}: ")
    if message:
        parts.append(message)
    detail = printable(f": {'; '.join(parts)}" if parts else "")
    style = {"ok": "green", "failed": "red", "skipped": "yellow"}[result.status]
    return f"[{style}]{result.status:>7}[/] {escape(printable(result.path))}{escape(detail)}"
