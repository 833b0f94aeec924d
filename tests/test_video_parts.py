"""Video parts without the nets: containers round-trip, face tracks, per-track smoothing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dynface.errors import UsageError
from dynface.faces.align import FFHQ_512_TEMPLATE
from dynface.faces.detect import DetectedFace
from dynface.video import io as video_io
from dynface.video.checkpoint import WorkFolder
from dynface.video.consistency import ConsistencySettings, plan_faces
from dynface.video.io import (
    VideoReadError,
    VideoWriteError,
    check_quality,
    probe,
    rewrite_video,
)
from dynface.video.orientation import orientation_of
from dynface.video.tracking import FaceTracker

from .video_clips import face_frames, write_clip

av = pytest.importorskip("av")


@pytest.mark.parametrize("suffix", [".mkv", ".mov", ".avi", ".webm"])
def test_every_container_keeps_frames_timing_and_audio(suffix: str, tmp_path: Path) -> None:
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    write_clip(source, face_frames(5, size=(64, 48), face_side=30))
    info = probe(source)
    written = rewrite_video(source, target, info, lambda frame: 255 - frame.rgb)
    out = probe(target)
    assert written == out.frames == info.frames == 5
    assert (out.frame_rate, out.time_base) == (info.frame_rate, info.time_base)
    assert out.duration_s == pytest.approx(info.duration_s, abs=1e-3)
    with av.open(str(source)) as a, av.open(str(target)) as b:
        packets_a = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        packets_b = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
    assert packets_a == packets_b and packets_a
    with av.open(str(source)) as a, av.open(str(target)) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=True)
        for frame_a, frame_b in pairs:
            inverted = 255 - frame_a.to_ndarray(format="rgb24").astype(int)
            assert np.abs(frame_b.to_ndarray(format="rgb24") - inverted).mean() < 6


def test_a_file_that_is_not_a_video_is_a_read_error(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    with pytest.raises(VideoReadError, match="notes.mp4 cannot be read as a video"):
        probe(fake)


def test_an_encoder_missing_from_this_ffmpeg_is_a_write_error(monkeypatch, tmp_path: Path) -> None:
    """An FFmpeg build without the encoder (PyAV: UnknownCodecError) gets one clear line."""
    source = tmp_path / "in.mp4"
    write_clip(source, face_frames(2, size=(64, 48), face_side=30))
    monkeypatch.setitem(video_io.ENCODERS, ".mp4", "libx999")
    monkeypatch.setitem(video_io.QUALITY_RANGE, "libx999", (0, 51))
    with pytest.raises(VideoWriteError, match="could not set up the libx999 encoder for .*out.mp4"):
        rewrite_video(source, tmp_path / "out.mp4", probe(source), lambda frame: frame.rgb)


def test_quality_outside_the_encoder_range_is_a_usage_error() -> None:
    check_quality(51, "a.mp4")
    check_quality(63, "a.webm")
    with pytest.raises(UsageError, match="0-51"):
        check_quality(60, "a.mp4")


def _face(center: tuple[float, float], size: float = 40.0) -> DetectedFace:
    points = (FFHQ_512_TEMPLATE - 256) * size / 200 + np.asarray(center)
    box = np.array([*(np.asarray(center) - size / 2), *(np.asarray(center) + size / 2)])
    return DetectedFace(box.astype(np.float32), 0.99, points.astype(np.float32))


def test_tracks_follow_two_faces_through_order_changes_and_short_gaps() -> None:
    tracker = FaceTracker(max_gap=2)
    for frame in range(10):
        left, right = _face((50 + 4 * frame, 60)), _face((200 - 4 * frame, 60))
        faces = [right, left] if frame % 2 else [left, right]
        if frame in (4, 5):
            faces = [left]  # the right face is missed for two frames
        tracker.update(frame, faces)
    assert len(tracker.tracks) == 2
    left_track, right_track = tracker.tracks
    assert [o.frame for o in left_track.observations] == list(range(10))
    assert [o.frame for o in right_track.observations] == [0, 1, 2, 3, 6, 7, 8, 9]
    assert all(o.box[0] < 130 for o in left_track.observations)
    # A face gone for longer than max_gap starts a new track.
    tracker.update(20, [_face((50, 60))])
    assert len(tracker.tracks) == 3


def test_plan_smooths_jitter_fills_gaps_and_fixes_one_seed_per_track() -> None:
    rng = np.random.default_rng(0)
    tracker = FaceTracker(max_gap=3)
    for frame in range(30):
        if frame in (10, 11):
            tracker.update(frame, [])
            continue
        (obs,) = tracker.update(frame, [_face((60 + 2 * frame, 80))])
        obs.landmarks = obs.landmarks + rng.normal(0, 1.0, size=(5, 2))
        obs.s_star = 3.0 + rng.normal(0, 0.5)
    plans = plan_faces(tracker.tracks, ConsistencySettings(seed=5))
    faces = [plans[frame][0] for frame in range(30)]
    assert {p.seed for p in faces} == {5}
    assert [p.frame for p in faces if not p.detected] == [10, 11]
    truth = np.stack([_face((60 + 2 * f, 80)).landmarks for f in range(30)])
    smoothed = np.stack([p.landmarks for p in faces])
    raw = np.stack([p.raw_landmarks for p in faces if p.detected])
    detected = [p.frame for p in faces if p.detected]
    assert np.abs(smoothed - truth).mean() < 0.5 * np.abs(raw - truth[detected]).mean()
    steps = np.abs(np.diff([p.s_star for p in faces]))
    raw_steps = np.abs(np.diff([p.raw_s_star for p in faces if p.detected]))
    assert steps.max() < 0.2 * raw_steps.max()
    naive = plan_faces(tracker.tracks, ConsistencySettings(seed=5, temporal=False))
    assert len({naive[f][0].seed for f in detected}) == len(detected)
    assert 10 not in naive


def test_tracks_of_low_confidence_are_dropped() -> None:
    tracker = FaceTracker()
    for frame in range(4):
        face, patch = _face((60, 80)), _face((200, 80))
        tracker.update(frame, [face, DetectedFace(patch.box, 0.6, patch.landmarks)])
    plans = plan_faces(tracker.tracks, ConsistencySettings())
    assert [[p.track for p in plans[f]] for f in range(4)] == [[0]] * 4


def test_work_folder_is_reused_only_for_the_same_run(tmp_path: Path) -> None:
    folder = WorkFolder(tmp_path, "clip")
    assert folder.open({"input": "clip.mp4", "seed": 0}) is False
    folder.save_faces(3, np.zeros((1, 8, 8, 3), np.uint8), [{"start_t": 80}])
    assert folder.open({"input": "clip.mp4", "seed": 0}) is True
    faces, traces = folder.load_faces(3)
    assert faces.shape == (1, 8, 8, 3) and traces == [{"start_t": 80}]
    assert folder.open({"input": "clip.mp4", "seed": 1}) is False  # other settings: afresh
    assert folder.restored_frames() == 0


def test_photo_and_clip_results_share_one_outcome_shape(tmp_path: Path) -> None:
    from dynface import PhotoResult
    from dynface.outcome import Outcome
    from dynface.video import VideoResult

    clip = VideoResult(tmp_path / "a.mp4", "failed", "no face", frames=3)
    photo = PhotoResult(tmp_path / "a.png", "skipped", "exists", faces_found=1)
    assert isinstance(clip, Outcome) and isinstance(photo, Outcome)
    assert (clip.message, clip.frames, clip.failed) == ("no face", 3, True)
    assert (photo.message, photo.faces_found, photo.failed) == ("exists", 1, False)
    with pytest.raises(TypeError):
        PhotoResult(tmp_path / "a.png", "ok", "", 2)  # type: ignore[misc]
    with pytest.raises(ValueError, match="not one of ok, failed, skipped"):
        VideoResult(tmp_path / "a.mp4", "done")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("suffix", "rotation"),
    [(".mp4", 90), (".mp4", -90), (".mp4", 180), (".mov", 270), (".mkv", -90), (".webm", 90)],
)
def test_probe_reads_the_display_rotation_players_apply(
    suffix: str, rotation: int, tmp_path: Path
) -> None:
    """A phone-style clip: probe gives its rotation, and turning the stored frame upright gives
    the frame OpenCV shows (its FFmpeg reader applies the display matrix, as players do)."""
    import cv2

    images = face_frames(2, size=(64, 48), face_side=30)
    path = tmp_path / f"phone{suffix}"
    write_clip(path, images, rotation=rotation, audio=False)
    info = probe(path)
    assert info.rotation % 360 == rotation % 360
    assert info.display_matrix is not None and len(info.display_matrix) == 9
    assert (info.width, info.height) == ((48, 64) if rotation % 180 else (64, 48))  # as stored
    orientation = orientation_of(info.display_matrix)
    assert orientation.upright_size(info.width, info.height) == (64, 48)
    with av.open(str(path)) as container:
        stored = next(container.decode(video=0)).to_ndarray(format="rgb24")
    capture = cv2.VideoCapture(str(path))
    ok, shown = capture.read()
    capture.release()
    assert ok
    upright = orientation.upright(stored)
    np.testing.assert_array_equal(upright, shown[..., ::-1])
    assert np.abs(upright.astype(int) - images[0]).mean() < 6  # as filmed, up to the codec
    np.testing.assert_array_equal(orientation.stored(upright), stored)


def test_a_clip_without_display_matrix_has_rotation_zero(tmp_path: Path) -> None:
    path = tmp_path / "plain.mp4"
    write_clip(path, face_frames(2, size=(64, 48), face_side=30), audio=False)
    info = probe(path)
    assert (info.rotation, info.display_matrix) == (0, None)
    assert orientation_of(info.display_matrix).identity


def _ffmpeg_display_matrix(degrees: float, hflip: bool, vflip: bool) -> list[int]:
    """FFmpeg's av_display_rotation_set(-degrees) then av_display_matrix_flip, in Python."""
    radians = math.radians(degrees)
    cos, sin = math.cos(radians), math.sin(radians)
    matrix = [round(cos * 65536), round(-sin * 65536), 0, round(sin * 65536), round(cos * 65536)]
    matrix += [0, 0, 0, 1 << 30]
    flip = [-1 if hflip else 1, -1 if vflip else 1, 1]
    return [value * flip[k % 3] for k, value in enumerate(matrix)]


