"""Short synthetic clips for the video tests: a face sliding over a background, with a tone."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from dynface.io import read_image

from .conftest import REPO

SAMPLE = REPO / "src" / "dynface" / "assets" / "samples" / "grace_hopper_degraded.jpg"
#: (video encoder, audio encoder, audio rate) per container the tests write.
CODECS = {
    ".mp4": ("libx264", "aac", 16000),
    ".mkv": ("libx264", "aac", 16000),
    ".mov": ("libx264", "aac", 16000),
    ".avi": ("libx264", "mp2", 16000),
    ".webm": ("libvpx-vp9", "libopus", 48000),
}


def face_frames(
    frames: int, size: tuple[int, int] = (160, 120), shift: int = 3, face_side: int = 80
) -> list[np.ndarray]:
    """RGB uint8 frames: the sample face on a gray-green background, moving `shift` px a frame."""
    face = read_image(SAMPLE).pixels
    face = cv2.resize(face, (round(face_side * 170 / 200), face_side), interpolation=cv2.INTER_AREA)
    width, height = size
    out = []
    for index in range(frames):
        frame = np.empty((height, width, 3), np.float32)
        frame[:] = (0.35, 0.45, 0.4)
        x = 8 + index * shift
        y = (height - face.shape[0]) // 2
        frame[y : y + face.shape[0], x : x + face.shape[1]] = face
        out.append(np.round(frame * 255).astype(np.uint8))
    return out


def write_clip(
    path: Path, images: list[np.ndarray], fps: int = 10, audio: bool = True, rotation: int = 0
) -> None:
    """Encode RGB frames at `fps`, with a 440 Hz mono tone as long as the clip when `audio`.

    With a `rotation` (degrees counter-clockwise, a multiple of 90), the frames are stored turned
    the other way and the stream gets that display rotation, so the clip plays as `images`, like
    a phone clip.
    """
    import av

    video_codec, audio_codec, rate = CODECS[path.suffix]
    images = [np.ascontiguousarray(np.rot90(image, -rotation // 90)) for image in images]
    container = av.open(str(path), "w")
    video = container.add_stream(video_codec, rate=fps)
    video.height, video.width = images[0].shape[:2]
    video.pix_fmt = "yuv420p"
    if rotation:
        video.set_display_rotation(rotation)
    if path.suffix == ".avi":
        video.options = {"bf": "0"}
    sound = container.add_stream(audio_codec, rate=rate, layout="mono") if audio else None
    for index, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    if sound is not None:
        samples = round(rate * len(images) / fps)
        tone = 0.3 * np.sin(2 * math.pi * 440 * np.arange(samples) / rate)
        chunk = sound.codec_context.frame_size or 1024
        fmt = sound.codec_context.format.name
        for first in range(0, samples, chunk):
            part = tone[first : first + chunk].astype(np.float32)[None]
            if fmt.startswith("s16"):
                part = np.round(part * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(part, format=fmt, layout="mono")
            frame.sample_rate, frame.pts = rate, first
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    container.close()
