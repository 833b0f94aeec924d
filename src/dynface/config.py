"""Restoration configs: packaged presets or user YAML files, with dotted-key overrides.

A config names the two architectures (DifFace parameter names), their weight files (registry
names, paths, or `random` for seeded random weights), the respacing and every method setting.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dynface.errors import UsageError

PRESETS = ("default", "tiny-random")
#: Short override names accepted besides dotted keys (as the CLI flags use them).
ALIASES = {
    "respacing": "diffusion.respacing",
    "steps": "diffusion.respacing",
    "mode": "method.mode",
    "eta": "method.eta",
    "guidance": "method.guidance",
    "estimator": "method.estimator",
    "dgsa": "method.dgsa",
}
GUIDANCE_MODES = ("closed-form", "gradient", "none")
METHOD_MODES = ("dynface", "difface")


class ConfigError(UsageError):
    """A config that cannot be used; the message names the key and the accepted values."""


def load_config(
    path_or_preset: str | Path = "default", overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Read a preset name or YAML path, apply overrides (dotted keys or aliases), validate."""
    text = _config_text(path_or_preset)
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path_or_preset}: not valid YAML ({exc})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path_or_preset}: a config must be a YAML mapping")
    config = copy.deepcopy(config)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(config, ALIASES.get(key, key), value)
    validate(config)
    return config


def _config_text(path_or_preset: str | Path) -> str:
    if str(path_or_preset) in PRESETS:
        return resources.files("dynface.configs").joinpath(f"{path_or_preset}.yaml").read_text()
    path = Path(path_or_preset)
    if not path.is_file():
        raise ConfigError(
            f"{path_or_preset}: neither a preset ({', '.join(PRESETS)}) nor a config file"
        )
    return path.read_text()


def _set_dotted(config: dict[str, Any], dotted: str, value: Any) -> None:
    node = config
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted}: {part} is not a section")
    node[leaf] = value


def validate(config: Mapping[str, Any]) -> None:
    """Raise ConfigError for a missing section or a value outside its accepted set."""
    for section in ("prior", "restorer", "diffusion", "method"):
        if not isinstance(config.get(section), Mapping):
            raise ConfigError(f"config section '{section}' is missing")
    for net in ("prior", "restorer"):
        if "params" not in config[net] or "weights" not in config[net]:
            raise ConfigError(f"config section '{net}' needs 'params' and 'weights'")
    method = config["method"]
    if method.get("mode", "dynface") not in METHOD_MODES:
        raise ConfigError(f"method.mode must be one of {METHOD_MODES}, got {method['mode']!r}")
    if method.get("guidance", "closed-form") not in GUIDANCE_MODES:
        raise ConfigError(
            f"method.guidance must be one of {GUIDANCE_MODES}, got {method['guidance']!r}"
        )
    if method.get("dgsa") == "learned" and not method.get("dgsa_weights"):
        raise ConfigError(
            "method.dgsa: learned needs method.dgsa_weights (a .safetensors file from "
            "`dynface train dgsa`); or use dgsa: heuristic"
        )
    eta = method.get("eta", "dynamic")
    if eta != "dynamic" and not (isinstance(eta, int | float) and 0 <= eta <= 1):
        raise ConfigError(f"method.eta must be 'dynamic' or a number in [0, 1], got {eta!r}")
    size = config.get("image_size", 512)
    if not isinstance(size, int) or size < 32 or size % 32:
        raise ConfigError(f"image_size must be a multiple of 32, got {size!r}")
