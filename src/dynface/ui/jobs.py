"""One web request from upload to downloads: check limits, restore, collect what to show.

`JobRunner.run` is free of Gradio so it can be tested and reused: it refuses too many or too
large photos and too long clips with a clear message, restores photos with
`dynface.photos.restore_photos` and clips with `dynface.video.restore_video` into a fresh
folder of its temporary work area (one job per device at a time), reports progress over faces,
frames and denoising steps with an ETA, stops at the next step when cancelled, and returns the
whole photos, before/after previews, each face, its trace and trace picture, the clips, and a
zip of it all.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from dynface.errors import DynfaceError, ResourceError, UsageError
from dynface.io import read_image, write_image
from dynface.method.fidelity import check_fidelity
from dynface.outputs import OutputFolder, PhotoFiles
from dynface.photos import PhotoResult, RestoreOptions, identity_options, restore_photos
from dynface.ui.clips import (
    CLIP_TYPES,
    ClipLimits,
    ClipOutput,
    check_clips,
    restore_clip,
    split_clips,
)
from dynface.ui.traces import stack_pictures, trace_picture
from dynface.units import DEFAULT_FIDELITY, check_seed, check_upscale
from dynface.video.io import is_video

#: Longest side of the before/after pictures sent to the browser (downloads keep full size).
PREVIEW_SIDE = 1600
#: Job folders older than this are removed when a new job starts.
KEEP_SECONDS = 3600
STEPS_HINT = 'use e.g. "fast" (the few-step setting), "ddim50" (50 evenly spaced steps) or "250"'


class JobCancelled(Exception):
    """The user pressed cancel; the job stopped at the next denoising step (or frame)."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    max_photos: int = 8
    max_megapixels: float = 40.0
    clips: ClipLimits = field(default_factory=ClipLimits)


@dataclass(frozen=True)
class MethodChoices:
    """The method settings the page offers: guidance, DGSA map and eta ("dynamic" or 0..1)."""

    guidance: str
    dgsa: str
    eta: str

    @classmethod
    def from_config(cls, method: dict[str, Any]) -> MethodChoices:
        """What a config's `method` section sets."""
        return cls(str(method["guidance"]), str(method["dgsa"]), str(method["eta"]))

    def overrides(self) -> dict[str, Any]:
        """Config overrides for `Restorer.from_config`; a bad eta is a usage error."""
        eta: str | float = self.eta
        if self.eta != "dynamic":
            try:
                eta = float(self.eta)
            except ValueError:
                raise UsageError(f'eta {self.eta!r} must be "dynamic" or a number') from None
        return {"guidance": self.guidance, "dgsa": self.dgsa, "eta": eta}


@dataclass(frozen=True)
class JobSettings:
    """The controls of the page (and of the `/restore` endpoint)."""

    aligned: bool = False
    fidelity: float = DEFAULT_FIDELITY
    steps: str | None = None
    seed: int | None = None
    upscale: float = 2.0
    only_center_face: bool = False
    device: str = "auto"
    precision: str = "fp32"
    backend: str = "auto"
    #: Background under the faces: "auto", "realesrgan" or "none" (bicubic).
    bg_upsampler: str = "auto"
    #: None: the config's method settings.
    method: MethodChoices | None = None
    #: Restore a face whose identity drifted again at higher fidelity.
    identity_guard: bool = False
    #: Photos of the person to measure identity against instead of each face's input.
    references: tuple[Path, ...] = ()


