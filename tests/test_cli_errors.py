"""Error paths of every command: one clear message, exit 2 for usage errors, 1 for failures."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dynface.cli import app

from .conftest import REPO, TEST_DATA

FACE = str(TEST_DATA / "astronaut_face.png")


@dataclass
class Result:
    """Exit code and output with rich's box borders and line wrapping undone."""

    exit_code: int
    output: str


def run(*args: str) -> Result:
    """Invoke the CLI; an uncaught exception (a traceback for the user) fails the test."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output
    return Result(result.exit_code, " ".join(result.output.replace("│", " ").split()))


def restore(tmp_path: Path, *args: str):
    """`dynface restore FACE --aligned` with the tiny-random config and extra options."""
    return run("restore", FACE, "--aligned", "-o", str(tmp_path / "o"), *args)


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (["--config", "nosuch"], "--config", "neither a preset"),
        (["--config", "missing.yaml"], "--config", "pass a preset name or the path"),
        (["--steps", "ddim7000"], "--steps", "does not fit the 1000-step diffusion"),
        (["--steps", "abc"], "--steps", "'abc' is not a step count"),
        (["--steps", "ddimx"], "--steps", "use e.g. --steps fast"),
        (["--steps", "0"], "--steps", "cannot take 0 steps"),
    ],
)
def test_restore_bad_config_and_steps_name_the_option(tmp_path, args, option, message):
    result = restore(tmp_path, "--config", "tiny-random", *args)
    assert result.exit_code == 2
    assert f"Invalid value for {option}" in result.output and message in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_restore_device_and_precision_errors_are_usage_errors(tmp_path):
    result = restore(tmp_path, "--config", "tiny-random", "--device", "cuda")
    assert result.exit_code == 2
    assert "Invalid value for --device" in result.output and "--device auto" in result.output
    result = restore(tmp_path, "--config", "tiny-random", "--precision", "fp16", "--device", "cpu")
    assert result.exit_code == 2
    assert "Invalid value for --precision" in result.output and "fp32" in result.output


def test_restore_missing_input_fails_before_loading(tmp_path, monkeypatch):
    def never(*args):
        raise AssertionError("the restorer must not be loaded")

    monkeypatch.setattr("dynface.cli.restore.load_restorer", never)
    result = run("restore", str(tmp_path / "nope.png"), FACE, "-o", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "no such file" in result.output and "nope.png" in result.output
    (tmp_path / "empty").mkdir()
    result = run("restore", str(tmp_path / "empty"), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "no image files found" in result.output and "**" in result.output


def test_restore_offline_without_weights_fails_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNFACE_OFFLINE", "1")
    result = restore(tmp_path, "--steps", "ddim5", "--device", "cpu")
    assert result.exit_code == 1
    assert "is not available (offline mode" in result.output and "put it at" in result.output


def test_degrade_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("degrade", str(tmp_path / "empty"), "-o", str(tmp_path / "set"))
    assert result.exit_code == 2 and "no input images" in result.output
    (tmp_path / "file").write_text("x")
    result = run("degrade", FACE, "-o", str(tmp_path / "file"))
    assert result.exit_code == 2 and "is a file, not a folder" in result.output
    result = run("degrade", FACE, "-o", str(tmp_path / "set"), "--protocol", "nope")
    assert result.exit_code == 2 and "difface-celeba-test" in result.output


def test_train_config_errors(tmp_path):
    result = run("train", "sde", "--config", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert "no such file" in result.output and "sde, se, tm" in result.output
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    result = run("train", "sde", "--config", str(tmp_path / "bad.yaml"))
    assert result.exit_code == 2 and "not valid YAML at line" in result.output
    (tmp_path / "text.yaml").write_text("just words\n")
    result = run("train", "sde", "--config", str(tmp_path / "text.yaml"))
    assert result.exit_code == 2 and "must be a YAML mapping" in result.output
    result = run("train", "tm", "--config", "sde")
    assert result.exit_code == 2 and "run `dynface train sde`" in result.output
    result = run("train", "nope", "--config", "sde")
    assert result.exit_code == 2 and "'nope' is not one of" in result.output


def test_dsst_show_and_build_errors(tmp_path):
    result = run("dsst", "show", str(tmp_path / "missing.json"))
    assert result.exit_code == 2
    assert "no such file" in result.output and "dynface dsst build" in result.output
    for name, text in (("list.json", "[1, 2]"), ("notes.json", "not json")):
        (tmp_path / name).write_text(text)
        result = run("dsst", "show", str(tmp_path / name))
        assert result.exit_code == 2 and "is not a dynface DSST table" in result.output
    result = run("dsst", "build", FACE, "-o", str(tmp_path))
    assert result.exit_code == 2 and "is a folder; name the JSON file" in result.output


def test_dsst_show_keeps_an_existing_default_plot(tmp_path):
    table = tmp_path / "t.json"
    assert run("dsst", "build", FACE, "-o", str(table)).exit_code == 0
    assert run("dsst", "show", str(table)).exit_code == 0
    drawn = table.with_suffix(".png").stat().st_mtime_ns
    again = run("dsst", "show", str(table))
    assert again.exit_code == 0 and "kept" in again.output
    assert table.with_suffix(".png").stat().st_mtime_ns == drawn


def test_weights_unknown_name_is_a_usage_error_and_missing_file_says_how_to_get_it():
    result = run("weights", "path", "nosuch")
    assert result.exit_code == 2 and "known weight name" in result.output
    result = run("weights", "path", "swinir_restoration512_L1")
    assert result.exit_code == 1
    assert "dynface weights download swinir_restoration512_L1" in result.output


def test_every_command_help_has_an_example():
    commands = [
        [],
        ["restore"],
        ["demo"],
        ["degrade"],
        ["train"],
        ["dsst", "build"],
        ["dsst", "show"],
        ["weights", "list"],
        ["weights", "download"],
        ["weights", "verify"],
        ["weights", "path"],
        ["eval"],
        ["eval", "compare"],
    ]
    for command in commands:
        result = run(*command, "--help")
        assert result.exit_code == 0 and "Example" in result.output, command


def test_console_script_turns_os_errors_into_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    code = "from dynface.cli import main; main()"
    args = ["dsst", "build", FACE, "-o", str(tmp_path / "file" / "t.json")]
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: ")
    assert "check the path" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_version_needs_no_command():
    from dynface import __version__

    result = run("--version")
    assert result.exit_code == 0 and result.output == f"dynface {__version__}"
