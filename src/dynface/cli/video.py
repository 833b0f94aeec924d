"""The video side of `dynface restore`: clips given as inputs are restored with their sound."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dynface.cli.progress import ProgressBar
from dynface.video.io import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from dynface.photos import RestoreOptions

QUALITY_HELP = (
    "Video CRF: lower is better and larger; 18 looks lossless (H.264 0-51, VP9 for .webm 0-63)."
)


def split_videos(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Video files among the inputs (by extension), and the other inputs, in order."""
    import typer

    videos = [Path(item) for item in inputs if Path(item).suffix.lower() in VIDEO_SUFFIXES]
    others = [item for item in inputs if Path(item).suffix.lower() not in VIDEO_SUFFIXES]
    missing = [str(path) for path in videos if not path.exists()]
    if missing:
        raise typer.BadParameter(
            "no such file: " + ", ".join(missing) + "; check the path", param_hint="INPUT"
        )
    return videos, others


def probe_videos(videos: list[Path], console: Any) -> tuple[list[Path], bool]:
    """Clips that can be read; each one that cannot is reported in one line (True if any); a
    clip too large or too long for any run (`check_clip_size`) is a usage error, before any work."""
    from rich.markup import escape

    from dynface.video.io import VideoReadError, check_clip_size, probe

    readable, failed = [], False
    for path in videos:
        try:
            check_clip_size(probe(path))
            readable.append(path)
        except VideoReadError as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
            failed = True
    return readable, failed


def restore_videos(
    videos: list[Path], restorer: Any, output: Path, options: Any, console: Any
) -> bool:
    """Restore each clip with a progress bar over its frames; one line per clip; True if any
    failed."""
    from rich.console import Console
    from rich.markup import escape

    from dynface.identity.report import identity_lines
    from dynface.outputs.names import output_names
    from dynface.video import restore_video
    from dynface.video.io import VideoReadError

    failed = False
    for path, name in zip(videos, output_names(videos), strict=True):
        try:
            with _FrameProgress(Console(stderr=True), path.name) as progress:
                result = restore_video(path, restorer, output, options, name, progress=progress)
        except VideoReadError as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
            failed = True
            continue
        except KeyboardInterrupt:
            console.print(
                f"interrupted: run the same command again to resume {escape(str(path))}",
                highlight=False,
            )
            raise
        failed = failed or result.failed
        console.print(_result_line(result), soft_wrap=True, highlight=False)
        for line in identity_lines([result]):
            console.print(line, soft_wrap=True, highlight=False, markup=False)
    return failed


def _result_line(result: Any) -> str:
    from rich.markup import escape

    styles = {"ok": "green", "failed": "red", "skipped": "yellow"}
    parts = []
    if result.status == "ok":
        parts.append(
            f"{result.frames} frames, {result.tracks} face track(s), "
            f"{result.faces_restored} faces, {result.seconds:.1f} s -> {result.outputs[0]}"
        )
    if result.message:
        parts.append(result.message)
    detail = f": {'; '.join(parts)}" if parts else ""
    return f"[{styles[result.status]}]{result.status:>7}[/] {escape(str(result.path) + detail)}"


class _FrameProgress(ProgressBar):
    """One progress line per pass over a clip's frames, with an ETA."""

    def __init__(self, console: Any, label: str) -> None:
        super().__init__(console)
        self._label = label
        self._task: Any = None

    def start(self, stage: str, total: int) -> None:
        """A new pass over `total` frames."""
        self._task = self._bar.add_task(f"{self._label}: {stage}", total=total)

    def advance(self, count: int) -> None:
        """Frames done in the current pass."""
        self._bar.advance(self._task, count)


def options(videos: list[Path], photo_options: RestoreOptions, quality: int) -> Any:
    """Video options from the restore command's (no --seed: 0, so a clip restores the same);
    a --video-quality the clips' encoder does not take is a usage error."""
    from dynface.photos import identity_options
    from dynface.video import VideoOptions
    from dynface.video.io import check_quality

    for path in videos:
        check_quality(quality, path)
    seed = photo_options.seed
    return VideoOptions(
        seed=0 if seed is None else seed,
        quality=quality,
        overwrite=photo_options.overwrite,
        only_center_face=photo_options.only_center_face,
        batch_size=photo_options.batch_size,
        fidelity=photo_options.fidelity,
        identity=identity_options(photo_options) if videos else None,
    )
