"""Restore the faces of a video clip: analyse, restore, write; each pass streams the frames.

1. analyse: decode each frame, detect faces, extend the face tracks, estimate each face's blur
   level s* on its aligned crop; then plan every track (one seed, smoothed s* and landmarks,
   gaps filled; see `consistency`). The plan is checkpointed.
2. restore: decode again, align each planned face with its smoothed landmarks and restore it with
   its track's seed and s*; each frame's restored faces are checkpointed as they are done.
3. write: decode again, paste the restored faces back (feathered masks of the smoothed
   transforms) and encode; audio packets are copied. Traces: one JSON line per face and frame,
   and a per-track summary.
Faces are found and restored on the upright frame (the clip's display rotation applied; see
`orientation`), so landmarks, boxes and traces are in upright coordinates; each written frame is
turned back to the stored orientation and the output keeps the input's display matrix.
Memory holds one frame and one face at a time plus a few numbers per face and frame. An
interrupted run, started again with the same settings, resumes after the last finished frame.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from dynface.faces.align import align_faces, similarity_transform, template
from dynface.faces.detect import FaceDetector, select_faces
from dynface.faces.paste import paste_back
from dynface.identity.guard import IdentityOptions
from dynface.io import write_json
from dynface.outcome import Outcome
from dynface.units import DEFAULT_FIDELITY
from dynface.video import identity as track_identity
from dynface.video.checkpoint import WorkFolder
from dynface.video.consistency import ConsistencySettings, FacePlan, plan_faces, track_summary
from dynface.video.io import (
    DEFAULT_QUALITY,
    DecodedFrame,
    VideoInfo,
    VideoReadError,
    check_quality,
    probe,
    read_frames,
    rewrite_video,
    temporary_path,
)
from dynface.video.orientation import orientation_of
from dynface.video.tracking import FaceTracker, Observation


@dataclass
class VideoOptions:
    """How `restore_video` treats a clip."""

    seed: int = 0
    quality: int = DEFAULT_QUALITY
    overwrite: bool = False
    only_center_face: bool = False
    #: Faces restored together (and per blur-estimation batch in the analysis pass).
    batch_size: int = 4
    #: Side of the aligned crops; None: the restorer config's `image_size` (512 if it has none).
    face_size: int | None = None
    consistency: ConsistencySettings = field(default_factory=ConsistencySettings)
    #: 0 = more detail from the prior, 0.5 = the method as configured, 1 = closer to the input.
    fidelity: float = DEFAULT_FIDELITY
    #: Keep OUT/.dynface-work/NAME after success (restored face crops, plan).
    keep_work: bool = False
    #: Measure (and with `guard`, protect) identity per track (see dynface.video.identity).
    identity: IdentityOptions | None = None


@dataclass(kw_only=True)
class VideoResult(Outcome):
    """The outcome for one clip (see `Outcome`), with its frames, face tracks and faces restored."""

    frames: int = 0
    tracks: int = 0
    faces_restored: int = 0
    #: Each track's identity: "name" (track N), verdict, distance, kept fidelity, attempts.
    identity: list[dict[str, Any]] = field(default_factory=list)


class VideoProgress(Protocol):
    """Receives progress: a pass starts over `total` frames, then frames are done one by one."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class _NoProgress:
    def start(self, stage: str, total: int) -> None:
        """Ignore."""

    def advance(self, count: int) -> None:
        """Ignore."""


def video_outputs(outdir: Path, name: str, suffix: str) -> list[Path]:
    """The files a clip writes: the video, the per-face traces, the per-track summary."""
    return [
        outdir / "final" / f"{name}{suffix.lower()}",
        outdir / "traces" / f"{name}.frames.jsonl",
        outdir / "traces" / f"{name}.tracks.json",
    ]


def restore_video(
    path: Path,
    restorer: Any,
    outdir: Path,
    options: VideoOptions | None = None,
    name: str | None = None,
    detector: FaceDetector | None = None,
    progress: VideoProgress | None = None,
) -> VideoResult:
    """Restore every face of a clip and write OUT/final/NAME.ext with the input's sound.

    A clip that cannot be read raises `VideoReadError` before any output is written.
    """
    path = Path(path)
    name = name or path.stem
    options = _with_face_size(options or VideoOptions(), restorer)
    targets = video_outputs(outdir, name, path.suffix)
    skip = _skip_reason(targets, options)
    if skip:
        return VideoResult(path, "skipped", skip)
    started = time.perf_counter()
    info = probe(path)
    progress = progress or _NoProgress()
    work = WorkFolder(outdir, name)
    resumed = work.open(_run_key(path, restorer, options))
    if not work.has_plan():
        plans = _analyse(path, info, restorer, options, detector or FaceDetector(), progress)
        work.save_plan(info.frames, plans)
    if not any(work.read_plan()):
        work.remove()
        return _no_face_found(path, info)
    done_before = work.restored_frames() if resumed else 0
    decisions = _identity_decisions(path, info, restorer, work, options, progress)
    _restore_faces(path, info, restorer, work, options, progress, decisions)
    outputs, summary = _write_outputs(path, info, work, targets, options, progress, decisions)
    if not options.keep_work:
        work.remove()
    seconds = time.perf_counter() - started
    return _restored(path, info, summary, outputs, seconds, done_before)