@pytest.mark.parametrize("degrees", [0, 90, 180, 270, -90])
@pytest.mark.parametrize(("hflip", "vflip"), [(False, False), (True, False), (False, True)])
def test_every_right_angle_display_matrix_turns_frames_back_and_forth(
    degrees: int, hflip: bool, vflip: bool
) -> None:
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    orientation = orientation_of(_ffmpeg_display_matrix(degrees, hflip, vflip))
    upright = orientation.upright(image)
    assert upright.shape[:2] == (5, 7)[:: -1 if degrees % 180 else 1]
    assert upright.flags.c_contiguous
    np.testing.assert_array_equal(orientation.stored(upright), image)
    assert orientation.mirrored == (hflip != vflip)  # two flips are a half turn
    if not (hflip or vflip):
        np.testing.assert_array_equal(upright, np.rot90(image, degrees // 90))


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm"])
def test_a_rewritten_clip_keeps_its_display_rotation(suffix: str, tmp_path: Path) -> None:
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    write_clip(source, face_frames(3, size=(64, 48), face_side=30), rotation=-90)
    info = probe(source)
    assert rewrite_video(source, target, info, lambda frame: frame.rgb) == 3
    out = probe(target)
    assert (out.width, out.height, out.rotation) == (info.width, info.height, info.rotation)
    assert out.display_matrix == info.display_matrix


def _tagged(source: Path, target: Path, tags: dict[str, str], language: str) -> None:
    """A copy of `source` with container tags and a language on its audio stream."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        out.metadata.update(tags)
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        streams[src.streams.audio[0].index].metadata["language"] = language
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)


def test_a_rewritten_clip_keeps_its_date_title_place_and_languages(tmp_path: Path) -> None:
    plain, source, target = tmp_path / "plain.mp4", tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(plain, face_frames(3, size=(64, 48), face_side=30))
    tags = {"creation_time": "1999-12-31T23:59:00.000000Z", "title": "Wedding"}
    _tagged(plain, source, {**tags, "location": "+48.8577+002.2950/"}, "fra")
    rewrite_video(source, target, probe(source), lambda frame: frame.rgb)
    with av.open(str(target)) as out:
        assert tags.items() <= out.metadata.items()
        assert out.metadata["location"] == "+48.8577+002.2950/"
        assert out.streams.audio[0].metadata["language"] == "fra"
        assert out.streams.video[0].metadata["creation_time"] == tags["creation_time"]
        assert out.metadata["encoder"].startswith("Lavf")  # the muxer's own, not copied
