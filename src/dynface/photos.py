"""Whole photos and folders: read, detect, align, restore faces in batches, paste back, write.

The library side of `dynface restore` (the web UI and API use it too), in the order of
GFPGAN's `enhance()`:

    for each photo:   claim its output set, read it (uint8), detect and align its faces
                      -> FaceBatcher.add: faces of all photos share batches of `batch_size`
    for each photo whose faces are all restored:
                      upscale the background (tiled), paste the faces back, write the set

Memory holds about one batch of faces and their photos, each photo in uint8. Each input ends
with one `PhotoResult`; nothing is written for a photo that failed, no file of the user's is
replaced unless asked, and a crash leaves a record that the next run recognises and redoes
(see `dynface.outputs.sets`). Output layout under the output folder:

    final/NAME.png             whole photo with restored faces (background: `bg_upsampler`)
    faces/cropped/NAME_KK.png  aligned input faces
    faces/restored/NAME_KK.png restored faces
    traces/NAME.json           per photo: faces, boxes, landmarks, transforms, method traces
    compare/NAME.png           per photo: each face before and after
    records/NAME.json          per photo: what was written, written last
"""

from __future__ import annotations

import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from dynface.api import face_seed
from dynface.background import BackgroundUpsampler, BicubicUpsampler, make_background_upsampler
from dynface.errors import UsageError
from dynface.faces.align import align_faces
from dynface.faces.detect import DetectedFace, FaceDetector, select_faces
from dynface.faces.paste import output_size, paste_faces
from dynface.identity.guard import IdentityOptions, check_available
from dynface.io import ImageReadError, LoadedImage, image_size, read_image
from dynface.method.fidelity import DEFAULT_FIDELITY, check_fidelity
from dynface.outcome import Outcome
from dynface.outputs import Claim, OutputFolder, PhotoFiles, printable
from dynface.outputs.manifest import append_line
from dynface.scale import Share, split
from dynface.units import check_seed, check_upscale

#: Largest output photo (pixels) we agree to build: about 0.9 GB as uint8, plus Pillow's 1.2 GB
#: copy while the PNG is encoded (see docs/restore.md for what a photo costs).
MAX_OUTPUT_PIXELS = 300_000_000