def _identity_decisions(
    path: Path,
    info: VideoInfo,
    restorer: Any,
    work: WorkFolder,
    options: VideoOptions,
    progress: VideoProgress,
) -> dict[int, dict[str, Any]]:
    """Each track's kept fidelity and identity entry (none without identity options), decided
    once on its first face and kept in the work folder for a resumed run."""
    if options.identity is None:
        return {}
    decisions = track_identity.load(work.root)
    if decisions is None:
        firsts = track_identity.first_faces(work.read_plan())
        progress.start("checking identity", len(firsts))
        frames = _upright_frames(path, info)
        size = int(options.face_size or 512)
        decisions = track_identity.decide_tracks(
            frames,
            firsts,
            restorer,
            options.identity,
            options.fidelity,
            lambda frame, plans: _to_tensor(_aligned(frame, plans, size)),
        )
        track_identity.save(work.root, decisions)
        progress.advance(len(firsts))
    return decisions


def _with_face_size(options: VideoOptions, restorer: Any) -> VideoOptions:
    """The options with `face_size` set: the restorer config's `image_size` when not given."""
    config = getattr(restorer, "config", None) or {}
    return replace(options, face_size=options.face_size or int(config.get("image_size", 512)))


def _skip_reason(targets: list[Path], options: VideoOptions) -> str:
    """Why the clip is skipped ("" when it is not); a quality out of range is refused first."""
    check_quality(options.quality, targets[0])
    existing = [target for target in targets if target.exists()]
    if existing and not options.overwrite:
        return f"{existing[0]} exists; pass --overwrite to replace it"
    return ""


def _no_face_found(path: Path, info: VideoInfo) -> VideoResult:
    message = f"no face found in any of its {info.frames} frames (nothing written)"
    return VideoResult(path, "failed", message, frames=info.frames)


def _restored(
    path: Path,
    info: VideoInfo,
    summary: list[dict[str, Any]],
    outputs: list[Path],
    seconds: float,
    done_before: int,
) -> VideoResult:
    """The result of a written clip; a resumed run says how many frames it found done."""
    note = f"resumed: {done_before} frames were already restored" if done_before else ""
    return VideoResult(
        path,
        "ok",
        note,
        frames=info.frames,
        tracks=len(summary),
        faces_restored=sum(track["frames"] for track in summary),
        seconds=seconds,
        outputs=outputs,
        identity=[_track_identity(track) for track in summary if "identity" in track],
    )


def _track_identity(track: dict[str, Any]) -> dict[str, Any]:
    """One track's identity as the summary reports it (as `photos.identity_summary` a face's)."""
    identity = track["identity"]
    return {
        "name": f"track {track['track']}",
        "verdict": identity["verdict"],
        "distance": identity["distance"],
        "fidelity": track["fidelity"],
        "attempts": len(identity["attempts"]),
        "reason": identity["reason"],
    }


def _run_key(path: Path, restorer: Any, options: VideoOptions) -> dict[str, Any]:
    """What makes a run's checkpoints reusable: the input file, the restorer, the settings."""
    stat = path.stat()
    config = json.dumps(getattr(restorer, "config", None), sort_keys=True, default=str)
    return {
        "input": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "config_sha256": hashlib.sha256(config.encode()).hexdigest(),
        "precision": str(getattr(restorer, "precision", "")),
        "seed": options.seed,
        "face_size": options.face_size,
        "only_center_face": options.only_center_face,
        "consistency": asdict(options.consistency),
        "fidelity": options.fidelity,
        "identity": _identity_key(options.identity),
    }


def _identity_key(identity: IdentityOptions | None) -> dict[str, Any] | None:
    """What of the identity options changes the restored faces: the guard and the references."""
    if identity is None:
        return None
    digests = [
        hashlib.sha256(np.ascontiguousarray(r).tobytes()).hexdigest() for r in identity.references
    ]
    return {"guard": identity.guard, "references": digests}


