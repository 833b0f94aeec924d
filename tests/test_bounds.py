"""Every bound a user can type is checked before any work, with one line (issue 23)."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dynface.api import face_generators
from dynface.errors import UsageError
from dynface.photos import RestoreOptions, checked_options
from dynface.scale import MAX_SHARDS, Share, split
from dynface.ui.app import settings_from
from dynface.ui.jobs import check_settings

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "src" / "dynface" / "assets" / "samples" / "astronaut_degraded.jpg"
ENV = dict(os.environ, PYTHONPATH=str(REPO / "src"), DYNFACE_OFFLINE="1")
#: (--upscale as typed, accepted); the range is 1 to 4 everywhere.
UPSCALES = [
    ("1", True), ("2.5", True), ("4", True), ("0.5", False), ("4.5", False), ("8", False),
    ("9", False), ("inf", False), ("nan", False), ("-1", False),
]  # fmt: skip


def dynface(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a process (its output with rich's box borders undone)."""
    done = subprocess.run(
        [sys.executable, "-m", "dynface", *args],
        capture_output=True, text=True, env=ENV, timeout=120,
    )  # fmt: skip
    done.stdout = " ".join((done.stdout + done.stderr).replace("│", " ").split())
    return done


def ui_accepts_upscale(text: str) -> bool:
    """What the web UI's `/restore` does with an upscale: its controls, then its check."""
    settings = settings_from(
        False, 0.5, "closed_form", "learned", "dynamic", None, None, True, float(text),
        False, "auto", "fp32", "auto",
    )  # fmt: skip
    try:
        check_settings(settings, "tiny-random")
    except UsageError as exc:
        assert "upscale must be a number from 1 to 4" in str(exc)
        return False
    return True


def test_the_cli_and_the_ui_accept_and_refuse_the_same_upscales(tmp_path: Path) -> None:
    for text, accepted in UPSCALES:
        # --steps abc is checked after --upscale: an accepted upscale fails on --steps instead.
        out = tmp_path / "out"
        done = dynface(
            "restore", str(PHOTO), "-o", str(out), "--config", "tiny-random", "--steps", "abc",
            "--upscale", text,
        )  # fmt: skip
        assert done.returncode == 2 and "Traceback" not in done.stdout, done.stdout
        cli_accepts = "Invalid value for --upscale" not in done.stdout
        if not cli_accepts:
            assert "upscale must be a number from 1 to 4" in done.stdout
        assert (cli_accepts, ui_accepts_upscale(text)) == (accepted, accepted), text
        assert not out.exists()


@pytest.mark.parametrize("upscale", [0.5, 8.0, float("inf"), float("nan"), True, "2"])
def test_the_api_refuses_an_upscale_outside_one_to_four(upscale: object) -> None:
    with pytest.raises(UsageError, match="upscale must be a number from 1 to 4"):
        checked_options(RestoreOptions(upscale=upscale), object())  # type: ignore[arg-type]
    assert checked_options(RestoreOptions(upscale=4), object()).upscale == 4


def test_a_huge_shard_count_is_one_line_at_once_before_any_work(tmp_path: Path) -> None:
    for shard, message in [
        ("0/99999999999999999999", "at most 1,000,000"),
        ("0/1000001", "at most 1,000,000"),
        ("0/" + "9" * 5000, "is not a shard"),  # longer than Python reads as an int
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "dynface", "restore", str(PHOTO), "-o", str(tmp_path / "o"),
             "--config", "tiny-random", "--shard", shard],
            capture_output=True, text=True, env=ENV, timeout=60,
        )  # fmt: skip
        output = " ".join(done.stderr.replace("│", " ").split())
        assert done.returncode == 2 and "Traceback" not in output, output
        assert "Invalid value for --shard" in output and message in output
        assert not (tmp_path / "o").exists()


def test_a_split_costs_the_photos_not_the_share_count() -> None:
    """The largest share count splits a few photos as the smallest one that fits them would."""
    paths = [PHOTO, REPO / "missing-1.png", REPO / "missing-2.png"]  # costs: pixels, 1, 1
    assert Share.parse(f"0/{MAX_SHARDS}") == Share(0, MAX_SHARDS)
    for index in range(3):
        assert split(paths, Share(index, MAX_SHARDS)) == split(paths, Share(index, 3))
    assert split(paths, Share(MAX_SHARDS - 1, MAX_SHARDS)) == []
    tracemalloc.start()
    split(paths, Share(0, 10 * MAX_SHARDS))  # what torchrun's within() may reach
    assert tracemalloc.get_traced_memory()[1] < 1_000_000
    tracemalloc.stop()


BAD_SEEDS = [float("nan"), "x", 1.5, True, -1, 2**63, object(), [1, "x"], [2**63], [-1]]


