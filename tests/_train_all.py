"""Run every trainer for 2 steps, then resume each to step 3 (launched by test_train.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from dynface.train.checkpoint import latest_checkpoint, load_state
from dynface.train.config import TrainConfig
from dynface.train.loop import train

TINY = {
    "sde": {"image_size": 32, "model": {"work_size": 32, "channels": [8, 8, 16]}},
    "tm": {"image_size": 32, "model": {"work_size": 32, "channels": [8, 16]}},
    "se": {
        "image_size": 32,
        "model": {
            "tm": {"work_size": 32, "channels": [8, 16]},
            "sde": {"work_size": 32, "channels": [8, 8, 16]},
        },
    },
    "dgsa": {
        "image_size": 64,
        "model": {"hidden": 8},
        "task_args": {"prior_config": "tiny-random", "s_range": [2.0, 8.0]},
    },
}


def main(work: Path, tasks: list[str]) -> None:
    torch.set_num_threads(1)
    results = {}
    for task in tasks:
        raw = {
            "task": task,
            "output_dir": f"runs/{task}",
            "train_data": ["faces"],
            "val_data": ["faces"],
            "batch_size": 2,
            "steps": 2,
            "log_every": 1,
            "val_every": 2,
            "ckpt_every": 2,
            "warmup_steps": 1,
            "ema_decay": 0.9,
            **TINY[task],
        }
        if task == "se":
            raw["task_args"] = {"init_sde": "runs/sde/final.safetensors"}
        train(TrainConfig.from_dict(raw, base_dir=work))
        raw["steps"] = 3
        final = train(TrainConfig.from_dict(raw, base_dir=work), resume=True)
        ckpt = latest_checkpoint(final.parent / "checkpoints")
        results[task] = {"final": final.is_file(), "step": int(load_state(ckpt)["step"])}
    if torch.distributed.is_initialized():
        results["world_size"] = torch.distributed.get_world_size()
        if torch.distributed.get_rank() != 0:
            return
    (work / "results.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2].split(","))
