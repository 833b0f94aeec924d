"""`--backend auto` on a CPU: runtime and precision picked by a measured, cached micro-benchmark
(made deterministic here by a fake timer), only among candidates that agree with eager fp32."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from dynface import backends
from dynface.backends import autotune, compile_net, runtime_onnx
from dynface.config import load_config
from dynface.nets import build_unet

#: The issue's measurements on a 2-core AVX512-BF16 CPU (OpenVINO bf16 slower than fp32 there).
MEASURED = {
    ("torch", "fp32"): 2.5,
    ("onnxruntime", "fp32"): 1.76,
    ("openvino", "fp32"): 1.88,
    ("openvino", "bf16"): 2.53,
}


def _unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_unet(load_config("tiny-random")["prior"]["params"]).eval()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(1, 3, 32, 32), torch.zeros(1)


@pytest.fixture
def timer(monkeypatch):
    """Replace the timed forward by a table lookup; returns the table and the calls made."""
    monkeypatch.setattr(backends, "AUTO_MIN_PARAMS", 0)
    table = dict(MEASURED)
    calls = []

    def fake(module, inputs):
        calls.append((module.backend, module.precision))
        return table[module.backend, module.precision]

    monkeypatch.setattr(autotune, "time_forward", fake)
    return table, calls


def _need_runtimes(bf16: bool = False) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    if bf16 and not backends.runtime_openvino.bf16_native():
        pytest.skip("this CPU has no native bf16")


def test_auto_runs_the_measured_fastest_fp32_and_says_why(timer):
    _need_runtimes()
    compiled = compile_net(_unet(), "auto", "fp32", _inputs())
    assert (compiled.backend, compiled.precision) == ("onnxruntime", "fp32")
    assert compiled.reason == "measured fastest: 1.76 s vs eager 2.50 s"
    assert ("openvino", "bf16") not in timer[1]  # fp32 asked for: bf16 is not a candidate


def test_bf16_is_chosen_only_where_measured_faster_than_fp32(timer):
    _need_runtimes(bf16=True)
    compiled = compile_net(_unet(), "auto", "bf16", _inputs())
    assert (compiled.backend, compiled.precision) == ("onnxruntime", "fp32")  # bf16 slower
    assert "bf16 2.53 s" in compiled.reason
    table, _ = timer
    table["openvino", "bf16"] = 0.9  # an AMX machine
    net = _unet()
    with torch.no_grad():
        net.out[-1].bias += 0.1  # another graph: nothing cached for it
    faster = compile_net(net, "auto", "bf16", _inputs())
    assert (faster.backend, faster.precision) == ("openvino", "bf16")
    assert faster.reason == "measured fastest: 0.90 s vs eager 2.50 s"


def test_eager_wins_when_it_is_fastest(timer):
    _need_runtimes()
    timer[0]["torch", "fp32"] = 1.0
    compiled = compile_net(_unet(), "auto", "fp32", _inputs())
    assert compiled.backend == "torch"
    assert compiled.reason == "measured fastest: eager 1.00 s vs onnxruntime fp32 1.76 s"
    measured = len(timer[1])
    again = compile_net(_unet(), "auto", "fp32", _inputs())
    assert again.backend == "torch" and again.reason.endswith(", cached")
    assert len(timer[1]) == measured


def test_the_choice_is_cached_per_machine_and_later_runs_measure_nothing(timer, monkeypatch):
    _need_runtimes()
    first = compile_net(_unet(), "auto", "fp32", _inputs())
    measured = len(timer[1])
    assert measured >= 3
    second = compile_net(_unet(), "auto", "fp32", _inputs())
    assert len(timer[1]) == measured  # read from autotune.json, no forward timed
    assert second.backend == first.backend and second.reason == first.reason + ", cached"
    monkeypatch.setattr(autotune, "cpu_model", lambda: "another CPU")
    compile_net(_unet(), "auto", "fp32", _inputs())
    assert len(timer[1]) > measured  # another machine: measured again


def test_a_runtime_that_disagrees_with_eager_is_never_chosen(timer, monkeypatch, caplog):
    _need_runtimes()
    real = runtime_onnx.load

    def off(graph, precision, quiet_threads=True):
        run = real(graph, precision, quiet_threads)
        return lambda arrays: run(arrays) + np.float32(1e-2)  # fastest, but wrong

    monkeypatch.setattr(runtime_onnx, "load", off)
    compiled = compile_net(_unet(), "auto", "fp32", _inputs())
    assert compiled.backend == "openvino"
    assert "onnxruntime fp32 is off eager fp32" in caplog.text


def test_a_recorded_choice_that_cannot_run_any_more_is_measured_again(timer, monkeypatch):
    _need_runtimes()
    assert compile_net(_unet(), "auto", "fp32", _inputs()).backend == "onnxruntime"
    measured = len(timer[1])
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # uninstalled since
    compiled = compile_net(_unet(), "auto", "fp32", _inputs())
    assert compiled.backend == "openvino" and len(timer[1]) > measured


def test_explicit_backend_and_small_nets_measure_nothing(timer, monkeypatch):
    _need_runtimes()
    explicit = compile_net(_unet(), "openvino", "fp32", _inputs())
    assert explicit.backend == "openvino" and explicit.reason == "explicit --backend"
    monkeypatch.setattr(backends, "AUTO_MIN_PARAMS", 10**9)
    small = compile_net(_unet(), "auto", "fp32", _inputs())
    assert small.backend == "torch" and small.reason == "small nets stay on torch"
    assert timer[1] == []


def test_pick_prefers_fp32_on_ties_and_needs_strictly_faster_bf16():
    times = {("torch", "fp32"): 2.0, ("openvino", "fp32"): 1.5, ("openvino", "bf16"): 1.5}
    choice = autotune.pick(times)
    assert (choice.backend, choice.precision) == ("openvino", "fp32")
    assert autotune.tolerance("fp32") == 1e-4 and autotune.tolerance("bf16") == 1e-1
