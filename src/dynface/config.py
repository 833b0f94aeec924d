"""Restoration configs: one typed tree (`RestoreConfig`) that owns its defaults and its bounds.

A config names the two architectures (DifFace parameter names), their weight files (registry
names, paths, or `random` for seeded random weights), the respacing and every method setting.
It comes from a packaged preset or a YAML file, with dotted-key overrides. Every section rejects
unknown keys, wrong types and values out of bounds when it is built, with one sentence that names
the key (`ConfigError`, exit status 2), before any network is built or any face is read.

The `restorer` section configures RM, the restoration module (DifFace's SwinIR); the key keeps
its historical name so existing configs keep working.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dynface.errors import UsageError
from dynface.units import (
    DIFFACE_ETA,
    DIFFACE_START_T,
    DIFFUSION_STEPS,
    LAM,
    MU,
    REFERENCE_SIZE,
    S_MAX,
    S_MIN,
)

PRESETS = ("default", "tiny-random")
#: Short override names accepted besides dotted keys (as the CLI flags use them).
ALIASES = {
    "respacing": "diffusion.respacing",
    "steps": "diffusion.respacing",
    "solver": "diffusion.solver",
    "mode": "method.mode",
    "eta": "method.eta",
    "guidance": "method.guidance",
    "estimator": "method.estimator",
    "dgsa": "method.dgsa",
}
GUIDANCE_MODES = ("closed-form", "gradient", "none")
METHOD_MODES = ("dynface", "difface")
ESTIMATORS = ("learned", "zero-shot")
DGSA_KINDS = ("heuristic", "learned", "none")
SCHEDULES = ("linear", "cosine")
#: Samplers (dynface.diffusion.SOLVERS): DDIM stays the default until real weights say otherwise;
#: dpmpp2m is DPM-Solver++(2M) on the guided x0, SDE form where eta > 0 (docs/method.md).
SOLVERS = ("ddim", "dpmpp2m")
#: Old solver names and what they run now: dpm2m (eps extrapolation, unstable at few steps and
#: eta > 0) was retired; configs that name it get DPM-Solver++(2M).
SOLVER_ALIASES = {"dpm2m": "dpmpp2m"}
#: The recommended few-step setting (dynface.diffusion.FAST), `--steps fast`: (solver, respacing).
#: 14 steps uniform in log-SNR: at most 14 evaluations a face (11-12 for starts t 740-840).
FAST = ("dpmpp2m", "logsnr14")
FAST_NAME = "fast"
#: What --steps accepts: "fast", "ddimN", "logsnrN", or step counts such as "250" or "10,20".
STEPS_PATTERN = r"fast|(ddim|logsnr)?\d+(,\d+)*"


def steps_respacing(steps: str) -> str:
    """The respacing a --steps value runs on ("fast": FAST's)."""
    return FAST[1] if steps.strip() == FAST_NAME else steps.strip()


#: Bounds that keep a config from exhausting memory or time before it fails.
MAX_IMAGE_SIZE = 4096
MAX_TARGETS = 8
MAX_DIFFUSION_STEPS = 10_000
MAX_NET_INT = 8192


class ConfigError(UsageError):
    """A config that cannot be used; the message names the key and the accepted values."""


def _fail(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{key} must be {expected}, got {value!r}")


def check_int(key: str, value: Any, low: int, high: int) -> int:
    """`value` as an int in [low, high] (bools and floats refused), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(key, f"an integer in [{low}, {high}]", value)
    return value


def check_number(key: str, value: Any, low: float, high: float, *, open_low: bool = False) -> float:
    """`value` as a finite float in [low, high] (or (low, high] when `open_low`)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low < value if open_low else low <= value) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise _fail(key, f"a number in {bracket}{low}, {high}]", value)
    return float(value)


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    """`value` as one of `choices`."""
    if value not in choices:
        raise _fail(key, f"one of {', '.join(choices)}", value)
    return str(value)


def solver_name(solver: str) -> str:
    """The solver `solver` runs (an old name of SOLVER_ALIASES maps to its successor); a
    ValueError naming the choices for anything else."""
    name = SOLVER_ALIASES.get(solver, solver)
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; use {' or '.join(SOLVERS)}")
    return name


def check_optional_path(key: str, value: Any) -> str | None:
    """None, or a non-empty string (a file path, checked when the file is opened)."""
    if value is None:
        return None
    if not isinstance(value, str | Path) or not str(value):
        raise _fail(key, "a file path or null", value)
    return str(value)


@dataclass(frozen=True)
class NetworkConfig:
    """One network: its weights (registry name, path or `random`) and constructor arguments."""

    weights: str
    params: dict[str, Any]
    section: str = field(default="prior", repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.weights, str | Path) or not str(self.weights):
            raise _fail(
                f"{self.section}.weights", "a weight name, a path or 'random'", self.weights
            )
        if not isinstance(self.params, Mapping):
            raise _fail(f"{self.section}.params", "a mapping of constructor arguments", self.params)
        from dynface.nets.params import check_params

        check_params(self.section, dict(self.params), ConfigError)


@dataclass(frozen=True)
class DiffusionConfig:
    """The Gaussian diffusion of the prior and the respacing the sampler runs on."""

    steps: int = DIFFUSION_STEPS
    schedule: str = "linear"
    respacing: str = "ddim250"
    solver: str = "ddim"

    def __post_init__(self) -> None:
        check_int("diffusion.steps", self.steps, 2, MAX_DIFFUSION_STEPS)
        check_choice("diffusion.schedule", self.schedule, SCHEDULES)
        check_choice("diffusion.solver", self.solver, SOLVERS + tuple(SOLVER_ALIASES))
        object.__setattr__(self, "solver", solver_name(self.solver))
        if isinstance(self.respacing, bool) or not isinstance(self.respacing, str | int):
            raise _fail(
                "diffusion.respacing", "'ddimN' or step counts such as '250'", self.respacing
            )
        object.__setattr__(self, "respacing", str(self.respacing))
        from dynface.diffusion.schedule import respaced_timesteps

        try:
            respaced_timesteps(self.steps, self.respacing, self.schedule)
        except ValueError as exc:
            raise ConfigError(f"diffusion.respacing {self.respacing!r}: {exc}") from None

    @property
    def timesteps(self) -> list[int]:
        """The kept original timesteps, ascending."""
        from dynface.diffusion.schedule import respaced_timesteps

        return respaced_timesteps(self.steps, self.respacing, self.schedule)


@dataclass(frozen=True)
class MethodConfig:
    """The `method` section: DynFaceRestore's settings (docs/method.md), or the DifFace baseline."""

    mode: str = "dynface"
    estimator: str = "learned"
    estimator_weights: str | None = None
    num_targets: int = 3
    s_min: float = S_MIN
    dsst: str = "default"
    guidance: str = "closed-form"
    mu: float = MU
    lam: float = LAM
    refine_s: bool = False
    dgsa: str = "heuristic"
    dgsa_weights: str | None = None
    eta: str | float = "dynamic"
    difface_start_t: int = DIFFACE_START_T
    difface_start_index: int | None = None
    difface_eta: float = DIFFACE_ETA

    def __post_init__(self) -> None:
        check_choice("method.mode", self.mode, METHOD_MODES)
        check_choice("method.estimator", self.estimator, ESTIMATORS)
        check_optional_path("method.estimator_weights", self.estimator_weights)
        check_int("method.num_targets", self.num_targets, 1, MAX_TARGETS)
        check_number("method.s_min", self.s_min, 0.0, S_MAX)
        if not isinstance(self.dsst, str) or not self.dsst:
            raise _fail("method.dsst", "'default' or the path of a DSST table", self.dsst)
        check_choice("method.guidance", self.guidance, GUIDANCE_MODES)
        check_number("method.mu", self.mu, 0.0, 1e6, open_low=True)
        check_number("method.lam", self.lam, 0.0, 1.0, open_low=True)
        if self.refine_s is not False:
            raise ConfigError(
                "method.refine_s was removed: refining s_j against x0 drove it to s_min within "
                "a few steps whenever x0 was blurrier than the guidance (see docs/method.md); "
                "delete the key or set it to false"
            )
        check_choice("method.dgsa", self.dgsa, DGSA_KINDS)
        check_optional_path("method.dgsa_weights", self.dgsa_weights)
        if self.dgsa == "learned" and not self.dgsa_weights:
            raise ConfigError(
                "method.dgsa: learned needs method.dgsa_weights (a .safetensors file from "
                "`dynface train dgsa`); or use dgsa: heuristic"
            )
        if self.eta != "dynamic":
            check_number("method.eta", self.eta, 0.0, 1.0)
        check_int("method.difface_start_t", self.difface_start_t, 1, MAX_DIFFUSION_STEPS)
        if self.difface_start_index is not None:
            check_int(
                "method.difface_start_index", self.difface_start_index, 1, MAX_DIFFUSION_STEPS
            )
        check_number("method.difface_eta", self.difface_eta, 0.0, 1.0)

    @property
    def fixed_eta(self) -> float | None:
        """The eta override, or None for the dynamic eta."""
        return None if self.eta == "dynamic" else float(self.eta)


#: Real-ESRGAN's official files: the background networks when a config names none.
BACKGROUND_WEIGHTS = {"x2": "RealESRGAN_x2plus", "x4": "RealESRGAN_x4plus"}
MAX_TILE = 4096


def _official_background(key: str) -> NetworkConfig:
    params = {"scale": int(key[1:])}
    return NetworkConfig(BACKGROUND_WEIGHTS[key], params, section=f"background.{key}")


@dataclass(frozen=True)
class BackgroundConfig:
    """The `background` section: Real-ESRGAN networks for `--bg-upsampler realesrgan`.

    `x2` serves upscale factors up to 2, `x4` the others (either may be null); `tile` is the tile
    side in input pixels (null: 512 on a GPU, 256 on a CPU) and `overlap` what tiles share.
    """

    x2: NetworkConfig | None = field(default_factory=lambda: _official_background("x2"))
    x4: NetworkConfig | None = field(default_factory=lambda: _official_background("x4"))
    tile: int | None = None
    overlap: int = 32

    def __post_init__(self) -> None:
        if self.x2 is None and self.x4 is None:
            raise ConfigError("config section 'background' needs x2 or x4 (a Real-ESRGAN network)")
        for key in ("x2", "x4"):
            net = getattr(self, key)
            if net is not None and net.params.get("scale", 4) != int(key[1:]):
                raise _fail(f"background.{key}.params.scale", key[1:], net.params.get("scale"))
        if self.tile is not None:
            check_int("background.tile", self.tile, 16, MAX_TILE)
        check_int("background.overlap", self.overlap, 0, (self.tile or 256) // 2)

    @classmethod
    def from_dict(cls, data: Any) -> BackgroundConfig:
        """Build the section from YAML data; unknown keys are a ConfigError naming them."""
        known = _known(cls, {} if data is None else data, "background.")
        for key in ("x2", "x4"):
            section = known.get(key)
            if section is None:
                continue
            prefix = f"background.{key}"
            net = _known(NetworkConfig, section, prefix + ".", exclude=("section",))
            missing = sorted({"weights", "params"} - set(net))
            if missing:
                raise ConfigError(f"config section '{prefix}' needs {' and '.join(missing)}")
            known[key] = NetworkConfig(section=prefix, **net)
        return cls(**known)


@dataclass(frozen=True)
class RestoreConfig:
    """A whole restoration config; `to_dict()` gives the YAML-shaped mapping back."""

    prior: NetworkConfig
    restorer: NetworkConfig
    name: str = "custom"
    image_size: int = REFERENCE_SIZE
    random_weights_seed: int = 0
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)

    def __post_init__(self) -> None:
        size = check_int("image_size", self.image_size, 32, MAX_IMAGE_SIZE)
        if size % 32:
            raise _fail("image_size", "a multiple of 32", size)
        check_int("random_weights_seed", self.random_weights_seed, 0, 2**63 - 1)
        start = self.method.difface_start_index
        count = len(self.diffusion.timesteps)
        if start is not None and start >= count:
            raise ConfigError(
                f"method.difface_start_index must be below the {count} respaced steps of "
                f"{self.diffusion.respacing!r}, got {start}; or use method.difface_start_t"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RestoreConfig:
        """Build and check every section; unknown keys anywhere are a ConfigError."""
        nested = ("prior", "restorer", "diffusion", "method", "background")
        top = _known(cls, data, "", exclude=nested)
        for net in ("prior", "restorer"):
            section = data.get(net)
            if not isinstance(section, Mapping):
                raise ConfigError(f"config section '{net}' is missing (it needs weights, params)")
            known = _known(NetworkConfig, section, f"{net}.", exclude=("section",))
            missing = sorted({"weights", "params"} - set(known))
            if missing:
                raise ConfigError(f"config section '{net}' needs {' and '.join(missing)}")
            top[net] = NetworkConfig(section=net, **known)
        top["diffusion"] = _section(DiffusionConfig, data.get("diffusion", {}), "diffusion")
        top["method"] = _section(MethodConfig, _method_dict(data.get("method", {})), "method")
        top["background"] = BackgroundConfig.from_dict(data.get("background"))
        return cls(**top)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain YAML/JSON-ready data (every default filled in)."""
        out = asdict(self)
        for net in ("prior", "restorer"):
            out[net].pop("section")
        for net in ("x2", "x4"):
            if out["background"][net] is not None:
                out["background"][net].pop("section")
        return out


_T = TypeVar("_T")


def _known(
    cls: type, data: Mapping[str, Any], prefix: str, exclude: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The keys of `data` that `cls` declares; any other key is a ConfigError naming it."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section '{prefix.rstrip('.') or 'top'}' must be a mapping")
    names = [f.name for f in fields(cls) if f.name not in exclude]
    unknown = sorted(str(key) for key in data if key not in names and key not in exclude)
    if unknown:
        where = f"in '{prefix.rstrip('.')}'" if prefix else "at the top level"
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)} {where}; "
            f"known: {', '.join(names + list(exclude))}"
        )
    return {key: data[key] for key in data if key in names}


def _section(cls: type[_T], data: Any, prefix: str) -> _T:
    """Build one flat section from its YAML mapping (None: every default)."""
    return cls(**_known(cls, {} if data is None else data, prefix + "."))


def _method_dict(data: Any) -> Any:
    """Accept the older `estimator: {name: learned, weights: PATH}` form."""
    if not isinstance(data, Mapping) or not isinstance(data.get("estimator"), Mapping):
        return data
    spec = dict(data["estimator"])
    unknown = sorted(set(spec) - {"name", "weights"})
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in method.estimator")
    out = dict(data)
    out["estimator"] = spec.get("name", "learned")
    out["estimator_weights"] = spec.get("weights")
    return out


def load_restore_config(
    path_or_preset: str | Path = "default", overrides: Mapping[str, Any] | None = None
) -> RestoreConfig:
    """Read a preset name or YAML path, apply overrides (dotted keys or aliases), check it all."""
    text = _config_text(path_or_preset)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path_or_preset}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path_or_preset}: a config must be a YAML mapping")
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, ALIASES.get(key, key), value)
    _resolve_fast(data, overrides or {})
    return RestoreConfig.from_dict(data)


def _resolve_fast(data: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """Respacing "fast" names FAST: its respacing and its solver (a solver given as an override,
    e.g. --solver, still wins)."""
    section = data.get("diffusion")
    if not isinstance(section, dict) or section.get("respacing") != FAST_NAME:
        return
    solver_given = any(overrides.get(key) is not None for key in ("solver", "diffusion.solver"))
    section["respacing"] = FAST[1]
    if not solver_given:
        section["solver"] = FAST[0]


def load_config(
    path_or_preset: str | Path = "default", overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`load_restore_config(...).to_dict()`: the checked config as plain data, defaults filled."""
    return load_restore_config(path_or_preset, overrides).to_dict()


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
