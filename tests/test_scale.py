"""Scale out: `--shard i/n` jobs and torchrun processes restore every photo once, as one run would.

The runs are processes of `dynface restore` on aligned crops with the tiny-random nets, one CPU
thread each (so one process and two give the same floating-point sums).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from dynface.outputs.manifest import read_manifest
from dynface.scale import Share, split

from .conftest import REPO, TEST_DATA

TINY = ["--config", "tiny-random", "--steps", "ddim5", "--device", "cpu", "--seed", "5"]


def dynface(*args: str, processes: int = 1) -> subprocess.CompletedProcess:
    """`dynface ARGS` as a process; with processes > 1 under torchrun (gloo on the CPU)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    command = [sys.executable, "-m", "dynface", *args]
    if processes > 1:
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        command = [sys.executable, *launcher, "-m", "dynface", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def crops(tmp_path: Path) -> Path:
    """Five aligned crops of three sizes, so a split by pixels is uneven."""
    folder = tmp_path / "in"
    folder.mkdir()
    for k, (face, side) in enumerate(
        [("astronaut", 256), ("grace_hopper", 256), ("astronaut", 128), ("grace_hopper", 96),
         ("astronaut", 64)]
    ):  # fmt: skip
        image = Image.open(TEST_DATA / f"{face}_face.png").resize((side, side))
        image.save(folder / f"p{k}.png")
    return folder


def outputs(root: Path) -> dict[str, bytes]:
    """Every image of a run, by path relative to its output folder."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for sub in ("final", "faces")
        for path in sorted((root / sub).rglob("*.png"))
    }


def test_shares_split_the_photos_once_and_balance_their_pixels(crops):
    paths = sorted(crops.iterdir())
    parts = [split(paths, Share(k, 3)) for k in range(3)]
    assert sorted(k for part in parts for k in part) == list(range(5))
    assert parts == [[0], [1], [2, 3, 4]]  # the two big crops alone, the three small together
    with pytest.raises(ValueError, match="i/n"):
        Share.parse("2/2")
    assert Share.parse("1/4").within(1, 2) == Share(3, 8)


def test_two_shard_jobs_equal_the_full_run(crops, tmp_path):
    full = dynface("restore", str(crops), "-o", str(tmp_path / "full"), "--aligned", *TINY)
    assert full.returncode == 0, full.stderr
    for index in (1, 0):
        job = dynface(
            "restore", str(crops), "-o", str(tmp_path / "jobs"), "--aligned", *TINY,
            "--shard", f"{index}/2",
        )  # fmt: skip
        assert job.returncode == 0, job.stderr
        assert f"share {index}/2" in job.stdout
    assert outputs(tmp_path / "jobs") == outputs(tmp_path / "full")
    assert len(outputs(tmp_path / "full")) == 15
    lines = read_manifest(tmp_path / "jobs")
    assert sorted(line["name"] for line in lines) == [f"p{k}" for k in range(5)]
    assert {line["share"] for line in lines} == {"0/2", "1/2"}
    bad = dynface("restore", str(crops), "-o", str(tmp_path / "x"), "--shard", "2/2", *TINY)
    assert bad.returncode == 2 and "--shard" in bad.stderr


def test_two_processes_under_torchrun_equal_one_process(crops, tmp_path):
    one = dynface("restore", str(crops), "-o", str(tmp_path / "one"), "--aligned", *TINY)
    assert one.returncode == 0, one.stderr
    two = dynface(
        "restore", str(crops), "-o", str(tmp_path / "two"), "--aligned", *TINY, processes=2
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert outputs(tmp_path / "two") == outputs(tmp_path / "one")
    assert two.stdout.count("dynface restore ->") == 1  # one summary, from rank 0
    assert two.stdout.count("     ok ") == 5  # ... naming every photo
    lines = read_manifest(tmp_path / "two")
    assert sorted(line["name"] for line in lines) == [f"p{k}" for k in range(5)]
    assert {line["share"] for line in lines} == {"0/2", "1/2"}
    assert all(line["status"] == "ok" for line in lines)


def test_a_rerun_redoes_exactly_the_photos_whose_outputs_were_deleted(crops, tmp_path):
    out = tmp_path / "out"
    assert dynface("restore", str(crops), "-o", str(out), "--aligned", *TINY).returncode == 0
    before = outputs(out)
    (out / "faces" / "restored" / "p1.png").unlink()
    (out / "final" / "p3.png").unlink()
    rerun = dynface("restore", str(crops), "-o", str(out), "--aligned", *TINY, processes=2)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    latest = {line["name"]: line["status"] for line in read_manifest(out)[5:]}
    assert latest == {"p0": "skipped", "p1": "ok", "p2": "skipped", "p3": "ok", "p4": "skipped"}
    assert outputs(out) == before


def test_a_clip_under_torchrun_is_restored_once_by_the_main_process(tmp_path):
    from .video_clips import face_frames, write_clip

    clip = tmp_path / "clip.mp4"
    write_clip(clip, face_frames(4))
    run = dynface("restore", str(clip), "-o", str(tmp_path / "out"), *TINY, processes=2)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("     ok ") == 1  # one result line, from the main process
    assert (tmp_path / "out" / "final" / "clip.mp4").stat().st_size > 0