class AlignedRestorer(Protocol):
    """What this module needs from `dynface.api.Restorer`."""

    device: Any

    def restore_aligned(
        self,
        images: torch.Tensor,
        seed: int | list[int] | None = None,
        progress: Callable[[int], None] | None = None,
        on_plan: Callable[[int], None] | None = None,
        fidelity: float = DEFAULT_FIDELITY,
        identity: IdentityOptions | None = None,
    ) -> Any:
        """Restore aligned faces (B, 3, S, S) in [0, 1]; result has `.images` and `.traces`.

        `seed`: one per face. `identity`: measure (and guard) each face's identity.
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
    #: Background under the faces: "realesrgan", "none" (bicubic) or "auto" (see background.py).
    bg_upsampler: str = "auto"
    #: Measure each restored face's identity against its input (dynface.identity).
    measure_identity: bool = True
    #: Restore a face whose identity drifted again at higher fidelity (implies measuring).
    identity_guard: bool = False
    #: Photos of the person to measure identity against instead of each face's input.
    references: tuple[Path, ...] = ()


@dataclass(kw_only=True)
class PhotoResult(Outcome):
    """The outcome for one photo (see `Outcome`), with the faces it held and restored."""

    faces_found: int = 0
    faces_restored: int = 0
    #: Each restored face's identity (`identity_summary`): verdict ("same person", "not
    #: confirmed" or "not measured"), distance, kept fidelity, attempts and reason.
    identity: list[dict[str, Any]] = field(default_factory=list)


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


class PhotoUnusable(Exception):
    """This input cannot be restored; the message says why (and what to do)."""


@dataclass
class Photo:
    """One photo in flight: its pixels (uint8), faces, aligned crops and restored crops so far."""

    index: int
    image: LoadedImage
    claim: Claim
    faces: list[DetectedFace | None]
    crops: np.ndarray  # (N, S, S, 3) float32 in [0, 1]
    affines: np.ndarray | None  # (N, 2, 3) photo -> crop; None for aligned inputs
    started: float
    restored: list[np.ndarray | None] = field(init=False)
    traces: list[Any] = field(init=False)
    pending: int = field(init=False)
    error: str | None = None
    background: dict[str, Any] | None = None  # what upscaled the background, for the trace

    def __post_init__(self) -> None:
        self.restored = [None] * len(self.faces)
        self.traces = [None] * len(self.faces)
        self.pending = len(self.faces)


def restore_photos(
    paths: Iterable[str | Path] | str | Path,
    restorer: AlignedRestorer,
    outdir: str | Path,
    options: RestoreOptions | None = None,
    detector: FaceDetector | None = None,
    progress: Progress | None = None,
    background: BackgroundUpsampler | None = None,
    share: Share | None = None,
) -> list[PhotoResult]:
    """Restore every face of every photo and write the outputs; one result per input, in order.

    `background` upscales what is not a face; by default it is built from
    `options.bg_upsampler` and the restorer config's `background` section. With `share` (one of
    several jobs or processes, see `dynface.scale`) only that share of the photos is restored,
    and only its results are returned. Each result is also appended to the output folder's
    manifest. Raises UsageError (a ValueError) for bad options or an output folder that cannot
    be used.
    """
    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    options = checked_options(options or RestoreOptions(), restorer)
    folder = OutputFolder(outdir)
    folder.check(paths)
    if detector is None and not options.aligned:
        detector = FaceDetector()
    progress = progress or _NoProgress()
    if background is None and not options.aligned:
        background = default_background(restorer, options)
    identity = identity_options(options)
    batcher = FaceBatcher(
        restorer, options.batch_size, options.seed, progress, options.fidelity, identity
    )
    log = ResultLog(folder.root, folder.names(paths), share or Share(), sampling_of(restorer))
    for index in split(paths, log.share):
        claim = claim_outputs(folder, paths[index], log.names[index], options)
        photo = prepare_photo(index, paths[index], claim, options, detector)
        if isinstance(photo, PhotoResult):
            log.add(index, photo)
            continue
        progress.faces_found(len(photo.faces))
        for done in batcher.add(photo):
            log.add(done.index, finish_photo(done, options, restorer, background))
    for done in batcher.flush():
        log.add(done.index, finish_photo(done, options, restorer, background))
    return log.in_order()


class ResultLog:
    """The results of a run so far, each also appended to the output folder's manifest."""

    def __init__(
        self, root: Path, names: list[str], share: Share, sampling: dict[str, str] | None = None
    ) -> None:
        self.root = root
        self.names = names
        self.share = share
        self.sampling = sampling or {}
        self.results: dict[int, PhotoResult] = {}

    def add(self, index: int, result: PhotoResult) -> None:
        """Keep the result of input `index` and append its manifest line."""
        self.results[index] = result
        outputs = [Path(path).relative_to(self.root).as_posix() for path in result.outputs]
        append_line(
            self.root,
            {
                "input": str(result.path),
                "name": self.names[index],
                "status": result.status,
                "message": result.message,
                "faces_found": result.faces_found,
                "faces_restored": result.faces_restored,
                "identity": [face["verdict"] for face in result.identity],
                "outputs": outputs,
                "seconds": round(result.seconds, 3),
                "share": str(self.share),
                **self.sampling,
            },
        )

    def in_order(self) -> list[PhotoResult]:
        """The results, in input order."""
        return [self.results[index] for index in sorted(self.results)]


def checked_options(options: RestoreOptions, restorer: AlignedRestorer) -> RestoreOptions:
    """Options with their face size filled in; UsageError for values that cannot work."""
    if options.batch_size < 1:
        raise UsageError("batch_size must be at least 1")
    check_upscale(options.upscale)
    if options.seed is not None:
        check_seed(options.seed)
    check_fidelity(options.fidelity)
    if options.face_size is None:
        config = getattr(restorer, "config", None) or {}
        options = replace(options, face_size=int(config.get("image_size", 512)))
    return options


def claim_outputs(folder: OutputFolder, path: Path, name: str, options: RestoreOptions) -> Claim:
    """Claim the output set of one photo (see `OutputFolder.claim`) before any work on it."""
    files = PhotoFiles(folder.root, name)
    wanted = [files.final]
    if options.aligned:
        wanted += files.faces(1, aligned=True)[0]
    if options.save_trace:
        wanted.append(files.trace)
    if options.save_comparison:
        wanted.append(files.compare)
    return folder.claim(path, name, wanted, options.overwrite)


def prepare_photo(
    index: int,
    path: Path,
    claim: Claim,
    options: RestoreOptions,
    detector: FaceDetector | None,
) -> Photo | PhotoResult:
    """Read one photo, find and align its faces; or say why it is skipped or cannot be restored."""
    started = time.perf_counter()
    if claim.skip:
        return PhotoResult(path, "skipped", claim.skip)
    try:
        image = read_photo(path, options)
        if options.aligned:
            faces, crops, affines = [None], aligned_crop(image, options), None
        else:
            assert detector is not None
            faces, crops, affines = find_faces(image, detector, options)
    except (ImageReadError, PhotoUnusable) as exc:
        claim.release()
        return PhotoResult(path, "failed", str(exc))
    return Photo(index, image, claim, faces, crops, affines, started)


