"""The typed config tree: every section owns its defaults and refuses bad keys, types and bounds."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from dynface.config import (
    ConfigError,
    MethodConfig,
    RestoreConfig,
    load_config,
    load_restore_config,
)
from dynface.errors import UsageError

from .conftest import REPO, TEST_DATA

BAD = [
    ({"respacingg": "ddim10"}, "top level", "respacingg"),
    ({"diffusion.respacingg": "ddim10"}, "diffusion", "diffusion.respacingg"),
    ({"prior.weight": "x"}, "prior", "prior.weight"),
    ({"restorer.param": {}}, "restorer", "restorer.param"),
    ({"prior.params.model_chanels": 8}, "prior.params", "model_chanels"),
    ({"restorer.params.embed_dim": "wide"}, "restorer.params.embed_dim", "'wide'"),
    ({"diffusion.steps": "abc"}, "diffusion.steps", "'abc'"),
    ({"diffusion.steps": 10**12}, "diffusion.steps", "1000000000000"),
    ({"diffusion.steps": "1e12"}, "diffusion.steps", "'1e12'"),
    ({"method.s_min": "low"}, "method.s_min", "'low'"),
    ({"image_size": "2^20"}, "image_size", "'2^20'"),
    ({"image_size": 2**20}, "image_size", "1048576"),
    ({"image_size": 48}, "image_size", "multiple of 32"),
    ({"method.num_targets": 10**9}, "method.num_targets", "1000000000"),
    ({"method.num_targets": 2.0}, "method.num_targets", "2.0"),
    ({"method.mu": float("nan")}, "method.mu", "nan"),
    ({"method.lam": float("inf")}, "method.lam", "inf"),
    ({"method.eta": 2}, "method.eta", "2"),
    ({"method.refine_s": True}, "method.refine_s", "removed"),
    ({"method.difface_start_index": 400}, "method.difface_start_index", "25 respaced steps"),
    ({"prior.params.image_size": 2**20}, "prior.params.image_size", "1048576"),
]


@pytest.mark.parametrize(("override", "key", "shown"), BAD)
def test_every_bad_value_is_one_sentence_naming_its_key(override, key, shown):
    with pytest.raises(ConfigError) as err:
        load_restore_config("tiny-random", override)
    message = str(err.value)
    assert key in message and shown in message
    assert "\n" not in message
    assert isinstance(err.value, UsageError) and isinstance(err.value, ValueError)


def test_defaults_live_in_the_dataclasses():
    config = RestoreConfig.from_dict(
        {
            "prior": load_config("tiny-random")["prior"],
            "restorer": load_config("tiny-random")["restorer"],
        }
    )
    assert config.diffusion.respacing == "ddim250" and config.method == MethodConfig()
    assert config.method.estimator == "learned" and config.method.difface_eta == 0.5
    data = config.to_dict()
    assert set(data["method"]) == {f for f in MethodConfig.__dataclass_fields__}
    assert RestoreConfig.from_dict(data) == config


def test_method_config_checks_itself_when_built_in_python():
    with pytest.raises(ConfigError, match="method.mu"):
        MethodConfig(mu=float("nan"))
    with pytest.raises(ConfigError, match="method.guidance"):
        MethodConfig(guidance="magic")


def test_older_estimator_mapping_still_loads():
    config = load_restore_config(
        "tiny-random", {"method.estimator": {"name": "zero-shot", "weights": None}}
    )
    assert config.method.estimator == "zero-shot"


@pytest.mark.parametrize(
    ("section", "text"),
    [
        ("diffusion", "diffusion:\n  steps: 1000\n  respacing: ddim10\n  typo: 1\n"),
        ("method", "method:\n  mu: .nan\n"),
        ("method", "method:\n  num_targets: 1e9\n"),
        ("image_size", "image_size: 2^20\n"),
    ],
)
def test_cli_refuses_a_bad_config_file_in_one_line_before_any_work(tmp_path, section, text):
    preset = yaml.safe_load((REPO / "src/dynface/configs/tiny-random.yaml").read_text())
    bad = yaml.safe_load(text)
    for key, value in bad.items():
        if isinstance(value, dict):
            preset[key] = {**preset.get(key, {}), **value}
        else:
            preset[key] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(preset))
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dynface",
            "restore",
            str(TEST_DATA / "astronaut_face.png"),
            "--aligned",
            "--config",
            str(path),
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert section in done.stderr
    assert not (tmp_path / "out").exists()
    assert time.perf_counter() - started < 60
