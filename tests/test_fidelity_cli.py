"""`dynface restore --fidelity` as a user runs it: a process, its exit status, its trace files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, TEST_DATA

FACE = str(TEST_DATA / "astronaut_face.png")


def run_restore(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m dynface restore FACE --aligned` on the tiny nets, in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1", COLUMNS="200")
    command = [sys.executable, "-m", "dynface", "restore", FACE, "--aligned", "-o", str(out)]
    return subprocess.run(
        [*command, "--config", "tiny-random", "--steps", "ddim5", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_fidelity_reaches_every_face_trace(tmp_path):
    done = run_restore(tmp_path / "o", "--fidelity", "0.8", "--seed", "0", "--save-trace")
    assert done.returncode == 0, done.stdout + done.stderr
    trace = json.loads((tmp_path / "o" / "traces" / "astronaut_face.json").read_text())
    method = trace["faces"][0]["method"]
    assert method["fidelity"] == 0.8
    assert method["s_effective"] == pytest.approx(method["s_star"] * 2**-0.3, abs=2e-3)
    assert method["s_levels"][0] == pytest.approx(method["s_effective"], abs=2e-3)
    assert method["mu"] == pytest.approx(0.01 * 10**-0.6, rel=1e-5)
    assert method["dgsa_range"] == pytest.approx([0.7, 1.0])


@pytest.mark.parametrize("value", ["1.5", "-0.2", "nan"])
def test_a_fidelity_outside_the_unit_interval_is_a_usage_error(tmp_path, value):
    done = run_restore(tmp_path / "o", "--fidelity", value)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--fidelity" in done.stderr and "[0, 1]" in done.stderr
    assert "closer to the input" in done.stderr  # the message says what the scale means
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()


def test_a_fidelity_that_is_not_a_number_is_a_usage_error(tmp_path):
    done = run_restore(tmp_path / "o", "--fidelity", "high")
    assert done.returncode == 2 and "--fidelity" in done.stderr
    assert not (tmp_path / "o").exists()


def test_the_difface_baseline_refuses_a_fidelity(tmp_path):
    preset = (REPO / "src" / "dynface" / "configs" / "tiny-random.yaml").read_text()
    config = tmp_path / "difface.yaml"
    config.write_text(preset.replace("mode: dynface", "mode: difface"))
    done = run_restore(tmp_path / "o", "--config", str(config), "--fidelity", "0.7")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--fidelity" in done.stderr and "difface" in done.stderr
    assert not (tmp_path / "o" / "final").exists()


def test_demo_takes_the_fidelity_too(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1", COLUMNS="200")
    command = [sys.executable, "-m", "dynface", "demo", "-o", str(tmp_path / "o")]
    done = subprocess.run(
        [*command, "--config", "tiny-random", "--steps", "ddim5", "--fidelity", "0.8"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    trace = json.loads((tmp_path / "o" / "traces" / "astronaut_degraded.json").read_text())
    assert trace["faces"][0]["method"]["fidelity"] == 0.8
