"""Training configuration: one YAML file per run, parsed into a checked dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

TASKS = ("sde", "tm", "se", "dgsa")
PRECISIONS = ("no", "fp16", "bf16")


@dataclass
class DataSpec:
    """Where clean faces come from: folders/files/globs, or a data manifest with filters."""

    sources: list[str] = field(default_factory=list)
    manifest: str | None = None
    exclude: list[str] = field(default_factory=list)
    only: list[str] = field(default_factory=list)

    def paths(self, base: Path) -> list[Path]:
        """Resolve to image paths (relative entries are relative to `base`, the working folder)."""
        from dynface.data.datasets import manifest_faces
        from dynface.io import list_images

        found: list[Path] = []
        if self.manifest:
            found += manifest_faces(base / self.manifest, self.exclude, self.only)
        if self.sources:
            found += list_images([str(base / s) for s in self.sources])
        return found


@dataclass
class TrainConfig:
    """Every knob of a training run; `task_args` and `model` go to the task (see tasks.py)."""

    task: str
    output_dir: str = "runs/train"
    train_data: DataSpec = field(default_factory=DataSpec)
    val_data: DataSpec = field(default_factory=DataSpec)
    image_size: int = 256
    seed: int = 0
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    mixed_precision: str = "no"
    num_workers: int = 0
    log_every: int = 10
    val_every: int = 200
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    max_minutes: float | None = None
    model: dict[str, Any] = field(default_factory=dict)
    task_args: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd, repr=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {', '.join(PRECISIONS)}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")

    @property
    def pixel_scale(self) -> float:
        """Working pixels per pixel at 512: blur levels are defined at 512."""
        return self.image_size / 512

    @property
    def out(self) -> Path:
        """The output folder (relative paths are relative to the working folder)."""
        return self.base_dir / self.output_dir

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path = Path(".")) -> TrainConfig:
        """Build from a plain dict; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)} - {"base_dir"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        data = dict(data)
        for key in ("train_data", "val_data"):
            spec = data.get(key) or {}
            if isinstance(spec, list):
                spec = {"sources": spec}
            data[key] = DataSpec(**spec)
        return cls(**data, base_dir=base_dir)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """Read a YAML config; `overrides` replace top-level keys (e.g. from the CLI)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or exc
            raise ValueError(f"not valid YAML{where}: {problem}") from None
        if not isinstance(data, dict):
            raise ValueError("a training config must be a YAML mapping of keys to values")
        data.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.from_dict(data, base_dir=Path.cwd())

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for saving next to checkpoints (paths kept as written)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "base_dir"}
        for key in ("train_data", "val_data"):
            out[key] = {f.name: getattr(out[key], f.name) for f in fields(DataSpec)}
        return out
