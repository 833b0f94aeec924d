"""A photo's outputs are one set: complete or recognisably incomplete, never mixed, never lost.

Most tests run `dynface restore` as a process, as a user would, on aligned crops with the
tiny-random nets (a few seconds each); crashes are injected into that process.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dynface.cli import app
from dynface.io import read_image

from .conftest import REPO, TEST_DATA

TINY = ["--config", "tiny-random", "--steps", "ddim5", "--device", "cpu"]

#: Runs the CLI in a child process after wrapping os.link and os.replace: the wrapper kills the
#: process (SIGKILL, no cleanup) when a file is placed into the folder named by argv[1], before
#: ("before") or after ("after") the file gets its real name.
CRASHING_CLI = """
import os, signal, sys
folder, when = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

def crashing(real):
    def place(src, dst, *args, **kwargs):
        hit = os.path.basename(os.path.dirname(os.fspath(dst))) == folder
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(src, dst, *args, **kwargs)
        if hit:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return place

os.link, os.replace = crashing(os.link), crashing(os.replace)
from dynface.cli import main
sys.argv[0] = "dynface"
main()
"""


def dynface(*args: str, crash: tuple[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m dynface ARGS` on this checkout, optionally killed mid-write (see CRASHING_CLI)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200"}
    command = [sys.executable, "-m", "dynface", *args]
    if crash is not None:
        command = [sys.executable, "-c", CRASHING_CLI, *crash, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def run(*args: str):
    return CliRunner().invoke(app, ["restore", *args], catch_exceptions=False)


@pytest.fixture
def crops(tmp_path: Path) -> Path:
    """A folder with two aligned face crops."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(TEST_DATA / "astronaut_face.png", folder / "a.png")
    shutil.copy(TEST_DATA / "grace_hopper_face.png", folder / "b.png")
    return folder


def set_files(out: Path, name: str) -> list[Path]:
    return [out / sub / f"{name}.png" for sub in ("final", "faces/cropped", "faces/restored")]


def record(out: Path, name: str) -> dict:
    return json.loads((out / "records" / f"{name}.json").read_text())


def test_a_rerun_finishes_the_photo_a_kill_interrupted(crops, tmp_path):
    """kill -9 just after final/a.png appeared: the rerun must not call the photo done."""
    out = tmp_path / "out"
    killed = dynface("restore", str(crops / "a.png"), "-o", str(out), "--aligned", *TINY,
                     crash=("final", "after"))  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert (out / "final" / "a.png").exists()
    assert not (out / "faces" / "restored" / "a.png").exists()
    assert record(out, "a")["status"] == "writing"
    rerun = dynface("restore", str(crops / "a.png"), "-o", str(out), "--aligned", *TINY)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "ok" in rerun.stdout and "skipped" not in rerun.stdout.split("┏")[0]
    assert all(path.is_file() for path in set_files(out, "a"))
    assert record(out, "a")["status"] == "complete"
    again = dynface("restore", str(crops / "a.png"), "-o", str(out), "--aligned", *TINY)
    assert again.returncode == 0 and "already restored" in again.stdout


def test_temporary_files_a_kill_left_are_cleaned_by_the_rerun(crops, tmp_path):
    """kill -9 while a restored face was written, before it got its name: no .part stays."""
    out = tmp_path / "out"
    killed = dynface("restore", str(crops), "-o", str(out), "--aligned", *TINY,
                     crash=("restored", "before"))  # fmt: skip
    assert killed.returncode == -9
    assert list(out.rglob("*.part")), "the kill should have left a temporary file"
    rerun = dynface("restore", str(crops), "-o", str(out), "--aligned", *TINY)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert not list(out.rglob("*.part"))
    assert not [p for p in (out / "records").iterdir() if p.suffix != ".json"]
    for name in ("a", "b"):
        assert all(path.is_file() for path in set_files(out, name))
    assert list_images_of(out / "final") == ["a.png", "b.png"]


