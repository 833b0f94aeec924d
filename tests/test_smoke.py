"""The smoke preset runs what the default config runs, and its docs say what it shows."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from dynface.config import load_restore_config
from dynface.io import read_image


def test_tiny_random_demo_exercises_the_default_method(tmp_path):
    default = load_restore_config("default").method
    tiny = load_restore_config("tiny-random").method
    assert tiny == default  # the same method settings: learned estimator, DSST, guidance, DGSA
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dynface",
            "demo",
            "-o",
            str(tmp_path),
            "--config",
            "tiny-random",
            "--steps",
            "ddim5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "flat patches" in " ".join(done.stdout.split())
    for path in sorted((tmp_path / "traces").glob("*.json")):
        record = json.loads(path.read_text())
        assert record["face_size"] == 32  # docs: 32 px crops
        method = record["faces"][0]["method"]
        # The shipped learned estimator reads the degraded samples as blurred: guided sampling
        # from a late start, not s* = 0 and a single step.
        assert method["estimator"] == "learned"
        assert 1.0 < method["s_star"] < 16.0 and method["nfe"] > 1 and method["start_t"] > 400
        assert method["s_levels"][0] > method["s_levels"][-1]
    restored = read_image(tmp_path / "faces" / "restored" / "astronaut_degraded_00.png").pixels
    assert restored.shape == (32, 32, 3)
    assert float(np.std(restored, axis=(0, 1)).max()) < 0.02  # docs: a flat patch
