"""Whole photos with the Real-ESRGAN background: the CLI as a process and the photo API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dynface.api import Restorer
from dynface.background import make_background_upsampler
from dynface.config import load_config
from dynface.io import read_image
from dynface.photos import RestoreOptions, restore_photos

from .conftest import REPO, TEST_DATA


def tiny_background(photo: np.ndarray, scale: float) -> np.ndarray:
    """What the tiny-random config's Real-ESRGAN gives for `photo` (float in [0, 1])."""
    config = load_config("tiny-random")
    upsampler = make_background_upsampler(
        "realesrgan", config["background"], "cpu", scale=scale, seed=config["random_weights_seed"]
    )
    out, _ = upsampler.upscale(photo, scale)
    return out.astype(np.float32) / 255.0


def test_cli_process_restores_a_photo_on_a_real_esrgan_background(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "dynface", "restore", str(TEST_DATA / "astronaut.png")]
    command += ["-o", str(out), "--config", "tiny-random", "--steps", "ddim5", "--device", "cpu"]
    command += ["--upscale", "2", "--bg-upsampler", "realesrgan", "--save-trace", "--seed", "0"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "background realesrgan (cpu, float32)" in done.stdout
    final = read_image(out / "final" / "astronaut.png").pixels
    assert final.shape == (1024, 1024, 3)
    trace = json.loads((out / "traces" / "astronaut.json").read_text())
    assert trace["background"]["upsampler"] == "realesrgan"
    assert trace["background"]["network"] == "random" and trace["background"]["seconds"] > 0
    # Away from the face the photo is Real-ESRGAN's output; the face was pasted on top of it.
    photo = read_image(TEST_DATA / "astronaut.png").pixels
    expected = tiny_background(photo, 2)
    assert np.abs(final[-100:, :100] - expected[-100:, :100]).max() <= 1.5 / 255
    box = np.round(np.array(trace["faces"][0]["box"]) * 2).astype(int)
    face = (slice(box[1] + 20, box[3] - 20), slice(box[0] + 20, box[2] - 20))
    assert np.abs(final[face] - expected[face]).mean() > 0.02


@pytest.fixture(scope="module")
def tiny() -> Restorer:
    return Restorer.from_config("tiny-random", device="cpu", overrides={"respacing": "ddim5"})


@pytest.mark.parametrize(
    ("choice", "upsampler"), [("realesrgan", "realesrgan"), ("none", "bicubic")]
)
def test_photo_api_option_picks_the_background(tiny, tmp_path, choice, upsampler):
    options = RestoreOptions(upscale=1.5, seed=0, save_trace=True, bg_upsampler=choice)
    photo_path = TEST_DATA / "grace_hopper.jpg"
    [result] = restore_photos([photo_path], tiny, tmp_path, options)
    assert result.status == "ok", result.message
    final = read_image(tmp_path / "final" / "grace_hopper.png").pixels
    assert final.shape == (900, 768, 3)
    trace = json.loads((tmp_path / "traces" / "grace_hopper.json").read_text())
    assert trace["background"]["upsampler"] == upsampler
    if choice == "realesrgan":
        expected = tiny_background(read_image(photo_path).pixels, 1.5)
        assert np.abs(final[-60:, :60] - expected[-60:, :60]).max() <= 1.5 / 255
        assert "x2 network, then resized to x1.5" in trace["background"]["note"]


def test_photo_api_default_on_a_cpu_is_bicubic_and_the_trace_says_why(tiny, tmp_path):
    options = RestoreOptions(upscale=2, seed=0, save_trace=True)
    [result] = restore_photos([TEST_DATA / "grace_hopper.jpg"], tiny, tmp_path, options)
    assert result.status == "ok"
    background = json.loads((tmp_path / "traces" / "grace_hopper.json").read_text())["background"]
    assert background["upsampler"] == "bicubic" and "no GPU" in background["note"]


def test_missing_real_esrgan_weights_fail_before_any_face_is_restored(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "dynface", "restore", str(TEST_DATA / "astronaut.png")]
    command += ["-o", str(out), "--config", "tiny-random", "--device", "cpu"]
    config = load_config("tiny-random")
    config["background"] = {"x2": {"weights": "RealESRGAN_x2plus", "params": {"scale": 2}}}
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    command[command.index("tiny-random")] = str(tmp_path / "c.yaml")
    command += ["--bg-upsampler", "realesrgan"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "DYNFACE_HOME": str(tmp_path / "home")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1
    assert "RealESRGAN_x2plus.pth is not available" in done.stderr
    assert "dynface weights download RealESRGAN_x2plus" not in done.stderr  # offline: say so
    assert not Path(out).exists() or not any(Path(out).rglob("*.png"))
