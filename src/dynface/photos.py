"""Whole photos and folders: read, detect, align, restore faces in batches, paste back, write.

The library side of `dynface restore` (the web UI and API use it too). Faces of all images share
batches: images are read and their faces aligned one by one, faces queue up, every full batch goes
to `restorer.restore_aligned`, and a photo is pasted back and written as soon as all its faces are
done, so memory holds about one batch of faces and their photos. Each input ends with one
`PhotoResult` that says what happened; nothing is ever written for a photo that failed, and no
existing file is replaced unless asked.

Output layout under the output folder:
    final/NAME.png             whole photo with restored faces (background upscaled, bicubic)
    faces/cropped/NAME_KK.png  aligned input faces
    faces/restored/NAME_KK.png restored faces
    traces/NAME.json           per photo: faces, boxes, landmarks, transforms, method traces
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from dynface.faces.align import align_faces
from dynface.faces.detect import DetectedFace, FaceDetector, select_faces
from dynface.faces.paste import paste_back, upscale_image
from dynface.io import ImageReadError, LoadedImage, read_image, write_image, write_json
from dynface.method.fidelity import DEFAULT_FIDELITY, check_fidelity

#: Largest output photo (pixels) we agree to build; ~4 GB of float32 working memory.
MAX_OUTPUT_PIXELS = 300_000_000


class AlignedRestorer(Protocol):
    """What this module needs from `dynface.api.Restorer`."""

    device: Any

    def restore_aligned(
        self,
        images: torch.Tensor,
        seed: int | None = None,
        progress: Callable[[int], None] | None = None,
        on_plan: Callable[[int], None] | None = None,
        fidelity: float = DEFAULT_FIDELITY,
    ) -> Any:
        """Restore aligned faces (B, 3, S, S) in [0, 1]; result has `.images` and `.traces`.

        `on_plan(n)`: the batch will take n face-steps; `progress(k)`: k more are done.
        """
        ...


@dataclass
class RestoreOptions:
    """How `restore_photos` treats its inputs."""

    aligned: bool = False
    upscale: float = 2.0
    only_center_face: bool = False
    batch_size: int = 4
    seed: int | None = None
    save_trace: bool = False
    save_comparison: bool = False
    overwrite: bool = False
    #: Side of the aligned crops; None: the restorer config's `image_size` (512 if it has none).
    face_size: int | None = None
    #: 0 = more detail from the prior, 0.5 = the method as configured, 1 = closer to the input.
    fidelity: float = DEFAULT_FIDELITY


@dataclass
class PhotoResult:
    """The outcome for one input: status is "ok", "failed" or "skipped"."""

    path: Path
    status: str
    message: str = ""
    faces_found: int = 0
    faces_restored: int = 0
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when this input did not give a restored result."""
        return self.status == "failed"


class Progress(Protocol):
    """Receives progress: faces found (the total grows as photos are read) and faces done, and
    denoising steps (face-steps, one network evaluation of one face) planned and done."""

    def faces_found(self, count: int) -> None: ...

    def faces_done(self, count: int) -> None: ...

    def steps_planned(self, count: int) -> None: ...

    def steps_done(self, count: int) -> None: ...


class _NoProgress:
    def faces_found(self, count: int) -> None:
        """Ignore."""

    def faces_done(self, count: int) -> None:
        """Ignore."""

    def steps_planned(self, count: int) -> None:
        """Ignore."""

    def steps_done(self, count: int) -> None:
        """Ignore."""


@dataclass
class _Job:
    """One photo in flight: its pixels, faces, aligned crops and the restored crops so far."""

    index: int
    name: str
    image: LoadedImage
    faces: list[DetectedFace | None]
    crops: np.ndarray
    affines: np.ndarray | None
    started: float
    restored: list[np.ndarray | None] = field(default_factory=list)
    traces: list[Any] = field(default_factory=list)
    error: str | None = None
    pending: int = 0


def output_names(paths: Sequence[Path]) -> list[str]:
    """Distinct output names: the file stem, made unique when two inputs share it."""
    names: list[str] = []
    taken: set[str] = set()
    for path in paths:
        name = path.stem
        if name in taken:
            name = f"{path.stem}_{path.suffix.lstrip('.').lower()}"
        base, counter = name, 2
        while name in taken:
            name, counter = f"{base}_{counter}", counter + 1
        taken.add(name)
        names.append(name)
    return names


def planned_outputs(outdir: Path, name: str, faces: int, aligned: bool) -> list[Path]:
    """The image files one photo writes: final, then cropped and restored face per face."""
    paths = [outdir / "final" / f"{name}.png"]
    suffixes = [""] if aligned else [f"_{k:02d}" for k in range(faces)]
    for suffix in suffixes:
        paths.append(outdir / "faces" / "cropped" / f"{name}{suffix}.png")
        paths.append(outdir / "faces" / "restored" / f"{name}{suffix}.png")
    return paths


def trace_path(outdir: Path, name: str) -> Path:
    """Where the JSON trace of one photo goes."""
    return outdir / "traces" / f"{name}.json"


