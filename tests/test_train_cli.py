"""`dynface train` as a user runs it: progress lines in a log, and the SDE-before-SE order."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from dynface.io import read_image, write_image

from .conftest import REPO, TEST_DATA


def _dynface(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "dynface", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def _config(work: Path, task: str, **extra: object) -> Path:
    base = read_image(TEST_DATA / "astronaut_face.png").pixels
    for i, pixels in enumerate((base[::4, ::4], base[::4, ::-4])):
        write_image(work / "faces" / f"f{i}.png", pixels)
    raw = {
        "task": task,
        "output_dir": f"runs/{task}",
        "train_data": ["faces"],
        "val_data": ["faces"],
        "image_size": 32,
        "batch_size": 2,
        "steps": 2,
        "log_every": 1,
        "val_every": 1,
        "ckpt_every": 2,
        "warmup_steps": 1,
        **extra,
    }
    path = work / f"{task}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_piped_training_prints_a_line_per_validation(tmp_path: Path) -> None:
    model = {"work_size": 32, "channels": [8, 8, 16]}
    config = _config(tmp_path, "sde", model=model)
    done = _dynface(tmp_path, "train", "sde", "--config", str(config))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("train sde:")]
    assert lines[0] == "train sde: steps 1-2; a line per validation"
    assert [line.split(" (")[0] for line in lines[1:]] == [
        "train sde: step 1/2",
        "train sde: step 2/2",
    ]
    assert all("val_mae_px" in line for line in lines[1:])
    assert "\x1b[" not in done.stderr  # no terminal control codes in a log


def test_se_before_sde_says_the_sde_run_comes_first(tmp_path: Path) -> None:
    model = {"tm": {"work_size": 32, "channels": [8, 16]}, "sde": {"work_size": 32}}
    config = _config(
        tmp_path, "se", model=model, task_args={"init_sde": "runs/sde/final.safetensors"}
    )
    done = _dynface(tmp_path, "train", "se", "--config", str(config))
    said = " ".join(done.stderr.split())
    assert done.returncode == 1, said
    assert "se training starts from the SDE trained first" in said
    assert "run `dynface train sde --config sde` first" in said and "Traceback" not in said


def test_bar_progress_on_a_terminal_shows_steps_loss_and_validation() -> None:
    from rich.console import Console

    from dynface.cli.train import BarProgress

    console = Console(force_terminal=True, file=io.StringIO(), width=120)
    with BarProgress("sde", console) as bar:
        bar.started(1, 4)
        bar.stepped(2, 0.25)
        bar.validated(2, {"val_mae_px": 1.5})
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", console.file.getvalue())
    assert "step 2: val_mae_px 1.5" in shown and "loss 0.25" in shown and "2/4" in shown


def test_config_without_images_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    config = _config(tmp_path, "sde", model={"work_size": 32, "channels": [8, 8, 16]})
    raw = yaml.safe_load(config.read_text())
    (tmp_path / "empty").mkdir()
    config.write_text(yaml.safe_dump({**raw, "train_data": ["empty"]}))
    done = _dynface(tmp_path, "train", "sde", "--config", str(config))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "train_data lists no images" in done.stderr