@pytest.mark.parametrize("seed", BAD_SEEDS)
def test_the_api_refuses_a_bad_seed_in_one_line(seed: object) -> None:
    count = len(seed) if isinstance(seed, list) else 2
    with pytest.raises(UsageError, match=r"must be a whole number from 0 to 2\*\*63-1") as refused:
        face_generators(seed, count, torch.device("cpu"))  # type: ignore[arg-type]
    assert "\n" not in str(refused.value)


def test_good_seeds_still_give_one_generator_per_face() -> None:
    for seed in (0, 2**63 - 1, np.int64(7), [3, np.uint8(4)], (0, 2**63 - 1)):
        generators = face_generators(seed, 2, torch.device("cpu"))  # type: ignore[arg-type]
        assert generators is not None and len(generators) == 2
    with pytest.raises(UsageError, match="seed must be"):
        checked_options(RestoreOptions(seed=-1), object())  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [float("nan"), 1.5, -1.0, 2.0**64])
def test_the_ui_refuses_a_bad_seed_before_any_work(seed: float) -> None:
    settings = settings_from(
        False, 0.5, "closed_form", "learned", "dynamic", None, seed, False, 2.0,
        False, "auto", "fp32", "auto",
    )  # fmt: skip
    with pytest.raises(UsageError, match="seed must be a whole number"):
        check_settings(settings, "tiny-random")


def test_the_cli_refuses_a_seed_out_of_range(tmp_path: Path) -> None:
    for seed in ("-1", str(2**63)):
        done = dynface(
            "restore", str(PHOTO), "-o", str(tmp_path / "o"), "--config", "tiny-random",
            "--seed", seed,
        )  # fmt: skip
        assert done.returncode == 2 and "Traceback" not in done.stdout, done.stdout
        assert "Invalid value for --seed: seed must be a whole number" in done.stdout
        assert not (tmp_path / "o").exists()


def _flat_clip(path: Path, width: int, height: int, frames: int = 2) -> Path:
    """A clip of flat gray frames (MJPEG: quick to write even at 8K and beyond)."""
    av = pytest.importorskip("av")
    container = av.open(str(path), "w")
    stream = container.add_stream("mjpeg", rate=10)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
    frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 90, np.uint8), format="rgb24")
    for index in range(frames):
        frame.pts = index
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


def test_a_clip_larger_than_8k_is_refused_before_any_work(tmp_path: Path) -> None:
    from dynface.ui.clips import ClipLimits, check_clips

    big = _flat_clip(tmp_path / "big.mkv", 7696, 4320)
    done = dynface("restore", str(big), "-o", str(tmp_path / "o"), "--config", "tiny-random")
    assert done.returncode == 2 and "Traceback" not in done.stdout, done.stdout
    assert done.stdout == (
        "error: big.mkv: 7696x4320 frames are larger than clips are restored at (at most "
        "7680x4320, 8K, 33 MP); downscale it first"
    )
    assert not (tmp_path / "o").exists()
    with pytest.raises(UsageError, match="7696x4320 frames are larger"):  # the web UI alike
        check_clips([big], ClipLimits())


def test_a_clip_longer_than_the_frame_cap_is_refused() -> None:
    from fractions import Fraction

    from dynface.video.io import MAX_CLIP_FRAMES, VideoInfo, check_clip_size

    info = VideoInfo(Path("long.mp4"), 64, 64, Fraction(30), Fraction(1, 30), 10, 1 / 3, "h264", 0)
    check_clip_size(info)
    with pytest.raises(UsageError, match="long.mp4: 1000001 frames are more than the 1,000,000"):
        check_clip_size(replace(info, frames=MAX_CLIP_FRAMES + 1))


def test_large_frames_get_fewer_frames_in_flight_in_the_codecs(tmp_path: Path, monkeypatch) -> None:
    """Encoder lookahead and codec threads hold whole frames: at 4K and 8K they hold fewer, so
    memory does not grow with the clip's first 40 frames (clips up to 1080p are unchanged)."""
    from fractions import Fraction

    from dynface.video import io

    assert io.frames_in_flight(1920, 1080) is None and io.frames_in_flight(1280, 720) is None
    assert io.frames_in_flight(3840, 2160) == 10 and io.frames_in_flight(7680, 4320) == 4
    monkeypatch.setattr(io, "FRAMES_IN_FLIGHT_PIXELS", 5 * 96 * 64)  # 96x64 counts as large
    out = tmp_path / "small.mp4"
    info = io.VideoInfo(out, 96, 64, Fraction(10), Fraction(1, 10), 12, 1.2, "h264", 0)
    with io.VideoWriter(out, info) as writer:
        for index in range(12):
            writer.write(np.full((64, 96, 3), 20 * index, np.uint8), index, 1)
    assert b"rc_lookahead=5 " in out.read_bytes()  # x264 records its settings in the stream
    assert len(list(io.read_frames(out))) == 12
