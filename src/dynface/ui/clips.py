"""Video clips in a web request: refuse long ones up front, restore them, make a browser copy.

Clips go through `dynface.video.restore_video` as with `dynface restore clip.mp4` (seed,
fidelity, only the centre face and the networks from the page; upscale and the background apply
to photos only, as in the CLI). Its frame passes report through the job's progress, which raises
`JobCancelled` when the user cancels; the networks are wrapped so each denoising step reports
too, so a cancel acts at the next step, as for photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dynface.errors import DynfaceError, ResourceError, UsageError
from dynface.video.io import is_video

#: Containers browsers play as they are; other clips get an MP4 copy (streams copied) to show.
BROWSER_CONTAINERS = (".mp4", ".webm")
#: Sound codecs an MP4 can hold and browsers decode; others are left out of the browser copy.
BROWSER_AUDIO = ("aac", "mp3", "opus")
CLIP_TYPES = "MP4, MOV, MKV, AVI or WebM"


@dataclass(frozen=True)
class ClipLimits:
    """What one request may ask of the server in video."""

    max_clips: int = 1
    max_seconds: float = 30.0
    max_frames: int = 900


@dataclass
class ClipOutput:
    """One restored clip: the file to download, a copy browsers play, and what was done."""

    name: str
    final: Path
    preview: Path
    frames: int
    tracks: int
    faces_restored: int
    seconds: float


class StepProgress(Protocol):
    """What the networks report while they sample (the photo job's `Progress` calls)."""

    def steps_planned(self, count: int) -> None: ...

    def steps_done(self, count: int) -> None: ...


def split_clips(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """The photos and the clips (by extension, as `dynface restore` tells them), in order."""
    return [p for p in paths if not is_video(p)], [p for p in paths if is_video(p)]


def check_clips(clips: Sequence[Path], limits: ClipLimits) -> None:
    """Refuse too many clips, unreadable ones and long ones, before any work."""
    from dynface.video import probe
    from dynface.video.io import check_clip_size

    if len(clips) > limits.max_clips:
        raise UsageError(
            f"{len(clips)} clips at once is more than this server's limit of "
            f"{limits.max_clips}; send them one request at a time"
        )
    for path in clips:
        try:
            info = probe(path)
        except DynfaceError as exc:
            raise ResourceError(upload_message(str(exc), path)) from None
        check_clip_size(info)
        if info.duration_s > limits.max_seconds or info.frames > limits.max_frames:
            raise UsageError(
                f"{path.name}: {info.duration_s:.1f} s ({info.frames} frames) is more than this "
                f"server's limit of {limits.max_seconds:g} s or {limits.max_frames} frames; "
                "cut it shorter first"
            )


def upload_message(message: str, path: Path) -> str:
    """A message about an upload naming the file as the user sent it, not the server path."""
    text = message.replace(str(path), path.name)
    return text if text.startswith(path.name) else f"{path.name}: {text}"


def restore_clip(
    path: Path,
    restorer: Any,
    workdir: Path,
    options: Any,
    detector: Any,
    progress: Any,
) -> ClipOutput | str:
    """Restore one clip into `workdir`; a clip that fails gives its one-line message instead.

    `options` is a `VideoOptions`; `progress` a `VideoProgress` that also takes the photo
    job's step calls (`StepProgress`) and raises to cancel.
    """
    from dynface.video import restore_video

    networks = _StepReporting(restorer, progress)
    try:
        result = restore_video(path, networks, workdir, options, path.stem, detector, progress)
    except DynfaceError as exc:
        return upload_message(str(exc), path)
    if result.status != "ok":
        return upload_message(result.message, path)
    final = result.outputs[0]
    return ClipOutput(
        path.stem,
        final,
        browser_copy(final, workdir / "preview"),
        result.frames,
        result.tracks,
        result.faces_restored,
        result.seconds,
    )


class _StepReporting:
    """The networks, with every `restore_aligned` call reporting its denoising steps."""

    def __init__(self, restorer: Any, progress: StepProgress) -> None:
        self._restorer = restorer
        self._progress = progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._restorer, name)

    def restore_aligned(self, *args: Any, **kwargs: Any) -> Any:
        """`Restorer.restore_aligned`, telling the job each step planned and done."""
        kwargs.setdefault("progress", self._progress.steps_done)
        kwargs.setdefault("on_plan", self._progress.steps_planned)
        return self._restorer.restore_aligned(*args, **kwargs)


def browser_copy(video: Path, folder: Path) -> Path:
    """`video` itself when browsers play its container, else an MP4 with its streams copied
    (no re-encoding; a sound browsers cannot decode is left out of this copy only)."""
    if video.suffix.lower() in BROWSER_CONTAINERS:
        return video
    import av

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{video.stem}.mp4"
    with av.open(str(video)) as source, av.open(str(target), "w") as copy:
        inputs = [source.streams.video[0]]
        inputs += [s for s in source.streams.audio[:1] if s.codec_context.name in BROWSER_AUDIO]
        outputs = {stream.index: copy.add_stream_from_template(stream) for stream in inputs}
        for packet in source.demux(*inputs):
            if not packet.size:
                continue  # the demuxer's end-of-stream marker
            packet.stream = outputs[packet.stream.index]
            copy.mux(packet)
    return target