def comparison_path(outdir: Path, name: str) -> Path:
    """Where the before/after sheet of one photo's faces goes."""
    return outdir / "compare" / f"{name}.png"


def comparison_sheet(crops: np.ndarray, restored: np.ndarray, gap: int = 8) -> np.ndarray:
    """One row per face, input crop left and restored face right, on a white background."""
    count, size = crops.shape[0], crops.shape[1]
    sheet = np.ones((count * size + (count - 1) * gap, 2 * size + gap, 3), np.float32)
    for k in range(count):
        top = k * (size + gap)
        sheet[top : top + size, :size] = crops[k]
        sheet[top : top + size, size + gap :] = restored[k]
    return sheet


def restore_photos(
    paths: Iterable[Path],
    restorer: AlignedRestorer,
    outdir: Path,
    options: RestoreOptions | None = None,
    detector: FaceDetector | None = None,
    progress: Progress | None = None,
) -> list[PhotoResult]:
    """Restore every face of every photo and write the outputs; one result per input, in order."""
    options = options or RestoreOptions()
    if options.batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if options.upscale <= 0:
        raise ValueError("upscale must be positive")
    check_fidelity(options.fidelity)
    paths = list(paths)
    if options.face_size is None:
        config = getattr(restorer, "config", None) or {}
        options = replace(options, face_size=int(config.get("image_size", 512)))
    progress = progress or _NoProgress()
    detector = detector if detector is not None or options.aligned else FaceDetector()
    results: list[PhotoResult | None] = [None] * len(paths)
    queue: deque[tuple[_Job, int]] = deque()
    jobs: list[_Job] = []
    batch_index = 0

    def run_batches(flush: bool) -> None:
        nonlocal batch_index
        while len(queue) >= options.batch_size or (flush and queue):
            batch = [queue.popleft() for _ in range(min(options.batch_size, len(queue)))]
            seed = None if options.seed is None else options.seed + batch_index
            _restore_batch(restorer, batch, seed, progress, options.fidelity)
            batch_index += 1
            progress.faces_done(len(batch))
            for job in {id(job): job for job, _ in batch}.values():
                if job.pending == 0:
                    results[job.index] = _finish(job, outdir, options, restorer)
                    jobs.remove(job)

    for index, (path, name) in enumerate(zip(paths, output_names(paths), strict=True)):
        job_or_result = _prepare(index, path, name, outdir, options, detector)
        if isinstance(job_or_result, PhotoResult):
            results[index] = job_or_result
            continue
        job = job_or_result
        jobs.append(job)
        progress.faces_found(len(job.faces))
        queue.extend((job, k) for k in range(len(job.faces)))
        run_batches(flush=False)
    run_batches(flush=True)
    return [result for result in results if result is not None]


def _prepare(
    index: int,
    path: Path,
    name: str,
    outdir: Path,
    options: RestoreOptions,
    detector: FaceDetector | None,
) -> _Job | PhotoResult:
    """Read one photo, find and align its faces; or say why it cannot be restored."""
    started = time.perf_counter()
    existing = _existing(path, outdir, name, 0, options)
    if existing is not None:
        return existing
    try:
        image = read_image(path)
    except ImageReadError as exc:
        return PhotoResult(path, "failed", str(exc))
    size = int(options.face_size or 512)
    if options.aligned:
        height, width = image.pixels.shape[:2]
        if abs(height - width) > 0.02 * max(height, width):
            return PhotoResult(
                path,
                "failed",
                f"{width}x{height} is not a square aligned face crop; drop --aligned for photos",
            )
        interp = cv2.INTER_AREA if width > size else cv2.INTER_CUBIC
        crop = cv2.resize(image.pixels, (size, size), interpolation=interp)
        crops = np.clip(crop, 0, 1)[None]
        existing = _existing(path, outdir, name, 1, options)
        if existing is not None:
            return existing
        return _Job(index, name, image, [None], crops, None, started, [None], [None], None, 1)
    width, height = image.size
    out_pixels = round(width * options.upscale) * round(height * options.upscale)
    if out_pixels > MAX_OUTPUT_PIXELS:
        return PhotoResult(
            path,
            "failed",
            f"{width}x{height} px upscaled x{options.upscale:g} would exceed "
            f"{MAX_OUTPUT_PIXELS // 1_000_000} MP; use a smaller --upscale",
        )
    assert detector is not None
    faces = detector.detect(image.pixels)
    faces = select_faces(faces, image_size=image.size, only_center=options.only_center_face)
    if not faces:
        return PhotoResult(
            path,
            "failed",
            f"no face found in {width}x{height} px (nothing written; faces smaller than "
            f"{detector.min_face_size:g} px are ignored; use --aligned for face crops)",
        )
    existing = _existing(path, outdir, name, len(faces), options)
    if existing is not None:
        return existing
    crops, affines = align_faces(image.pixels, [face.landmarks for face in faces], size)
    count = len(faces)
    return _Job(
        index,
        name,
        image,
        list(faces),
        np.clip(crops, 0, 1),
        affines,
        started,
        [None] * count,
        [None] * count,
        None,
        count,
    )