def read_photo(path: Path, options: RestoreOptions) -> LoadedImage:
    """The photo as uint8 RGB, after checking from its header that its output is not too big."""
    width, height = image_size(path)
    if options.aligned and abs(height - width) > 0.02 * max(height, width):
        raise PhotoUnusable(
            f"{width}x{height} is not a square aligned face crop; drop --aligned for photos"
        )
    out_w, out_h = output_size((width, height), options.upscale)
    if not options.aligned and out_w * out_h > MAX_OUTPUT_PIXELS:
        raise PhotoUnusable(
            f"{width}x{height} px upscaled x{options.upscale:g} would exceed "
            f"{MAX_OUTPUT_PIXELS // 1_000_000} MP; use a smaller --upscale"
        )
    return read_image(path, dtype=np.uint8)


def aligned_crop(image: LoadedImage, options: RestoreOptions) -> np.ndarray:
    """An aligned face crop resized to the face size: (1, S, S, 3) float32 in [0, 1]."""
    size = int(options.face_size or 512)
    width = image.size[0]
    interp = cv2.INTER_AREA if width > size else cv2.INTER_CUBIC
    crop = cv2.resize(image.pixels, (size, size), interpolation=interp)
    return (crop.astype(np.float32) / 255.0)[None]


def find_faces(
    image: LoadedImage, detector: FaceDetector, options: RestoreOptions
) -> tuple[list[DetectedFace | None], np.ndarray, np.ndarray]:
    """Detect, select and align the faces of a photo: faces, crops (N, S, S, 3), affines."""
    faces = detector.detect(image.pixels)
    faces = select_faces(faces, image_size=image.size, only_center=options.only_center_face)
    if not faces:
        width, height = image.size
        raise PhotoUnusable(
            f"no face found in {width}x{height} px (nothing written; faces smaller than "
            f"{detector.min_face_size:g} px are ignored; use --aligned for face crops)"
        )
    size = int(options.face_size or 512)
    crops, affines = align_faces(image.pixels, [face.landmarks for face in faces], size)
    return list(faces), crops.astype(np.float32) / 255.0, affines


class FaceBatcher:
    """Queues the faces of photos and restores them in batches of `size`, across photos.

    `add(photo)` and `flush()` return the photos whose faces are now all done (or failed).
    Each face gets its own seed from `seed`, its photo's output name and its index, so its
    result depends neither on the batch it shares nor on the batch size or the run's other photos.
    """

    def __init__(
        self,
        restorer: AlignedRestorer,
        size: int,
        seed: int | None,
        progress: Progress,
        fidelity: float = DEFAULT_FIDELITY,
        identity: IdentityOptions | None = None,
    ) -> None:
        self.restorer = restorer
        self.size = size
        self.seed = seed
        self.progress = progress
        self.fidelity = fidelity
        self.identity = identity
        self.queue: deque[tuple[Photo, int]] = deque()

    def add(self, photo: Photo) -> list[Photo]:
        """Queue every face of `photo`; restore the batches that are full."""
        self.queue.extend((photo, k) for k in range(len(photo.faces)))
        return self._run(flush=False)

    def flush(self) -> list[Photo]:
        """Restore what is queued, the last batch possibly short."""
        return self._run(flush=True)

    def _run(self, flush: bool) -> list[Photo]:
        done: list[Photo] = []
        while len(self.queue) >= self.size or (flush and self.queue):
            batch = [self.queue.popleft() for _ in range(min(self.size, len(self.queue)))]
            self._restore(batch, self._seeds(batch))
            self.progress.faces_done(len(batch))
            photos = {id(photo): photo for photo, _ in batch}.values()
            done.extend(photo for photo in photos if photo.pending == 0)
        return done

    def _seeds(self, batch: list[tuple[Photo, int]]) -> list[int] | None:
        """One seed per face: from the run's seed, the photo's output name and the face index."""
        if self.seed is None:
            return None
        return [
            face_seed(self.seed, zlib.crc32(f"{p.claim.files.name}/{k}".encode())) for p, k in batch
        ]

    def _restore(self, batch: list[tuple[Photo, int]], seed: list[int] | None) -> None:
        """Restore one batch; on error, mark its photos failed with the reason."""
        crops = np.stack([photo.crops[k] for photo, k in batch])
        images = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
        try:
            result = self.restorer.restore_aligned(
                images,
                seed=seed,
                progress=self.progress.steps_done,
                on_plan=self.progress.steps_planned,
                fidelity=self.fidelity,
                **({"identity": self.identity} if self.identity is not None else {}),
            )
            restored = result.images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
            traces = list(getattr(result, "traces", None) or [None] * len(batch))
            if restored.shape[0] != len(batch):
                raise RuntimeError(f"restorer returned {restored.shape[0]} faces for {len(batch)}")
        except (RuntimeError, ValueError) as exc:
            restored, traces = [None] * len(batch), [None] * len(batch)
            for photo, _ in batch:
                photo.error = photo.error or f"restoration failed: {exc}"
        for (photo, k), face, trace in zip(batch, restored, traces, strict=True):
            if face is not None:
                photo.restored[k] = fit_face(face, photo)
                photo.traces[k] = trace
            photo.pending -= 1