@dataclass
class JobProgress:
    """Faces and denoising steps (one network evaluation of one face) found and done so far;
    while a clip is restored, also the pass over its frames (`stage`) and the frames done."""

    faces_total: int = 0
    faces_done: int = 0
    steps_total: int = 0
    steps_done: int = 0
    started: float = field(default_factory=time.perf_counter)
    first_step: float | None = None
    stage: str = ""
    frames_total: int = 0
    frames_done: int = 0
    stage_started: float = field(default_factory=time.perf_counter)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left for the steps planned so far, at the rate measured so far."""
        if self.first_step is None or self.steps_done == 0:
            return None
        rate = self.steps_done / max(time.perf_counter() - self.first_step, 1e-6)
        return max(self.steps_total - self.steps_done, 0) / rate

    @property
    def stage_eta_seconds(self) -> float | None:
        """Seconds left in the clip's current pass, at the frame rate measured in it so far."""
        if not self.frames_done:
            return None
        rate = self.frames_done / max(time.perf_counter() - self.stage_started, 1e-6)
        return max(self.frames_total - self.frames_done, 0) / rate

    def describe(self) -> str:
        """One line for the progress bar: faces (or a clip's frames), steps and ETA."""
        if self.stage:  # a pass over a clip's frames, with that pass's ETA
            text, eta = (
                f"{self.stage} {self.frames_done}/{self.frames_total}",
                self.stage_eta_seconds,
            )
        else:
            text, eta = f"faces {self.faces_done}/{self.faces_total}", self.eta_seconds
        if self.steps_total:
            text += f" · denoising steps {self.steps_done}/{self.steps_total}"
        if eta is not None:
            text += f" · about {eta:.0f} s left" + (" in this pass" if self.stage else "")
        return text


@dataclass
class FaceOutput:
    """One restored face: crops before and after, its trace and a picture of the trace."""

    photo: str
    index: int
    cropped: Path
    restored: Path
    picture: Path
    trace: dict[str, Any] | None


@dataclass
class PhotoOutput:
    """One restored photo: the file to download and the before/after pair to show."""

    name: str
    final: Path
    before: Path
    after: Path
    faces: list[FaceOutput]
    seconds: float
    note: str = ""


@dataclass
class JobResult:
    """Everything one request produced; `failures` holds one line per photo or clip that
    failed; `trace_sheet` is None when no photo was restored."""

    photos: list[PhotoOutput]
    failures: list[str]
    seed: int
    archive: Path
    trace_sheet: Path | None
    device: str
    backends: str
    random_weights: bool
    clips: list[ClipOutput] = field(default_factory=list)


Loader = Callable[..., Any]