def _analyse(
    path: Path,
    info: VideoInfo,
    restorer: Any,
    options: VideoOptions,
    detector: FaceDetector,
    progress: VideoProgress,
) -> dict[int, list[FacePlan]]:
    """Pass 1: detect and track faces, estimate each face's s*, and plan every track."""
    tracker = FaceTracker()
    pending: list[tuple[Observation, np.ndarray]] = []
    decoded = 0
    progress.start("analysing frames", info.frames)
    for frame in _upright_frames(path, info):
        faces = detector.detect(frame.rgb)
        faces = select_faces(
            faces, image_size=_upright_size(info), only_center=options.only_center_face
        )
        observations = tracker.update(frame.index, faces)
        if observations:
            crops, _ = align_faces(
                _to_float(frame.rgb),
                [o.landmarks for o in observations],
                int(options.face_size or 512),
            )
            pending.extend(zip(observations, crops, strict=True))
        if len(pending) >= options.batch_size:
            _estimate_blur(restorer, pending)
            pending = []
        decoded += 1
        progress.advance(1)
    _estimate_blur(restorer, pending)
    if decoded != info.frames:
        raise VideoReadError(f"{path} is damaged: {decoded} of its {info.frames} frames decode")
    return plan_faces(tracker.tracks, replace(options.consistency, seed=options.seed))


def _estimate_blur(restorer: Any, pending: list[tuple[Observation, np.ndarray]]) -> None:
    """Fill in s* of the queued faces (left None when the restorer's mode has no s*)."""
    if not pending or not hasattr(restorer, "estimate_blur"):
        return
    crops = np.stack([crop for _, crop in pending])
    levels = restorer.estimate_blur(_to_tensor(crops))
    if levels is None:
        return
    for (observation, _), level in zip(pending, levels.tolist(), strict=True):
        observation.s_star = float(level)


def _restore_faces(
    path: Path,
    info: VideoInfo,
    restorer: Any,
    work: WorkFolder,
    options: VideoOptions,
    progress: VideoProgress,
    decisions: dict[int, dict[str, Any]],
) -> None:
    """Pass 2: restore the planned faces of every frame not yet checkpointed.

    Whole frames are queued until they hold `batch_size` faces, which are restored together;
    each face draws its noise from its own track's seed, so its batch does not matter.
    """
    progress.start("restoring frames", info.frames)
    queue: list[tuple[int, list[FacePlan], np.ndarray]] = []
    for frame, faces in zip(_upright_frames(path, info), work.read_plan(), strict=False):
        if not faces or work.has_faces(frame.index):
            progress.advance(1)
            continue
        queue.append((frame.index, faces, _aligned(frame, faces, int(options.face_size or 512))))
        if sum(len(faces) for _, faces, _ in queue) >= options.batch_size:
            _restore_queue(restorer, work, queue, progress, options.fidelity, decisions)
            queue = []
    _restore_queue(restorer, work, queue, progress, options.fidelity, decisions)


def _restore_queue(
    restorer: Any,
    work: WorkFolder,
    queue: list[tuple[int, list[FacePlan], np.ndarray]],
    progress: VideoProgress,
    fidelity: float,
    decisions: dict[int, dict[str, Any]],
) -> None:
    """Restore the faces of the queued frames (each with its track's seed and smoothed s*, at
    its track's fidelity: one call per fidelity), then checkpoint frame by frame."""
    if not queue:
        return
    plans = [plan for _, faces, _ in queue for plan in faces]
    crops = np.concatenate([crops for _, _, crops in queue])
    levels = [decisions.get(plan.track, {}).get("fidelity", fidelity) for plan in plans]
    images: list[np.ndarray] = [np.empty(0)] * len(plans)
    traces: list[Any] = [None] * len(plans)
    for level in sorted(set(levels)):
        rows = [k for k, value in enumerate(levels) if value == level]
        result = _restore_rows(restorer, crops[rows], [plans[k] for k in rows], level)
        for k, image, trace in zip(rows, result.images, result.traces, strict=True):
            images[k] = _to_uint8(image.permute(1, 2, 0).numpy())
            identity = decisions.get(plans[k].track, {}).get("identity")
            traces[k] = trace if identity is None else {**trace, "identity": identity}
    first = 0
    for index, faces, _ in queue:
        done = slice(first, first + len(faces))
        work.save_faces(index, np.stack(images[done]), traces[done])
        first += len(faces)
        progress.advance(1)


def _restore_rows(restorer: Any, crops: np.ndarray, plans: list[FacePlan], fidelity: float) -> Any:
    """Restore aligned crops with their plans' seeds and smoothed s* at one fidelity."""
    s_star = None
    if all(plan.s_star is not None for plan in plans):
        s_star = torch.tensor([plan.s_star for plan in plans])
    return restorer.restore_aligned(
        _to_tensor(crops), seed=[plan.seed for plan in plans], s_star=s_star, fidelity=fidelity
    )


