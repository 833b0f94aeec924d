"""Temporal stability of restored faces in a clip: frame-to-frame change, restored vs input.

Usage: PYTHONPATH=src python benchmarks/video_stability.py [--config tiny-random] [--frames 24]
       [-o result.json]

Builds a clip from the public-domain samples (a still face on the left; on the right a face in a
window that slides and zooms), restores it twice (per-track consistency on, and off: a fresh
seed, raw s* and raw landmarks at every frame), and measures per face track the mean absolute
difference between consecutive frames (8-bit units) of
  - the face region of the frame (what a viewer sees flicker), and
  - the aligned face crop (the face warped with the track's smoothed transform, so the motion
    of the moving face is taken out),
for the input and for each output. With random weights (tiny-random) the restored faces are
not faces: the figure then measures the plumbing's consistency (same noise, smoothed s*, stable
masks), not the quality of real restorations.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from dynface.api import Restorer
from dynface.faces.align import similarity_transform, template, warp_to_crop
from dynface.io import read_image
from dynface.video import ConsistencySettings, VideoOptions, restore_video
from dynface.video.io import probe, read_frames

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "dynface" / "assets" / "samples"
SIZE = (480, 272)
PANEL = (220, 260)
CROP = 128
#: dynface: the method (guided at every step); difface: DifFace's unguided chain from t = 400,
#: where the noise decides much of the face.
MODES = ("dynface", "difface")


def build_frames(count: int) -> list[np.ndarray]:
    """Left: the astronaut, still. Right: Grace Hopper in a window sliding 2 px and zooming."""
    still = read_image(SAMPLES / "astronaut_degraded.jpg").pixels
    still = cv2.resize(still, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)[
        : PANEL[1], 60 : 60 + PANEL[0]
    ]
    moving = read_image(SAMPLES / "grace_hopper_degraded.jpg").pixels
    moving = cv2.resize(moving, None, fx=1.9, fy=1.9, interpolation=cv2.INTER_CUBIC)
    frames = []
    for index in range(count):
        frame = np.full((SIZE[1], SIZE[0], 3), 0.4, np.float32)
        frame[6 : 6 + still.shape[0], 10 : 10 + still.shape[1]] = still
        swing = index % 60 if index % 60 < 30 else 60 - index % 60  # back and forth
        zoom = 1.0 + 0.004 * swing
        width, height = round(PANEL[0] / zoom), round(PANEL[1] / zoom)
        x0, y0 = 10 + 2 * swing, 60
        window = moving[y0 : y0 + height, x0 : x0 + width]
        frame[6 : 6 + PANEL[1], 250 : 250 + PANEL[0]] = cv2.resize(
            window, PANEL, interpolation=cv2.INTER_CUBIC
        )
        frames.append(np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8))
    return frames


def write_input(path: Path, frames: list[np.ndarray], fps: int = 12) -> None:
    """Encode the frames as H.264 (CRF 12), as a camera or an editor would hand them over."""
    import av

    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
    stream.options = {"crf": "12"}
    for index, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()


def frame_changes(video: Path, traces: list[dict]) -> dict[int, dict[str, float]]:
    """Per track: mean |frame t - frame t-1| in the face box and in the aligned crop (0-255)."""
    by_frame: dict[int, list[dict]] = {}
    for record in traces:
        by_frame.setdefault(record["frame"], []).append(record)
    last_rgb: np.ndarray | None = None
    last_crops: dict[int, np.ndarray] = {}
    changes: dict[int, dict[str, list[float]]] = {}
    for frame in read_frames(video):
        rgb = frame.rgb.astype(np.float32)
        crops = {}
        for record in by_frame.get(frame.index, []):
            track, landmarks = record["track"], np.asarray(record["landmarks"])
            crops[track] = warp_to_crop(rgb, similarity_transform(landmarks, template(CROP)), CROP)
            if track not in last_crops or last_rgb is None:
                continue
            x1, y1, x2, y2 = _box(landmarks, rgb.shape)
            region = np.abs(rgb[y1:y2, x1:x2] - last_rgb[y1:y2, x1:x2]).mean()
            change = changes.setdefault(track, {"region": [], "aligned": []})
            change["region"].append(float(region))
            change["aligned"].append(float(np.abs(crops[track] - last_crops[track]).mean()))
        last_rgb, last_crops = rgb, crops
    return {t: {k: round(float(np.mean(v)), 3) for k, v in c.items()} for t, c in changes.items()}


def _box(landmarks: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A square around the face's landmarks, 1.6x the eye-to-mouth span."""
    center = landmarks.mean(axis=0)
    half = 0.8 * max(np.ptp(landmarks[:, 0]), np.ptp(landmarks[:, 1]), 8.0)
    x1, y1 = np.maximum(np.floor(center - half).astype(int), 0)
    x2 = min(int(np.ceil(center[0] + half)), shape[1])
    y2 = min(int(np.ceil(center[1] + half)), shape[0])
    return int(x1), int(y1), int(x2), int(y2)


def _track_names(traces: list[dict]) -> dict[int, str]:
    """ "still face" or "moving face" per track, from how far its landmarks travel."""
    first: dict[int, np.ndarray] = {}
    travel: dict[int, float] = {}
    for record in traces:
        points = np.asarray(record["landmarks"])
        start = first.setdefault(record["track"], points)
        travel[record["track"]] = float(np.abs(points - start).max())
    return {
        t: ("still face" if d < 3 else "moving face") + f" (track {t})" for t, d in travel.items()
    }


def measure(clip: Path, restorer: Restorer, work: Path) -> dict[str, dict]:
    """Restore the clip with consistency on and off; frame changes of input and outputs."""
    runs: dict[str, dict] = {}
    for label, temporal in (("restored, consistent", True), ("restored, per frame", False)):
        options = VideoOptions(quality=12, consistency=ConsistencySettings(temporal=temporal))
        start = time.perf_counter()
        result = restore_video(clip, restorer, work / label.replace(" ", ""), options)
        assert result.status == "ok", result.message
        traces = [json.loads(line) for line in result.outputs[1].read_text().splitlines()]
        runs[label] = {
            "seconds": round(time.perf_counter() - start, 1),
            "traces": traces,
            "changes": frame_changes(result.outputs[0], traces),
        }
    reference = runs["restored, consistent"]["traces"]
    runs["input"] = {"changes": frame_changes(clip, reference), "seconds": None}
    names = _track_names(reference)
    return {
        label: {
            "seconds": runs[label]["seconds"],
            "changes": {names[t]: c for t, c in sorted(runs[label]["changes"].items())},
        }
        for label in ("input", "restored, consistent", "restored, per frame")
    }


def main() -> None:
    """Build the clip, restore it with and without consistency, and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny-random")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("-o", "--output", default="benchmarks/results/video_stability.json")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        clip = work / "clip.mp4"
        write_input(clip, build_frames(args.frames))
        info = probe(clip)
        for mode in MODES:
            restorer = Restorer.from_config(args.config, device="cpu", overrides={"mode": mode})
            results[mode] = measure(clip, restorer, work / mode)
    payload = {
        "what": "mean |frame t - frame t-1| (0-255) per face track: face region / aligned crop",
        "config": args.config,
        "random_weights": restorer.is_random,
        "clip": {
            "frames": info.frames,
            "size": [info.width, info.height],
            "fps": str(info.frame_rate),
        },
        "modes": results,
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
