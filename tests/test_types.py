"""mypy --strict passes on the method core, the sampler, the config tree and the public API."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO


def test_method_diffusion_and_api_pass_mypy_strict():
    # The files and options live in pyproject.toml ([tool.mypy]); the cache keeps reruns fast.
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues found" in done.stdout
