"""Video files in and out with PyAV (FFmpeg inside the wheel): frames streamed one at a time.

`probe` reads a clip's facts and counts its video packets (decoding only the first frame, for its
display matrix), so a clip that is cut short or unreadable fails before any work. `read_frames`
decodes RGB frames, as stored, with their timestamps. `VideoWriter` encodes frames with the
input's time base, timestamps and display matrix (so frame count, frame rate, duration and the
rotation players apply are kept) and copies the audio packets of the input unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from dynface.errors import ResourceError, UsageError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
#: Encoder per output container: H.264 (libx264) everywhere WebM does not forbid it, VP9 there.
ENCODERS = {".webm": "libvpx-vp9"}
DEFAULT_ENCODER = "libx264"
#: Constant rate factor: x264 takes 0 (lossless) to 51, VP9 0 to 63; 18 looks lossless on x264.
DEFAULT_QUALITY = 18
QUALITY_RANGE = {"libx264": (0, 51), "libvpx-vp9": (0, 63)}
#: Largest clip frame restored: 8K UHD (7680x4320, 33 MP, either way round). A frame is held
#: several times while its faces are found and pasted back (as uint8 and float32); see
#: docs/video.md for the memory this takes.
MAX_CLIP_PIXELS = 7680 * 4320
#: Longest clip restored (frames; about 9 hours at 30 fps): memory does not grow with length,
#: but the work folder and traces on disk do.
MAX_CLIP_FRAMES = 1_000_000
#: Frames the encoder and the decoder may hold at once, counted in 1080p frames: a clip with
#: larger frames gets a shorter encoder lookahead and fewer codec threads, so their memory stays
#: about what 40 frames of 1080p take (clips up to 1080p keep the encoders' defaults).
FRAMES_IN_FLIGHT_PIXELS = 40 * 1920 * 1080
#: An estimated frame count (from the duration, no exact count in the file) may be this far off.
_ESTIMATE_SLACK = 0.02


class VideoReadError(ResourceError):
    """A clip that cannot be decoded to the end; the message says which and why."""


class VideoWriteError(ResourceError):
    """The output clip could not be encoded or written."""


@dataclass(frozen=True)
class VideoInfo:
    """What a clip holds: stored size, rate, time base, frame count (packets), duration, audio,
    and the display rotation players apply (`rotation`, degrees counter-clockwise as PyAV's
    `VideoFrame.rotation`; `display_matrix`, FFmpeg's 9 int32, None when the clip has none)."""

    path: Path
    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    frames: int
    duration_s: float
    codec: str
    audio_streams: int
    rotation: int = 0
    display_matrix: tuple[int, ...] | None = None


def is_video(path: str | Path) -> bool:
    """True for the file types `dynface restore` treats as video."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _av() -> Any:
    """The PyAV module, or a one-line error saying how to install it."""
    try:
        import av
    except ImportError:
        raise ResourceError(
            "video needs PyAV: pip install 'dynface[video]' (FFmpeg comes inside its wheel)"
        ) from None
    return av


def _open(path: Path) -> Any:
    av = _av()

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoReadError(
            f"{path} cannot be read as a video (cut short, damaged or not a video: {_why(exc)})"
        ) from None


def _why(exc: Exception) -> str:
    """FFmpeg's reason without the file name it repeats."""
    return str(getattr(exc, "strerror", None) or exc).rstrip(".")


def probe(path: str | Path) -> VideoInfo:
    """Read a clip's facts and check that all its video packets are there (no decoding)."""
    path = Path(path)
    container = _open(path)
    try:
        if not container.streams.video:
            raise VideoReadError(f"{path} has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or stream.width <= 0 or stream.height <= 0:
            raise VideoReadError(f"{path}: the video stream has no frame rate or size")
        packets = _count_packets(container, stream, path)
        expected, exact = _expected_frames(container, stream, Fraction(rate))
        _check_complete(path, packets, expected, exact)
        duration = _duration_s(container, stream, packets, Fraction(rate))
        rotation, matrix = _display_matrix(path)
        return VideoInfo(
            path=path,
            width=stream.width,
            height=stream.height,
            frame_rate=Fraction(rate),
            time_base=Fraction(stream.time_base),
            frames=packets,
            duration_s=duration,
            codec=stream.codec_context.name,
            audio_streams=len(container.streams.audio),
            rotation=rotation,
            display_matrix=matrix,
        )
    finally:
        container.close()


def _display_matrix(path: Path) -> tuple[int, tuple[int, ...] | None]:
    """The rotation (degrees counter-clockwise) and display matrix of the first decoded frame.

    FFmpeg attaches the stream's display matrix to every decoded frame; PyAV 18 reads its angle
    (`VideoFrame.rotation`) and gives the raw matrix as frame side data.
    """
    av = _av()

    container = _open(path)
    try:
        frame = next(container.decode(video=0), None)
        if frame is None:
            raise VideoReadError(f"{path} holds no video frames that decode")
        data = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
        if data is None:
            return 0, None
        matrix = tuple(int(v) for v in np.frombuffer(bytes(data), dtype=np.int32))
        return int(frame.rotation), matrix
    except av.error.FFmpegError as exc:
        raise VideoReadError(
            f"{path} is damaged: its first frame does not decode ({_why(exc)})"
        ) from None
    finally:
        container.close()


def check_clip_size(info: VideoInfo, max_frames: int = MAX_CLIP_FRAMES) -> None:
    """A UsageError, before any work, for a clip with frames larger than MAX_CLIP_PIXELS or
    more than `max_frames` frames."""
    name = info.path.name
    if info.width * info.height > MAX_CLIP_PIXELS:
        raise UsageError(
            f"{name}: {info.width}x{info.height} frames are larger than clips are restored at "
            f"(at most 7680x4320, 8K, {MAX_CLIP_PIXELS / 1e6:.0f} MP); downscale it first"
        )
    if info.frames > max_frames:
        raise UsageError(
            f"{name}: {info.frames} frames are more than the {max_frames:,} a clip may have; "
            "cut it into parts first"
        )


def frames_in_flight(width: int, height: int) -> int | None:
    """How many frames a codec may hold for frames of this size (None: its defaults)."""
    frames = FRAMES_IN_FLIGHT_PIXELS // max(1, width * height)
    return None if frames >= 40 else max(4, frames)


def _count_packets(container: Any, stream: Any, path: Path) -> int:
    av = _av()

    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size > 0:
                count += 1
    except av.error.FFmpegError as exc:
        raise VideoReadError(
            f"{path} is damaged or cut short after {count} frames ({_why(exc)})"
        ) from None
    if count == 0:
        raise VideoReadError(f"{path} holds no video frames (empty or cut short)")
    return count


def _expected_frames(container: Any, stream: Any, rate: Fraction) -> tuple[int | None, bool]:
    """Frame count the file declares (exact), or one estimated from its duration, or None."""
    if stream.frames > 0:
        return int(stream.frames), True
    if stream.duration is not None and stream.time_base is not None:
        return round(float(stream.duration * stream.time_base * rate)), False
    if container.duration is not None and container.duration > 0:
        return round(container.duration / 1_000_000 * float(rate)), False
    return None, False


def _check_complete(path: Path, found: int, expected: int | None, exact: bool) -> None:
    if expected is None:
        return
    slack = 0 if exact else max(2, round(expected * _ESTIMATE_SLACK))
    if found + slack < expected:
        raise VideoReadError(
            f"{path} is cut short: {found} of its {expected} frames are there "
            "(re-copy or re-download the file)"
        )


def _duration_s(container: Any, stream: Any, frames: int, rate: Fraction) -> float:
    """The video stream's duration: its own field, its Matroska DURATION tag, or the file's."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION", "")
    if tag.count(":") == 2:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    return float(frames / rate)


@dataclass
class DecodedFrame:
    """One frame: index, RGB uint8 pixels (H, W, 3), and timestamp in the stream's time base."""

    index: int
    rgb: np.ndarray
    pts: int | None
    duration: int | None


def read_frames(path: str | Path) -> Iterator[DecodedFrame]:
    """Decode the first video stream's frames in order; a decoding error is a VideoReadError."""
    path = Path(path)
    container = _open(path)
    try:
        yield from _decode(container, path, audio=False)
    finally:
        container.close()


def _decode(container: Any, path: Path, audio: bool) -> Iterator[Any]:
    """The first video stream's frames decoded in order, and with `audio` the audio packets
    (undecoded) as they come in the file; a decoding error is a VideoReadError."""
    av = _av()

    video = container.streams.video[0]
    video.thread_type = "AUTO"
    threads = frames_in_flight(video.width, video.height)
    if threads is not None:  # each decoding thread holds frames: fewer for large frames
        video.thread_count = threads
    streams = [video, *container.streams.audio] if audio else [video]
    index = 0
    try:
        for packet in container.demux(*streams):
            if packet.stream.type == "audio":
                yield packet
                continue
            for frame in packet.decode():
                yield DecodedFrame(
                    index, frame.to_ndarray(format="rgb24"), frame.pts, frame.duration
                )
                index += 1
    except av.error.FFmpegError as exc:
        raise VideoReadError(
            f"{path} is damaged: decoding stopped at frame {index} ({_why(exc)})"
        ) from None


def encoder_for(path: str | Path) -> str:
    """The video encoder used for an output file of this type."""
    return ENCODERS.get(Path(path).suffix.lower(), DEFAULT_ENCODER)


def check_quality(quality: int, path: str | Path) -> None:
    """Refuse a quality (CRF) outside the range of the encoder this output uses."""
    encoder = encoder_for(path)
    low, high = QUALITY_RANGE[encoder]
    if not low <= quality <= high:
        raise UsageError(
            f"--video-quality {quality} is outside {low}-{high} for {encoder} "
            f"(a CRF: lower is better, {DEFAULT_QUALITY} looks lossless)"
        )


#: Tags the muxer writes itself (brand, writing library, Matroska's stream duration), lower case.
MUXER_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder", "duration"})


def copy_tags(source: Any, target: Any) -> None:
    """Copy metadata tags (creation time, title, location, language...) but the muxer's own."""
    for key, value in source.items():
        if key.lower() not in MUXER_TAGS:
            target[key] = value


class VideoWriter:
    """Encode RGB frames to `target` with the input clip's timing, and copy its audio packets.

    Frames are passed with the input's timestamps (`write`); audio comes from the input file
    itself (`copy_audio_from` streams its packets, interleaved by the muxer). Use as a context
    manager: the encoder is flushed and the file closed on exit.
    """

    def __init__(self, target: Path, info: VideoInfo, quality: int = DEFAULT_QUALITY) -> None:
        av = _av()
        check_quality(quality, target)
        self.info = info
        self.target = target
        try:
            self._container = av.open(str(target), mode="w")
        except av.error.FFmpegError as exc:
            raise VideoWriteError(f"could not create {target}: {_why(exc)}") from None
        try:
            self._video = self._add_video_stream(quality)
        except (av.error.FFmpegError, ValueError) as exc:  # ValueError: no such encoder here
            self._container.close()
            raise VideoWriteError(
                f"could not set up the {encoder_for(target)} encoder for {target}: {_why(exc)}"
            ) from None
        self._audio: dict[int, Any] = {}
        self._last_pts: int | None = None
        self._constant_rate = target.suffix.lower() == ".avi"

    def _add_video_stream(self, quality: int) -> Any:
        """The output video stream: the input's size, rate and time base, CRF `quality`."""
        info, encoder = self.info, encoder_for(self.target)
        stream = self._container.add_stream(encoder, rate=info.frame_rate)
        stream.width, stream.height = info.width, info.height
        even = info.width % 2 == 0 and info.height % 2 == 0
        # 4:2:0 needs even sides; an odd-sized clip keeps full chroma instead of losing a row.
        stream.pix_fmt = "yuv420p" if even else "yuv444p"
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        if info.display_matrix is not None:
            # Frames are written as stored; players rotate them as they did the input's.
            stream.set_display_matrix(info.display_matrix)
        options = {"crf": str(quality)}
        if encoder == "libvpx-vp9":
            options["b"] = "0"
        frames = frames_in_flight(info.width, info.height)
        if frames is not None:  # the encoder buffers frames ahead and per thread: fewer
            options["threads"] = str(frames)
            options["rc-lookahead" if encoder == "libx264" else "lag-in-frames"] = str(frames)
        if self.target.suffix.lower() == ".avi":
            # AVI has no composition timestamps: B-frames would need out-of-order timestamps.
            options["bf"] = "0"
        stream.options = options
        return stream

    def add_audio_from(self, source: Any) -> None:
        """Add an output stream per audio stream of the open input container `source`, and
        carry the clip's tags (date, title, place; each stream's language): `copy_tags`."""
        av = _av()

        try:
            for audio in source.streams.audio:
                self._audio[audio.index] = self._container.add_stream_from_template(audio)
                copy_tags(audio.metadata, self._audio[audio.index].metadata)
        except av.error.FFmpegError as exc:
            raise VideoWriteError(
                f"could not copy the sound into {self.target}: {_why(exc)}"
            ) from None
        copy_tags(source.metadata, self._container.metadata)
        copy_tags(source.streams.video[0].metadata, self._video.metadata)

    def mux_audio(self, packet: Any) -> None:
        """Copy one audio packet of the input (unchanged) into the output."""
        if packet.dts is None or packet.stream.index not in self._audio:
            return
        packet.stream = self._audio[packet.stream.index]
        self._mux(packet)

    def write(self, rgb: np.ndarray, pts: int | None, duration: int | None) -> None:
        """Encode one RGB uint8 frame at the input's timestamp (frame index when it has none)."""
        av = _av()

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        step = 1 / (self.info.frame_rate * self.info.time_base)
        if self._constant_rate:
            # AVI is constant-rate and stores no timestamps (decoded B-frames get wrong ones).
            pts = None if self._last_pts is None else self._last_pts + max(1, round(step))
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            # No timestamp, or out of order (AVI stores none for B-frames): the next slot.
            pts = 0 if self._last_pts is None else self._last_pts + max(1, round(step))
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self.info.time_base
        if duration:
            frame.duration = duration
        self._mux(frame)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self._mux(None)
        self._container.close()

    def _mux(self, item: Any) -> None:
        """Mux an audio packet, or encode a frame (None: flush) and mux its packets."""
        av = _av()

        try:
            if isinstance(item, av.Packet):
                self._container.mux(item)
            else:
                self._container.mux(self._video.encode(item))
        except av.error.FFmpegError as exc:
            raise VideoWriteError(f"could not write {self.target}: {_why(exc)}") from None

    def abort(self) -> None:
        """Close without flushing (the file is then discarded by the caller)."""
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def rewrite_video(
    source: Path,
    target: Path,
    info: VideoInfo,
    edit: Callable[[DecodedFrame], np.ndarray],
    quality: int = DEFAULT_QUALITY,
) -> int:
    """Write `target`: every frame of `source` passed through `edit`, its audio copied.

    One pass over the input's packets: video packets are decoded, edited and encoded, audio
    packets go to the output untouched. Returns the number of frames written.
    """
    container = _open(source)
    written = 0
    try:
        with VideoWriter(target, info, quality) as writer:
            writer.add_audio_from(container)
            for item in _decode(container, source, audio=True):
                if isinstance(item, DecodedFrame):
                    writer.write(edit(item), item.pts, item.duration)
                    written += 1
                else:
                    writer.mux_audio(item)
    finally:
        container.close()
    return written


def temporary_path(target: Path) -> Path:
    """A sibling name with the same extension (the muxer picks the format from it)."""
    return target.with_name(f".{target.stem}.{os.getpid()}.partial{target.suffix}")
