"""`--help` as a user sees it in an 80-column terminal: no `<bool>` after flags, plain usage."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import REPO

COMMANDS = [["restore"], ["degrade"], ["eval"], ["train"], ["weights", "verify"], ["dsst"]]


def _help(*command: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "80", "TERM": "dumb"}
    args = [sys.executable, "-m", "dynface", *command, "--help"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    return {" ".join(command): _help(*command) for command in COMMANDS}


def test_flags_show_no_type_and_usage_names_arguments_plainly(helps: dict[str, str]) -> None:
    for name, text in helps.items():
        assert "<bool>" not in text, name
        usage = next(line for line in text.splitlines() if "Usage:" in line)
        assert "{" not in usage and "}" not in usage, usage
    assert "Usage: dynface restore [OPTIONS] INPUTS..." in helps["restore"]
    assert "Usage: dynface weights verify [OPTIONS] [NAMES]..." in helps["weights verify"]


def test_eval_help_lists_every_default_metric_uncut(helps: dict[str, str]) -> None:
    text = " ".join(helps["eval"].replace("│", " ").split())
    assert "all: psnr, ssim, psnr_y, ssim_y, lpips, fid, niqe, idd, lmd." in text
    assert "…" not in helps["eval"]


def test_install_hints_keep_their_extras(helps: dict[str, str]) -> None:
    """Rich reads `[cpu]` as markup unless escaped: the hint must say which extra to install."""
    restore = " ".join(helps["restore"].replace("│", " ").split())
    assert 'pip install "dynface[cpu]"' in restore
    ui = " ".join(_help("ui").replace("│", " ").split())
    assert 'pip install "dynface[ui]"' in ui