def fit_face(face: np.ndarray, photo: Photo) -> np.ndarray:
    """A restored face at the crop's size, gray again when the photo is black and white."""
    if face.shape[:2] != photo.crops.shape[1:3]:
        face = cv2.resize(face, photo.crops.shape[1:3][::-1], interpolation=cv2.INTER_AREA)
    return to_gray(face) if photo.image.was_gray else face


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma replicated to three channels: a grayscale photo keeps grayscale faces."""
    if rgb.dtype == np.uint8:
        return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=-1)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)
    return np.repeat(luma[..., None], 3, axis=-1)


def default_background(restorer: AlignedRestorer, options: RestoreOptions) -> BackgroundUpsampler:
    """The upsampler `options.bg_upsampler` names, on the restorer's device and precision."""
    config = getattr(restorer, "config", None) or {}
    return make_background_upsampler(
        options.bg_upsampler,
        config.get("background"),
        getattr(restorer, "device", "cpu"),
        getattr(restorer, "precision", "fp32"),
        scale=options.upscale,
        seed=int(config.get("random_weights_seed", 0)),
        backend=getattr(restorer, "backend", "torch"),
    )


def sampling_of(restorer: Any) -> dict[str, str]:
    """{"solver": ..., "respacing": ...} the restorer samples with (empty for one that does not
    say), for the photo records and the manifest."""
    sampling = getattr(restorer, "sampling", None)
    return dict(sampling) if isinstance(sampling, dict) else {}


def finish_photo(
    photo: Photo,
    options: RestoreOptions,
    restorer: AlignedRestorer,
    background: BackgroundUpsampler | None = None,
) -> PhotoResult:
    """Paste the restored faces back and write the photo's output set; release its claim."""
    path, count = photo.image.path, len(photo.faces)
    try:
        if photo.error is not None:
            return PhotoResult(path, "failed", photo.error, faces_found=count)
        restored = np.stack([face for face in photo.restored if face is not None])
        images, data = output_set(photo, restored, options, restorer, background)
        seconds = round(time.perf_counter() - photo.started, 3)
        info: dict[str, Any] = {"faces": count, "seconds": seconds, **sampling_of(restorer)}
        identity = identity_summary(photo.traces)
        if identity:
            info["identity"] = identity
        carried = {photo.claim.files.final: photo.image.metadata}  # EXIF, ICC profile
        written = photo.claim.commit(images, data, info, carried)
    except OSError as exc:
        message = f"could not write outputs: {printable(exc)}"
        return PhotoResult(path, "failed", message, faces_found=count)
    finally:
        photo.claim.release()
    return PhotoResult(
        path,
        "ok",
        "; ".join(notes(photo.image)),
        faces_found=count,
        faces_restored=count,
        seconds=time.perf_counter() - photo.started,
        outputs=written,
        identity=identity,
    )


def identity_options(options: RestoreOptions) -> IdentityOptions | None:
    """What `restore_aligned` is asked about identity (None: not measured); reads the
    reference photos, a UsageError for one that cannot be read."""
    if not (options.measure_identity or options.identity_guard or options.references):
        return None
    if options.identity_guard or options.references:
        check_available()
    references = []
    for path in options.references:
        try:
            references.append(read_image(path, dtype=np.uint8).pixels)
        except ImageReadError as exc:
            raise UsageError(f"reference photo: {exc}") from None
    identity = IdentityOptions(guard=options.identity_guard, references=tuple(references))
    _ = identity.meter  # a reference photo without a face is refused before any work
    return identity


