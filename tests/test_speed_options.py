"""The fast path as users reach it: `Restorer(backend=..., overrides={"solver": ...})` and
`dynface restore --backend ... --solver ...` run as a process."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from dynface.api import Restorer
from dynface.errors import UsageError

from .conftest import REPO, TEST_DATA


def _faces() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_restorer_on_onnxruntime_equals_torch():
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (dynface[cpu] extra)")
    on_torch = Restorer.from_config("tiny-random", backend="torch")
    on_ort = Restorer.from_config("tiny-random", backend="onnxruntime")
    assert on_torch.backends == {"prior": "torch", "rm": "torch"}
    assert on_ort.backends == {"prior": "onnxruntime", "rm": "onnxruntime"}
    expected = on_torch.restore_aligned(_faces(), seed=0)
    got = on_ort.restore_aligned(_faces(), seed=0)
    assert (got.images - expected.images).abs().max() < 1e-4
    assert [t["nfe"] for t in got.traces] == [t["nfe"] for t in expected.traces]


def test_auto_keeps_tiny_nets_on_torch_and_bad_backend_is_a_usage_error():
    restorer = Restorer.from_config("tiny-random")
    assert restorer.backends == {"prior": "torch", "rm": "torch"}
    small = ("torch", "fp32", "small nets stay on torch")
    assert restorer.backend_choices == {"prior": small, "rm": small}
    with pytest.raises(UsageError, match="unknown backend"):
        Restorer.from_config("tiny-random", backend="tensorrt")


def test_dpm2m_solver_runs_the_same_plan_with_a_different_update():
    ddim = Restorer.from_config("tiny-random", backend="torch")
    dpm = Restorer.from_config("tiny-random", backend="torch", overrides={"solver": "dpm2m"})
    assert ddim.settings.diffusion.solver == "ddim"  # DDIM stays the default
    a = ddim.restore_aligned(_faces(), seed=0)
    b = dpm.restore_aligned(_faces(), seed=0)
    assert [t["nfe"] for t in a.traces] == [t["nfe"] for t in b.traces]
    assert not torch.allclose(a.images, b.images)  # the second-order correction ran
    assert b.images.min() >= 0 and b.images.max() <= 1


def test_cli_restore_with_backend_and_solver(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (dynface[cpu] extra)")
    face = TEST_DATA / "astronaut_face.png"
    out = tmp_path / "out"
    command = [sys.executable, "-m", "dynface", "restore", str(face), "--aligned", "-o", str(out)]
    options = ["--config", "tiny-random", "--steps", "ddim5", "--seed", "0"]
    speed = ["--backend", "onnxruntime", "--solver", "dpm2m"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "DYNFACE_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [*command, *options, *speed], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "backend onnxruntime fp32 (explicit --backend)" in done.stdout
    restored = np.asarray(Image.open(out / "final" / "astronaut_face.png"))
    assert restored.ndim == 3 and restored.shape[2] in (3, 4)
    assert list((tmp_path / "home" / "compiled").glob("*/model.onnx"))  # the export was cached
    bad = subprocess.run(
        [*command, *options, "--backend", "tensorrt"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2 and "--backend" in bad.stderr
    bf16 = subprocess.run(
        [*command, *options, "--backend", "onnxruntime", "--precision", "bf16"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bf16.returncode == 2 and "does not run bf16" in bf16.stderr


def test_the_first_line_names_each_nets_runtime_precision_and_reason():
    from types import SimpleNamespace

    from dynface.cli.restore import _backends_note

    fast = ("onnxruntime", "fp32", "measured fastest: 1.76 s vs eager 2.50 s")
    same = SimpleNamespace(backend_choices={"prior": fast, "rm": fast})
    assert _backends_note(same) == (
        ", backend onnxruntime fp32 (measured fastest: 1.76 s vs eager 2.50 s)"
    )
    mixed = SimpleNamespace(backend_choices={"prior": fast, "rm": ("torch", "fp32", "")})
    assert _backends_note(mixed) == (
        ", backends prior onnxruntime fp32 (measured fastest: 1.76 s vs eager 2.50 s), "
        "rm torch fp32"
    )


def test_nets_loaded_from_files_skip_their_random_init_and_load_exactly(tmp_path):
    zero_shot = {"method.estimator": "zero-shot"}
    random = Restorer.from_config("tiny-random", backend="torch", overrides=zero_shot)
    files = dict(zero_shot)  # then only the prior and the RM are built (from the files)
    for name, section in (("prior", "prior"), ("rm", "restorer")):
        files[f"{section}.weights"] = str(tmp_path / f"{name}.pth")
        torch.save(random.pipeline.modules()[name].net.state_dict(), files[f"{section}.weights"])
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    loaded = Restorer.from_config("tiny-random", backend="torch", overrides=files)
    assert torch.equal(torch.random.get_rng_state(), before)  # no init was drawn, then replaced
    for name in ("prior", "rm"):
        expected = random.pipeline.modules()[name].net.state_dict()
        got = loaded.pipeline.modules()[name].net.state_dict()
        assert all(torch.equal(got[key], value) for key, value in expected.items())
    a = random.restore_aligned(_faces(), seed=0)
    b = loaded.restore_aligned(_faces(), seed=0)
    assert torch.equal(a.images, b.images)
    layer = torch.nn.Linear(3, 3)  # layers built afterwards get their usual init again
    assert layer.weight.abs().sum() > 0 and layer.weight.std() > 0