def _write_outputs(
    path: Path,
    info: VideoInfo,
    work: WorkFolder,
    targets: list[Path],
    options: VideoOptions,
    progress: VideoProgress,
    decisions: dict[int, dict[str, Any]],
) -> tuple[list[Path], list[dict[str, Any]]]:
    """Pass 3: paste, encode (to a temporary name, then renamed), and write the traces."""
    video_target, frames_target, tracks_target = targets
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
    partial_video, partial_traces = temporary_path(video_target), temporary_path(frames_target)
    tracks: dict[int, tuple[list[FacePlan], list[int]]] = {}
    plan_iter = work.read_plan()
    progress.start("writing frames", info.frames)
    try:
        with partial_traces.open("w") as trace_file:
            edit = _paste_frame(info, work, plan_iter, trace_file, tracks, progress)
            rewrite_video(path, partial_video, info, edit, options.quality)
        partial_video.replace(video_target)
        partial_traces.replace(frames_target)
    finally:
        partial_video.unlink(missing_ok=True)
        partial_traces.unlink(missing_ok=True)
    summary = [
        {**track_summary(t, plans, method), **decisions.get(t, {})}
        for t, (plans, method) in sorted(tracks.items())
    ]
    record = {
        "input": str(path),
        **_info_json(info),
        "seed": options.seed,
        "quality": options.quality,
        "consistency": asdict(options.consistency),
        "tracks": summary,
    }
    write_json(tracks_target, record, overwrite=True)
    return targets, summary


def _paste_frame(
    info: VideoInfo,
    work: WorkFolder,
    plan_iter: Any,
    trace_file: Any,
    tracks: dict[int, tuple[list[FacePlan], list[int]]],
    progress: VideoProgress,
) -> Callable[[DecodedFrame], np.ndarray]:
    """The per-frame edit of pass 3: paste the checkpointed faces on the upright frame, turn it
    back to the stored orientation, and log one trace line per face."""
    orientation = orientation_of(info.display_matrix)

    def edit(frame: DecodedFrame) -> np.ndarray:
        faces = next(plan_iter, [])
        progress.advance(1)
        if not faces:
            return frame.rgb
        restored, method = work.load_faces(frame.index)
        size = restored.shape[1]
        affines = similarity_transform(np.stack([p.landmarks for p in faces]), template(size)[None])
        pasted = paste_back(  # uint8 in and out: only the faces' regions are ever float
            orientation.upright(frame.rgb),
            restored.astype(np.float32) / 255,
            affines,
            photo_size=_upright_size(info),
        )
        seconds = None if frame.pts is None else round(float(frame.pts * info.time_base), 6)
        for plan, trace in zip(faces, method, strict=True):
            line = {**plan.to_json(), "time_s": seconds, "method": trace}
            trace_file.write(json.dumps(line) + "\n")
            plans, starts = tracks.setdefault(plan.track, ([], []))
            plans.append(plan)
            if trace and "start_t" in trace:
                starts.append(int(trace["start_t"]))
        return orientation.stored(pasted)

    return edit


def _upright_frames(path: Path, info: VideoInfo) -> Iterator[DecodedFrame]:
    """The clip's decoded frames turned upright (unchanged when it has no display rotation)."""
    orientation = orientation_of(info.display_matrix)
    for frame in read_frames(path):
        yield replace(frame, rgb=orientation.upright(frame.rgb))


def _upright_size(info: VideoInfo) -> tuple[int, int]:
    """(width, height) of the upright frame, where faces are found and pasted."""
    return orientation_of(info.display_matrix).upright_size(info.width, info.height)


def _info_json(info: VideoInfo) -> dict[str, Any]:
    """The clip's facts for the summary; face boxes and landmarks are in the upright frame."""
    orientation = orientation_of(info.display_matrix)
    return {
        "size": [info.width, info.height],
        "display_rotation": info.rotation,
        "display_mirrored": orientation.mirrored,
        "upright_size": list(_upright_size(info)),
        "face_coordinates": "upright frame (display rotation applied)",
        "frames": info.frames,
        "frame_rate": str(info.frame_rate),
        "time_base": str(info.time_base),
        "duration_s": round(info.duration_s, 6),
        "audio_streams": info.audio_streams,
    }


def _aligned(frame: DecodedFrame, plans: list[FacePlan], size: int) -> np.ndarray:
    """The planned faces of an upright frame, aligned: (N, S, S, 3) float32."""
    crops, _ = align_faces(_to_float(frame.rgb), [p.landmarks for p in plans], size)
    return crops


def _to_float(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) / 255.0


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def _to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) float crops to a (N, 3, S, S) tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(np.clip(crops, 0, 1).transpose(0, 3, 1, 2)))
