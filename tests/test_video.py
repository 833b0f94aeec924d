"""Video end to end on a short generated clip with sound (tiny-random nets), read back with PyAV."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dynface.api import Restorer
from dynface.video import VideoOptions, probe, restore_video
from dynface.video.checkpoint import WORK_FOLDER
from dynface.video.orientation import orientation_of

from .conftest import REPO
from .video_clips import face_frames, write_clip

av = pytest.importorskip("av")

FRAMES = 6


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tiny nets gain nothing from threads, and on a busy machine threads wait on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny() -> Restorer:
    return Restorer.from_config("tiny-random", device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_clip(path, face_frames(FRAMES))
    return path


@pytest.fixture(scope="module")
def restored(clip: Path, tiny: Restorer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("out")
    result = restore_video(clip, tiny, outdir, VideoOptions(quality=0, batch_size=2))
    assert result.status == "ok", result.message
    assert not (outdir / WORK_FOLDER).exists()
    return outdir


#: A phone held upright: the frames are stored landscape, players turn them 90 degrees clockwise.
PHONE_ROTATION = -90
#: Upright (width, height) of the phone clip; the stored frames are 160 x 120.
PHONE_SIZE = (120, 160)


@pytest.fixture(scope="module")
def phone_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("phone") / "phone.mp4"
    write_clip(path, face_frames(FRAMES, size=PHONE_SIZE), rotation=PHONE_ROTATION)
    return path


@pytest.fixture(scope="module")
def phone_restored(
    phone_clip: Path, tiny: Restorer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    outdir = tmp_path_factory.mktemp("phone_out")
    result = restore_video(phone_clip, tiny, outdir, VideoOptions(quality=0, batch_size=2))
    assert result.status == "ok", result.message
    return outdir


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _audio(path: Path) -> tuple[list[bytes], np.ndarray]:
    """The audio packets (bytes) and the decoded samples of the first audio stream."""
    with av.open(str(path)) as container:
        packets = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]
    with av.open(str(path)) as container:
        samples = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    return packets, samples


def _traces(outdir: Path, name: str = "clip") -> list[dict]:
    lines = (outdir / "traces" / f"{name}.frames.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_frames_rate_time_base_duration_and_audio_are_kept(clip: Path, restored: Path) -> None:
    out = restored / "final" / "clip.mp4"
    before, after = probe(clip), probe(out)
    assert after.frames == before.frames == FRAMES
    assert len(_decode(out)) == FRAMES
    assert after.frame_rate == before.frame_rate
    assert after.time_base == before.time_base
    assert after.duration_s == pytest.approx(before.duration_s, abs=1e-6)
    assert (after.width, after.height) == (before.width, before.height)
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert [f.pts for f in a.decode(video=0)] == [f.pts for f in b.decode(video=0)]
    packets_in, samples_in = _audio(clip)
    packets_out, samples_out = _audio(out)
    assert after.audio_streams == 1
    assert packets_out == packets_in  # copied, not re-encoded
    np.testing.assert_array_equal(samples_out, samples_in)
    assert np.abs(samples_in).max() > 0.1  # the tone is really there


def test_every_frame_has_its_face_restored_and_nothing_else_changes(
    clip: Path, restored: Path
) -> None:
    before = [f.astype(np.float32) / 255 for f in _decode(clip)]
    after = [f.astype(np.float32) / 255 for f in _decode(restored / "final" / "clip.mp4")]
    traces = _traces(restored)
    assert [t["frame"] for t in traces] == list(range(FRAMES))  # one face in every frame
    for trace, a, b in zip(traces, before, after, strict=True):
        assert_only_the_face_changed(a, b, trace["box"])
        assert trace["method"]["mode"] == "dynface"


def test_traces_hold_one_seed_and_smoothed_blur_per_track(restored: Path) -> None:
    traces = _traces(restored)
    assert {t["track"] for t in traces} == {0}
    assert {t["seed"] for t in traces} == {0}
    assert len({t["method"]["start_t"] for t in traces}) == 1
    summary = json.loads((restored / "traces" / "clip.tracks.json").read_text())
    track = summary["tracks"][0]
    assert (track["frames"], track["detected_frames"], track["seeds"]) == (FRAMES, FRAMES, [0])
    assert summary["frames"] == FRAMES and summary["audio_streams"] == 1
    assert track["s_star"]["std"] <= track["raw_s_star"]["std"]


def test_an_interrupted_run_resumes_and_matches(
    clip: Path, tiny: Restorer, restored: Path, tmp_path: Path
) -> None:
    class StopAfter:
        """Interrupts the run (like Ctrl-C) after two frames of the restore pass."""

        def start(self, stage: str, total: int) -> None:
            self.stage, self.done = stage, 0

        def advance(self, count: int) -> None:
            self.done += count
            if self.stage == "restoring frames" and self.done == 2:
                raise KeyboardInterrupt

    options = VideoOptions(quality=0, batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        restore_video(clip, tiny, tmp_path, options, progress=StopAfter())
    assert not (tmp_path / "final" / "clip.mp4").exists()
    assert len(list((tmp_path / WORK_FOLDER / "clip" / "faces").glob("*.npz"))) == 2
    result = restore_video(clip, tiny, tmp_path, options)
    assert result.status == "ok"
    assert "resumed: 2 frames" in result.message
    assert _same_file(tmp_path / "final" / "clip.mp4", restored / "final" / "clip.mp4")
    assert _without_timing(_traces(tmp_path)) == _without_timing(_traces(restored))


def _without_timing(traces: list[dict]) -> list[dict]:
    return [{**t, "method": {**t["method"], "timing": None}} for t in traces]


def _same_file(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dynface", "restore", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_restores_a_clip_identically_twice(clip: Path, restored: Path, tmp_path: Path) -> None:
    done = _cli(
        str(clip),
        "-o",
        str(tmp_path),
        "--config",
        "tiny-random",
        "--video-quality",
        "0",
        "--batch-size",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout and "6 frames" in done.stdout
    assert "restoring frames" in done.stderr  # progress over frames
    # Another process, the same clip: the same bytes as the library run.
    assert _same_file(tmp_path / "final" / "clip.mp4", restored / "final" / "clip.mp4")


def test_cli_fidelity_leans_every_face_of_a_clip(
    clip: Path, restored: Path, tmp_path: Path
) -> None:
    done = _cli(str(clip), "-o", str(tmp_path), "--config", "tiny-random", "--video-quality", "0",
                "--batch-size", "2", "--fidelity", "0.9")  # fmt: skip
    assert done.returncode == 0, done.stderr
    leaned, plain = _traces(tmp_path), _traces(restored)
    assert len(leaned) == len(plain) == FRAMES
    for face, same_face in zip(leaned, plain, strict=True):
        method = face["method"]
        assert method["fidelity"] == 0.9 and same_face["method"]["fidelity"] == 0.5
        assert method["s_star"] == same_face["method"]["s_star"]  # the track's smoothed s*
        assert method["s_effective"] == pytest.approx(method["s_star"] * 2**-0.4, abs=2e-3)
    assert not _same_file(tmp_path / "final" / "clip.mp4", restored / "final" / "clip.mp4")


def test_cli_a_truncated_clip_is_one_clear_error(clip: Path, tmp_path: Path) -> None:
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    done = _cli(str(cut), "-o", str(tmp_path / "out"), "--config", "tiny-random")
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error:") and "cut.mp4" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "final").exists()


def test_a_phone_clip_is_probed_with_its_rotation(phone_clip: Path) -> None:
    info = probe(phone_clip)
    assert info.rotation == PHONE_ROTATION
    assert (info.width, info.height) == PHONE_SIZE[::-1]  # stored sideways
    assert orientation_of(info.display_matrix).upright_size(info.width, info.height) == PHONE_SIZE


def _upright(path: Path) -> list[np.ndarray]:
    """The decoded frames turned as a player shows them (display matrix of the file itself)."""
    orientation = orientation_of(probe(path).display_matrix)
    return [orientation.upright(f).astype(np.float32) / 255 for f in _decode(path)]


def test_a_phone_clip_has_its_face_restored_upright_in_every_frame(
    phone_clip: Path, phone_restored: Path
) -> None:
    before, after = _upright(phone_clip), _upright(phone_restored / "final" / "phone.mp4")
    traces = _traces(phone_restored, "phone")
    assert [t["frame"] for t in traces] == list(range(FRAMES))  # one face in every frame
    for index, (trace, a, b) in enumerate(zip(traces, before, after, strict=True)):
        x1, y1, x2, y2 = np.round(trace["box"]).astype(int)
        # The box is in upright coordinates: around the face (68 x 80 px at x = 8 + 3 * frame).
        assert abs((x1 + x2) / 2 - (42 + 3 * index)) < 12 and abs((y1 + y2) / 2 - 80) < 12
        assert_only_the_face_changed(a, b, trace["box"])
    summary = json.loads((phone_restored / "traces" / "phone.tracks.json").read_text())
    assert summary["display_rotation"] == PHONE_ROTATION
    assert summary["size"] == list(PHONE_SIZE[::-1]) and summary["upright_size"] == list(PHONE_SIZE)
    assert summary["tracks"][0]["detected_frames"] == FRAMES


def test_a_phone_clip_plays_like_its_input(phone_clip: Path, phone_restored: Path) -> None:
    """Same stored size, display rotation, frames, timestamps and sound as the input."""
    out = phone_restored / "final" / "phone.mp4"
    before, after = probe(phone_clip), probe(out)
    assert (after.width, after.height) == (before.width, before.height)
    assert (after.rotation, after.display_matrix) == (before.rotation, before.display_matrix)
    assert after.frames == before.frames == FRAMES
    assert (after.frame_rate, after.time_base) == (before.frame_rate, before.time_base)
    assert after.duration_s == pytest.approx(before.duration_s, abs=1e-6)
    with av.open(str(phone_clip)) as a, av.open(str(out)) as b:
        assert [f.pts for f in a.decode(video=0)] == [f.pts for f in b.decode(video=0)]
    assert _audio(out)[0] == _audio(phone_clip)[0]  # the sound's packets, copied


def assert_only_the_face_changed(before: np.ndarray, after: np.ndarray, box: list[float]) -> None:
    """Inside the face box the frame clearly changed; away from it only codec rounding."""
    x1, y1, x2, y2 = np.round(box).astype(int)
    inner = (slice(y1 + 4, y2 - 4), slice(x1 + 4, x2 - 4))
    assert np.abs(before[inner] - after[inner]).mean() > 0.05  # tiny-random: clearly changed
    outside = np.ones(before.shape[:2], bool)
    pad = (x2 - x1) // 2
    outside[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad] = False
    assert np.abs(before[outside] - after[outside]).mean() < 0.01
