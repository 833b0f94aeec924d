"""Trainers: two-process (gloo, CPU) runs with resume, and a loss that falls on real faces."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dynface.io import read_image, write_image
from dynface.train.config import TrainConfig
from dynface.train.loop import train

from .conftest import REPO, TEST_DATA


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder with four 64 px variants of the public-domain astronaut face in faces/."""
    work = tmp_path_factory.mktemp("train")
    base = read_image(TEST_DATA / "astronaut_face.png").pixels
    variants = [
        base[::4, ::4],
        base[::4, ::-4],
        base[32:, 32:][::3, ::3][:64, :64],
        base[::4, ::4] * 0.8,
    ]
    for i, v in enumerate(variants):
        write_image(work / "faces" / f"f{i}.png", v)
    return work


@pytest.mark.slow
def test_two_process_runs_of_every_trainer_finish_and_resume(workdir):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(REPO / "tests" / "_train_all.py"),
        str(workdir),
        "sde,tm,se,dgsa",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert results.pop("world_size") == 2
    assert results == {t: {"final": True, "step": 3} for t in ("sde", "tm", "se", "dgsa")}
    with open(workdir / "runs/sde/log.csv") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3]
    assert (workdir / "runs/sde/loss.png").is_file()
    assert "without DISTS" in done.stdout


def test_sde_loss_falls_on_real_faces(workdir, tmp_path):
    torch.manual_seed(0)
    config = TrainConfig.from_dict(
        {
            "task": "sde",
            "output_dir": str(tmp_path / "run"),
            "train_data": ["faces"],
            "image_size": 64,
            "batch_size": 8,
            "steps": 40,
            "lr": 3e-3,
            "warmup_steps": 5,
            "log_every": 1,
            "val_every": 1000,
            "ckpt_every": 1000,
            "ema_decay": 0,
            "model": {"work_size": 64, "channels": [8, 16, 32]},
            "task_args": {"s_range": [0.0, 16.0]},
        },
        base_dir=workdir,
    )
    train(config)
    with open(tmp_path / "run/log.csv") as handle:
        losses = [float(r["loss"]) for r in csv.DictReader(handle)]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.7 * first, (first, last)


def test_config_rejects_unknown_keys_and_tasks():
    with pytest.raises(ValueError, match="unknown config keys: colour"):
        TrainConfig.from_dict({"task": "sde", "colour": 1})
    with pytest.raises(ValueError, match="unknown task"):
        TrainConfig.from_dict({"task": "gan"})


def test_bf16_mixed_precision_runs_on_cpu(workdir, tmp_path):
    # accelerate fixes the precision once per process, so this run gets a process of its own.
    config = {
        "task": "tm",
        "output_dir": str(tmp_path / "run"),
        "train_data": [str(workdir / "faces")],
        "val_data": [str(workdir / "faces")],
        "image_size": 32,
        "batch_size": 2,
        "steps": 2,
        "val_every": 2,
        "mixed_precision": "bf16",
        "model": {"work_size": 32, "channels": [8, 16]},
    }
    (tmp_path / "bf16.yaml").write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "dynface", "train", "tm", "--config", str(tmp_path / "bf16.yaml")]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run/final.safetensors").is_file()
    with open(tmp_path / "run/val.csv") as handle:
        row = next(csv.DictReader(handle))
    assert 5 < float(row["val_psnr"]) < 60