def _existing(
    path: Path, outdir: Path, name: str, faces: int, options: RestoreOptions
) -> PhotoResult | None:
    """A "skipped" result when an output of this photo exists and --overwrite is off."""
    if options.overwrite:
        return None
    paths = planned_outputs(outdir, name, faces, options.aligned)
    if options.save_trace:
        paths.append(trace_path(outdir, name))
    if options.save_comparison:
        paths.append(comparison_path(outdir, name))
    for target in paths:
        if target.exists():
            return PhotoResult(
                target, "skipped", f"{target} exists; pass --overwrite to replace it"
            )
    return None


def with_alpha(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Re-attach the input's transparency, resized to the output: RGBA (H, W, 4)."""
    height, width = rgb.shape[:2]
    resized = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.concatenate([rgb, np.clip(resized, 0, 1)[..., None]], axis=2)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma replicated to three channels: a grayscale photo keeps grayscale faces."""
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)
    return np.repeat(luma[..., None], 3, axis=-1)


def _restore_batch(
    restorer: AlignedRestorer,
    batch: list[tuple[_Job, int]],
    seed: int | None,
    progress: Progress,
    fidelity: float = DEFAULT_FIDELITY,
) -> None:
    """Restore one batch of aligned faces; on error, mark their photos failed with the reason."""
    crops = np.stack([job.crops[k] for job, k in batch])
    images = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
    try:
        result = restorer.restore_aligned(
            images,
            seed=seed,
            progress=progress.steps_done,
            on_plan=progress.steps_planned,
            fidelity=fidelity,
        )
        restored = result.images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        traces = list(getattr(result, "traces", None) or [None] * len(batch))
        if restored.shape[0] != len(batch):
            raise RuntimeError(f"restorer returned {restored.shape[0]} faces for {len(batch)}")
    except (RuntimeError, ValueError) as exc:
        for job, _ in batch:
            job.error = job.error or f"restoration failed: {exc}"
            job.pending -= 1
        return
    for (job, k), face, trace in zip(batch, restored, traces, strict=True):
        if face.shape[:2] != job.crops.shape[1:3]:
            face = cv2.resize(face, job.crops.shape[1:3][::-1], interpolation=cv2.INTER_AREA)
        if job.image.was_gray:
            face = to_gray(face)
        job.restored[k] = face
        job.traces[k] = trace
        job.pending -= 1


def _finish(
    job: _Job, outdir: Path, options: RestoreOptions, restorer: AlignedRestorer
) -> PhotoResult:
    """Paste the restored faces back and write every output of one photo."""
    path, count = job.image.path, len(job.faces)
    if job.error is not None:
        return PhotoResult(path, "failed", job.error, faces_found=count)
    restored = np.stack([face for face in job.restored if face is not None])
    if options.aligned:
        final = restored[0]
    else:
        background = upscale_image(job.image.pixels, options.upscale)
        final = paste_back(background, restored, job.affines, photo_size=job.image.size)
    if job.image.alpha is not None:
        final = with_alpha(final, job.image.alpha)
    targets = planned_outputs(outdir, job.name, count, options.aligned)
    images = [final] + [image for k in range(count) for image in (job.crops[k], restored[k])]
    try:
        written = [
            write_image(target, pixels, overwrite=options.overwrite)
            for target, pixels in zip(targets, images, strict=True)
        ]
        if options.save_comparison:
            sheet = comparison_sheet(job.crops[:count], restored)
            written.append(write_image(comparison_path(outdir, job.name), sheet, options.overwrite))
        if options.save_trace:
            record = _trace(job, restorer, options)
            written.append(write_json(trace_path(outdir, job.name), record, options.overwrite))
    except OSError as exc:
        return PhotoResult(path, "failed", f"could not write outputs: {exc}", faces_found=count)
    notes = []
    if job.image.was_gray:
        notes.append("grayscale input: restored faces kept grayscale")
    if job.image.alpha is not None:
        notes.append("transparency kept")
    if job.image.bit_depth > 8:
        notes.append(f"{job.image.bit_depth}-bit input written as 8-bit PNG")
    return PhotoResult(
        path,
        "ok",
        "; ".join(notes),
        faces_found=count,
        faces_restored=count,
        seconds=time.perf_counter() - job.started,
        outputs=written,
    )


def _trace(job: _Job, restorer: AlignedRestorer, options: RestoreOptions) -> dict[str, Any]:
    """JSON-ready record of what was done to one photo."""
    faces = []
    for k, face in enumerate(job.faces):
        entry: dict[str, Any] = {"index": k, "method": job.traces[k]}
        if face is not None and job.affines is not None:
            entry.update(
                box=face.box.tolist(),
                score=face.score,
                landmarks=face.landmarks.tolist(),
                affine=job.affines[k].tolist(),
            )
        faces.append(entry)
    return {
        "input": str(job.image.path),
        "size": list(job.image.size),
        "aligned": options.aligned,
        "upscale": options.upscale,
        "seed": options.seed,
        "face_size": options.face_size,
        "device": str(getattr(restorer, "device", "")),
        "faces": faces,
    }