def identity_summary(traces: list[Any]) -> list[dict[str, Any]]:
    """Per face: the identity verdict, distance, kept fidelity and attempts (for the record)."""
    summary = []
    for k, trace in enumerate(traces):
        entry = (trace or {}).get("identity")
        if entry is None:
            continue
        summary.append(
            {
                "name": f"face {k}",
                "verdict": entry["verdict"],
                "distance": entry["distance"],
                "fidelity": entry["attempts"][-1]["fidelity"],
                "attempts": len(entry["attempts"]),
                "reason": entry["reason"],
            }
        )
    return summary


def output_set(
    photo: Photo,
    restored: np.ndarray,
    options: RestoreOptions,
    restorer: AlignedRestorer,
    background: BackgroundUpsampler | None = None,
) -> tuple[dict[Path, np.ndarray], dict[Path, Any]]:
    """Every file of one photo: images (path -> pixels) and JSON files (path -> data)."""
    files: PhotoFiles = photo.claim.files
    final = compose(photo, restored, options, background)
    images: dict[Path, np.ndarray] = {files.final: final}
    pairs = files.faces(len(photo.faces), options.aligned)
    for (cropped, restored_path), crop, face in zip(pairs, photo.crops, restored, strict=True):
        images[cropped] = crop
        images[restored_path] = face
    if options.save_comparison:
        images[files.compare] = comparison_sheet(photo.crops, restored)
    data = {files.trace: trace_record(photo, restorer, options)} if options.save_trace else {}
    return images, data


def compose(
    photo: Photo,
    restored: np.ndarray,
    options: RestoreOptions,
    background: BackgroundUpsampler | None = None,
) -> np.ndarray:
    """The final image: the upscaled photo with the faces pasted back (uint8), alpha re-attached.

    `background` upscales the photo (bicubic when None); what ran is kept for the trace.
    """
    if options.aligned:
        return restored[0]
    final, report = (background or BicubicUpsampler()).upscale(photo.image.pixels, options.upscale)
    photo.background = report.as_dict()
    if photo.image.was_gray and background is not None and background.name != "bicubic":
        final = to_gray(final)  # a network may tint a gray photo
    paste_faces(final, restored, photo.affines, photo_size=photo.image.size)
    if photo.image.alpha is not None:
        final = with_alpha(final, photo.image.alpha)
    return final


def with_alpha(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Re-attach the input's transparency (same dtype as `rgb`), resized to the output: RGBA."""
    height, width = rgb.shape[:2]
    resized = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    if rgb.dtype == np.uint8 and resized.dtype != np.uint8:
        resized = np.round(np.clip(resized, 0, 1) * 255).astype(np.uint8)
    return np.concatenate([rgb, resized[..., None].astype(rgb.dtype)], axis=2)


def comparison_sheet(crops: np.ndarray, restored: np.ndarray, gap: int = 8) -> np.ndarray:
    """One row per face, input crop left and restored face right, on a white background."""
    count, size = crops.shape[0], crops.shape[1]
    sheet = np.ones((count * size + (count - 1) * gap, 2 * size + gap, 3), np.float32)
    for k in range(count):
        top = k * (size + gap)
        sheet[top : top + size, :size] = crops[k]
        sheet[top : top + size, size + gap :] = restored[k]
    return sheet


def notes(image: LoadedImage) -> list[str]:
    """What the summary line says about how the input was treated."""
    found = []
    if image.was_gray:
        found.append("grayscale input: restored faces kept grayscale")
    if image.alpha is not None:
        found.append("transparency kept")
    if image.bit_depth > 8:
        found.append(f"{image.bit_depth}-bit input written as 8-bit PNG")
    return found + list(image.metadata.lost)


def trace_record(photo: Photo, restorer: AlignedRestorer, options: RestoreOptions) -> dict:
    """JSON-ready record of what was done to one photo."""
    faces = []
    for k, face in enumerate(photo.faces):
        entry: dict[str, Any] = {"index": k, "method": photo.traces[k]}
        if face is not None and photo.affines is not None:
            entry.update(
                box=face.box.tolist(),
                score=face.score,
                landmarks=face.landmarks.tolist(),
                affine=photo.affines[k].tolist(),
            )
        faces.append(entry)
    return {
        "input": str(photo.image.path),
        "size": list(photo.image.size),
        "aligned": options.aligned,
        "upscale": options.upscale,
        "seed": options.seed,
        "face_size": options.face_size,
        "device": str(getattr(restorer, "device", "")),
        "background": photo.background,
        "faces": faces,
    }