class JobRunner:
    """Runs restore jobs one at a time on one set of networks, loaded on first use and kept."""

    def __init__(
        self,
        config: str,
        workroot: Path,
        weights_dir: Path | None = None,
        limits: Limits | None = None,
        loader: Loader | None = None,
    ) -> None:
        self.config = config
        self.workroot = Path(workroot)
        self.weights_dir = weights_dir
        self.limits = limits or Limits()
        self._loader = loader
        self._lock = threading.Lock()
        self._cached: tuple[tuple[Any, ...], Any] | None = None
        self._detector: Any = None

    def run(
        self,
        paths: Sequence[str | Path],
        settings: JobSettings,
        report: Callable[[JobProgress, str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> JobResult:
        """Restore `paths`; raise `DynfaceError` with a message for users, `JobCancelled`.

        A job that ends in an error or a cancel leaves no folder behind (no partial outputs,
        records, locks or a clip's work folder): nobody could download from it."""
        paths, clips = check_request([Path(path) for path in paths], self.limits)
        check_settings(settings, self.config)
        check_photos(settings.references, self.limits)
        seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31)
        tracker = _Tracker(report or (lambda progress, text: None), cancel or threading.Event())
        workdir: Path | None = None
        try:
            with self._lock:
                tracker.say("loading the networks")
                restorer = self._restorer(settings)
                workdir = self._new_workdir()
                results = self._restore_photos(paths, restorer, workdir, settings, seed, tracker)
                clip_outputs = [
                    self._restore_clip(path, restorer, workdir, settings, seed, tracker)
                    for path in clips
                ]
            tracker.say("preparing the results")
            job = self._job_result(workdir, paths, results, settings.aligned, restorer, seed)
            return _with_clips(job, clip_outputs)
        except BaseException:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
            raise

    def _restore_photos(
        self,
        paths: list[Path],
        restorer: Any,
        workdir: Path,
        settings: JobSettings,
        seed: int,
        tracker: _Tracker,
    ) -> list[PhotoResult]:
        """Restore the photos of a job into `workdir` (none: nothing to do)."""
        if not paths:
            return []
        options = RestoreOptions(
            aligned=settings.aligned,
            upscale=settings.upscale,
            only_center_face=settings.only_center_face,
            seed=seed,
            save_trace=True,
            fidelity=settings.fidelity,
            bg_upsampler=settings.bg_upsampler,
            identity_guard=settings.identity_guard,
            references=settings.references,
        )
        detector = None if settings.aligned else self._face_detector()
        return restore_photos(paths, restorer, workdir, options, detector, tracker)

    def _restore_clip(
        self,
        path: Path,
        restorer: Any,
        workdir: Path,
        settings: JobSettings,
        seed: int,
        tracker: _Tracker,
    ) -> ClipOutput | str:
        """Restore one clip with the job's seed and centre-face choice, as `dynface restore`."""
        from dynface.video import VideoOptions

        identity = RestoreOptions(
            identity_guard=settings.identity_guard, references=settings.references
        )
        options = VideoOptions(
            seed=seed,
            only_center_face=settings.only_center_face,
            fidelity=settings.fidelity,
            identity=identity_options(identity),
        )
        try:
            return restore_clip(path, restorer, workdir, options, self._face_detector(), tracker)
        finally:
            tracker.clip_done()

    def _job_result(
        self,
        workdir: Path,
        paths: list[Path],
        results: list[PhotoResult],
        aligned: bool,
        restorer: Any,
        seed: int,
    ) -> JobResult:
        """The restored photos, their faces and traces, the zip (clips are added after)."""
        failures = [_failure_line(result) for result in results if result.status != "ok"]
        names = OutputFolder(workdir).names(paths)
        pictures: list[np.ndarray] = []
        photos = [
            _collect(workdir, name, result, aligned, self._total_steps(restorer), pictures)
            for name, result in zip(names, results, strict=True)
            if result.status == "ok"
        ]
        sheet = stack_pictures(pictures) / 255.0 if pictures else None
        return JobResult(
            photos,
            failures,
            seed,
            _archive(workdir),
            None if sheet is None else write_image(workdir / "pictures" / "all_faces.png", sheet),
            str(getattr(restorer, "device", "")),
            _backends_text(restorer),
            bool(getattr(restorer, "is_random", False)),
        )

    def _restorer(self, settings: JobSettings) -> Any:
        """The networks for these settings; the last ones are kept, others are built anew."""
        key = (
            settings.device,
            settings.precision,
            settings.backend,
            settings.steps,
            settings.method,
        )
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        self._cached = None
        loader = self._loader
        if loader is None:
            from dynface.api import Restorer

            loader = Restorer.from_config
        overrides = settings.method.overrides() if settings.method else {}
        if settings.steps:
            overrides["respacing"] = settings.steps
        try:
            restorer = loader(
                self.config,
                device=settings.device,
                precision=settings.precision,
                weights_dir=self.weights_dir,
                overrides=overrides or None,
                backend=settings.backend,
            )
        except DynfaceError:
            raise
        except (ValueError, RuntimeError) as exc:
            raise UsageError(str(exc)) from None
        self._cached = (key, restorer)
        return restorer

    def _face_detector(self) -> Any:
        """The face detector, loaded once."""
        if self._detector is None:
            from dynface.faces.detect import FaceDetector

            self._detector = FaceDetector()
        return self._detector

    def _total_steps(self, restorer: Any) -> int:
        config = getattr(restorer, "config", None) or {}
        return int(config.get("diffusion", {}).get("steps", 1000))

    def _new_workdir(self) -> Path:
        """A fresh folder for one job; folders of jobs older than KEEP_SECONDS are removed."""
        self.workroot.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in self.workroot.glob("job-*"):
            if now - old.stat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        workdir = self.workroot / f"job-{uuid.uuid4().hex[:12]}"
        workdir.mkdir()
        return workdir


def _with_clips(job: JobResult, clips: list[ClipOutput | str]) -> JobResult:
    """The job with its clips and their failures; an error when nothing at all was restored."""
    job.clips = [clip for clip in clips if isinstance(clip, ClipOutput)]
    job.failures += [clip for clip in clips if isinstance(clip, str)]
    if not job.photos and not job.clips:
        raise ResourceError("\n".join(job.failures) or "nothing was restored")
    return job


def check_request(paths: Sequence[Path], limits: Limits) -> tuple[list[Path], list[Path]]:
    """The photos and the clips of a request; refuse an empty one, too many photos or clips,
    too many pixels or too long a clip, before any work."""
    if not paths:
        raise UsageError(
            f"upload a photo first (JPEG, PNG, TIFF, WebP or BMP) or a clip ({CLIP_TYPES})"
        )
    photos, clips = split_clips(paths)
    check_photos(photos, limits)
    check_clips(clips, limits.clips)
    return photos, clips


def check_photos(paths: Sequence[Path], limits: Limits) -> None:
    """Refuse too many photos or too many pixels, before any work."""
    if len(paths) > limits.max_photos:
        raise UsageError(
            f"{len(paths)} photos at once is more than this server's limit of "
            f"{limits.max_photos}; send them in smaller groups"
        )
    for path in paths:
        megapixels = _megapixels(path)
        if megapixels is not None and megapixels > limits.max_megapixels:
            raise UsageError(
                f"{path.name}: {megapixels:.1f} MP is more than this server's limit of "
                f"{limits.max_megapixels:g} MP; downscale it first"
            )


def _megapixels(path: Path) -> float | None:
    """Size from the file header (no decoding); None when Pillow cannot tell (read later)."""
    try:
        with warnings.catch_warnings():  # Pillow warns above 89 MP; the limit is checked here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            width, height = image.size
    except Image.DecompressionBombError:
        return float("inf")
    except Exception:
        return None
    return width * height / 1e6


def check_settings(settings: JobSettings, config: str) -> None:
    """Reject settings the pipeline cannot use, with the same advice as the CLI."""
    from dynface.config import STEPS_PATTERN, load_config, steps_respacing
    from dynface.diffusion.schedule import respaced_timesteps

    check_upscale(settings.upscale)
    if settings.seed is not None:
        check_seed(settings.seed)
    check_fidelity(settings.fidelity)
    steps = settings.steps
    if steps is None:
        return
    if not re.fullmatch(STEPS_PATTERN, steps.strip()):
        raise UsageError(f"steps {steps!r} is not a step count; {STEPS_HINT}")
    diffusion = load_config(config)["diffusion"]
    total = int(diffusion.get("steps", 1000))
    try:
        respaced_timesteps(total, steps_respacing(steps), diffusion.get("schedule", "linear"))
    except ValueError as exc:
        raise UsageError(
            f"steps {steps!r} does not fit the {total}-step diffusion ({exc}); {STEPS_HINT}"
        ) from None


class _Tracker:
    """`dynface.photos.Progress` that reports to the page and stops the job when cancelled."""

    def __init__(self, report: Callable[[JobProgress, str], None], cancel: threading.Event):
        self.state = JobProgress()
        self._report = report
        self._cancel = cancel

    def say(self, text: str) -> None:
        """Report a phase that has no count (loading, writing)."""
        self._check()
        self._report(self.state, text)

    def _check(self) -> None:
        if self._cancel.is_set():
            where = self.state.stage and f" ({self.state.stage} {self.state.frames_done})"
            raise JobCancelled(f"cancelled after {self.state.steps_done} denoising steps{where}")

    def _update(self) -> None:
        self._check()
        self._report(self.state, self.state.describe())

    def faces_found(self, count: int) -> None:
        """More faces to restore."""
        self.state.faces_total += count
        self._update()

    def faces_done(self, count: int) -> None:
        """Faces restored (or failed)."""
        self.state.faces_done += count
        self._update()

    def steps_planned(self, count: int) -> None:
        """A batch will take `count` face-steps."""
        self.state.steps_total += count
        self._update()

    def steps_done(self, count: int) -> None:
        """Face-steps evaluated; the ETA clock starts at the first one."""
        if self.state.first_step is None:
            self.state.first_step = time.perf_counter()
        self.state.steps_done += count
        self._update()

    def start(self, stage: str, total: int) -> None:
        """A clip's pass over its `total` frames begins (`dynface.video.VideoProgress`)."""
        self.state.stage, self.state.frames_total, self.state.frames_done = stage, total, 0
        self.state.stage_started = time.perf_counter()
        self._update()

    def advance(self, count: int) -> None:
        """Frames done in the clip's current pass."""
        self.state.frames_done += count
        self._update()

    def clip_done(self) -> None:
        """The clip is finished (or failed): progress is about photos again."""
        self.state.stage, self.state.frames_total, self.state.frames_done = "", 0, 0


def _backends_text(restorer: Any) -> str:
    """ "torch" when both networks run on one runtime, else "prior X, rm Y"."""
    names = dict(getattr(restorer, "backends", None) or {})
    if len(set(names.values())) == 1:
        return next(iter(names.values()))
    return ", ".join(f"{net} {name}" for net, name in names.items()) or "torch"


def _failure_line(result: PhotoResult) -> str:
    """The CLI's message for a failed photo, naming the upload instead of the server path."""
    message = result.message.replace(f"{result.path}: ", "").replace(str(result.path), "")
    return f"{result.path.name}: {message}"


def _collect(
    workdir: Path,
    name: str,
    result: PhotoResult,
    aligned: bool,
    total_steps: int,
    pictures: list[np.ndarray],
) -> PhotoOutput:
    """Gather one photo's files, draw its trace pictures (also added to `pictures`) and make
    its before/after previews."""
    files = PhotoFiles(workdir, name)
    record = json.loads(files.trace.read_text())
    final, pairs = files.final, files.faces(result.faces_found, aligned)
    faces = []
    for k, entry in enumerate(record["faces"]):
        cropped, restored = pairs[k]
        picture = workdir / "pictures" / f"{name}_{k:02d}.png"
        face = read_image(cropped).pixels
        drawing = trace_picture(face, entry.get("method"), total_steps, f"{name} · face {k + 1}")
        pictures.append(drawing)
        write_image(picture, drawing / 255.0)
        faces.append(FaceOutput(name, k, cropped, restored, picture, entry.get("method")))
    before, after = _previews(workdir, name, result.path, final)
    return PhotoOutput(name, final, before, after, faces, result.seconds, result.message)


def _previews(workdir: Path, name: str, source: Path, final: Path) -> tuple[Path, Path]:
    """The input scaled to the output's size, and the output, both capped at PREVIEW_SIDE."""
    after = read_image(final).pixels
    height, width = after.shape[:2]
    scale = min(1.0, PREVIEW_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    before = cv2.resize(read_image(source).pixels, size, interpolation=cv2.INTER_CUBIC)
    after = cv2.resize(after, size, interpolation=cv2.INTER_AREA) if scale < 1 else after
    folder = workdir / "preview"
    return (
        write_image(folder / f"{name}_before.png", np.clip(before, 0, 1)),
        write_image(folder / f"{name}_after.png", after),
    )


def _archive(workdir: Path) -> Path:
    """A zip of the photos, faces, traces and trace pictures of one job."""
    archive = workdir / "dynface_results.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for folder in ("final", "faces", "traces", "pictures"):
            for path in sorted((workdir / folder).rglob("*")):
                if path.is_file():
                    stored = zipfile.ZIP_STORED if is_video(path) else zipfile.ZIP_DEFLATED
                    bundle.write(path, path.relative_to(workdir).as_posix(), stored)
    return archive