def list_images_of(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_disk_full_mid_set_leaves_no_partial_set_and_the_rerun_completes(
    crops, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    real_link = os.link

    def full_disk(src, dst, *args, **kwargs):
        if Path(dst).parent.name == "restored":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", full_disk)
    result = run(str(crops / "a.png"), "-o", str(out), "--aligned", *TINY)
    assert result.exit_code == 1
    assert "could not write outputs" in result.output and "No space left" in result.output
    assert not any(path.exists() for path in set_files(out, "a"))  # nothing under real names
    monkeypatch.setattr(os, "link", real_link)
    result = run(str(crops / "a.png"), "-o", str(out), "--aligned", *TINY)
    assert result.exit_code == 0, result.output
    assert all(path.is_file() for path in set_files(out, "a"))


def test_a_file_that_appears_meanwhile_is_never_replaced(crops, tmp_path, monkeypatch):
    """Another writer creates final/a.png after our checks: our run fails, its file stays."""
    out = tmp_path / "out"
    real_link = os.link

    def racing(src, dst, *args, **kwargs):
        if Path(dst).parent.name == "final" and not Path(dst).exists():
            Path(dst).write_bytes(b"the other run's photo")
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", racing)
    result = run(str(crops / "a.png"), "-o", str(out), "--aligned", *TINY)
    assert result.exit_code == 1, result.output
    assert "exists" in result.output
    assert (out / "final" / "a.png").read_bytes() == b"the other run's photo"
    assert not (out / "faces" / "restored" / "a.png").exists()


def test_a_photo_another_run_is_writing_is_left_to_it(crops, tmp_path):
    """A concurrent run holds the photo's lock: this run skips it and touches none of its files."""
    out = tmp_path / "out"
    (out / "records").mkdir(parents=True)
    fd = os.open(out / "records" / "a.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = dynface("restore", str(crops), "-o", str(out), "--aligned", *TINY)
    finally:
        os.close(fd)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "another dynface run is restoring it now" in result.stdout
    assert not (out / "final" / "a.png").exists() and (out / "final" / "b.png").exists()


def test_an_output_folder_that_holds_an_input_is_refused(crops, tmp_path):
    out = tmp_path / "X"
    assert dynface("restore", str(crops), "-o", str(out), "--aligned", *TINY).returncode == 0
    before = {p: p.read_bytes() for p in (out / "final").iterdir()}
    result = dynface(
        "restore", str(out / "final"), "-o", str(out), "--overwrite", "--aligned", *TINY
    )
    assert result.returncode == 2
    assert "inside the output folder" in result.stderr
    assert {p: p.read_bytes() for p in (out / "final").iterdir()} == before


def test_broken_links_and_link_loops_fail_alone(crops, tmp_path):
    (crops / "gone.png").symlink_to(tmp_path / "deleted.png")
    (crops / "loop.png").symlink_to(crops / "loop.png")
    result = run(str(crops), "-o", str(tmp_path / "out"), "--aligned", *TINY)
    assert result.exit_code == 1, result.output
    assert "gone.png: a symbolic link to" in result.output
    assert "loop.png: a symbolic link loop" in result.output
    assert list_images_of(tmp_path / "out" / "final") == ["a.png", "b.png"]


@pytest.mark.parametrize("where", ["under_a_file", "sysfs", "read_only"])
def test_an_unwritable_output_folder_is_refused_before_any_network(
    crops, tmp_path, monkeypatch, where
):
    if where == "under_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    elif where == "sysfs":
        out = Path("/sys/dynface-test-out")
        if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and os.geteuid() != 0:
            pytest.skip("needs Linux's sysfs")
    else:
        if os.geteuid() == 0:
            pytest.skip("root may write to read-only folders")
        out = tmp_path / "ro"
        out.mkdir(mode=0o500)

    def never(*args):
        raise AssertionError("no network may be loaded for an unusable -o")

    monkeypatch.setattr("dynface.cli.restore.load_restorer", never)
    result = CliRunner().invoke(app, ["restore", str(crops), "-o", str(out), "--aligned", *TINY])
    assert result.exit_code == 2, result.output
    assert "-o" in result.output and ("cannot" in result.output or "not a folder" in result.output)


def test_too_long_names_get_a_short_unique_name(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    long_stems = ["x" * 240 + "a", "x" * 240 + "b"]
    for stem in long_stems:
        shutil.copy(TEST_DATA / "astronaut_face.png", folder / f"{stem}.png")
    out = tmp_path / "out"
    result = run(str(folder), "-o", str(out), "--aligned", *TINY)
    assert result.exit_code == 0, result.output
    finals = list_images_of(out / "final")
    assert len(finals) == 2 and all(len(name.encode()) <= 210 for name in finals)
    assert len(set(finals)) == 2


def test_overwrite_with_fewer_faces_removes_the_stale_crops(tmp_path):
    canvas = np.full((512, 1400, 3), 0.5, np.float32)
    canvas[:, 444:956] = read_image(TEST_DATA / "astronaut.png").pixels
    small = np.asarray(Image.open(TEST_DATA / "astronaut.png").resize((200, 200)), np.float32) / 255
    canvas[150:350, 1150:1350] = small
    photo = tmp_path / "two.png"
    Image.fromarray(np.round(canvas * 255).astype(np.uint8)).save(photo)
    out = tmp_path / "out"
    assert run(str(photo), "-o", str(out), "--upscale", "1", *TINY).exit_code == 0
    assert list_images_of(out / "faces" / "restored") == ["two_00.png", "two_01.png"]
    result = run(
        str(photo), "-o", str(out), "--upscale", "1", "--overwrite", "--only-center-face", *TINY
    )
    assert result.exit_code == 0, result.output
    assert list_images_of(out / "faces" / "restored") == ["two_00.png"]
    assert list_images_of(out / "faces" / "cropped") == ["two_00.png"]


def test_same_names_from_other_folders_are_renamed_not_skipped(tmp_path):
    for folder, face in (("a", "astronaut_face.png"), ("b", "grace_hopper_face.png")):
        (tmp_path / folder).mkdir()
        shutil.copy(TEST_DATA / face, tmp_path / folder / "x.png")
    out = tmp_path / "out"
    assert run(str(tmp_path / "a" / "x.png"), "-o", str(out), "--aligned", *TINY).exit_code == 0
    result = run(str(tmp_path / "b" / "x.png"), "-o", str(out), "--aligned", *TINY)
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.output.split("┏")[0]
    assert list_images_of(out / "final") == ["x.png", "x_png.png"]
    assert record(out, "x_png")["input"] == str(tmp_path / "b" / "x.png")
    result = run(str(tmp_path / "b" / "x.png"), "-o", str(out), "--aligned", *TINY)
    assert "already restored" in result.output  # a rerun finds its own name again


def test_control_characters_in_file_names_are_not_printed_raw(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(TEST_DATA / "astronaut_face.png", folder / "\x1b[31mred.png")
    (folder / "bad\x1b]0;owned\x07.png").write_text("not an image")
    result = dynface("restore", str(folder), "-o", str(tmp_path / "out"), "--aligned", *TINY)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout
    assert "\\x1b[31mred.png" in result.stdout
    assert "not an image file" in result.stdout
