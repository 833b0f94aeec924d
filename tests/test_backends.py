"""Backends: each runtime equals eager torch on the tiny nets, the exported graph is cached and
re-exported when the weights change, and "auto" falls back to torch when a runtime is missing."""

from __future__ import annotations

import inspect
import logging
import sys

import pytest
import torch

from dynface import backends
from dynface.backends import BackendUnavailable, compile_net, onnx_export
from dynface.backends.runtime_torch import TorchNet
from dynface.config import load_config
from dynface.nets import build_swinir, build_unet

RUNTIMES = ("onnxruntime", "openvino")


def _need(backend: str) -> None:
    if backend in RUNTIMES:
        pytest.importorskip(backend, reason=f"{backend} is not installed (dynface[cpu] extra)")


def _unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_unet(load_config("tiny-random")["prior"]["params"]).eval()


def _swinir() -> torch.nn.Module:
    torch.manual_seed(1)
    return build_swinir(load_config("tiny-random")["restorer"]["params"]).eval()


def _unet_inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(batch)
    timesteps = torch.linspace(0, 999, batch).round().long()  # one timestep per sample
    return torch.randn(batch, 3, 32, 32, generator=gen), timesteps


@pytest.fixture
def auto_for_tiny(monkeypatch):
    """Let "auto" export the tiny nets too (it keeps small nets on torch otherwise)."""
    monkeypatch.setattr(backends, "AUTO_MIN_PARAMS", 0)


@pytest.mark.parametrize("backend", ["torch", *RUNTIMES])
def test_unet_matches_eager_for_any_batch_and_per_sample_timesteps(backend):
    _need(backend)
    net = _unet()
    compiled = compile_net(net, backend, "fp32", example_inputs=_unet_inputs(1))
    assert compiled.backend == backend
    for batch in (1, 3):  # exported with batch 1: the batch axis is dynamic
        x, t = _unet_inputs(batch)
        with torch.no_grad():
            expected = net(x, t)
        out = compiled(x, t)
        assert out.shape == expected.shape and out.dtype == expected.dtype
        assert (out - expected).abs().max() < 1e-4
    x, _ = _unet_inputs(2)
    with torch.no_grad():
        shared = net(x, torch.tensor(400))
    assert (compiled(x, torch.tensor(400)) - shared).abs().max() < 1e-4  # 0-d timestep


@pytest.mark.parametrize("backend", ["torch", *RUNTIMES])
def test_swinir_matches_eager(backend):
    _need(backend)
    net = _swinir()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    compiled = compile_net(net, backend, "fp32", example_inputs=(x[:1],))
    with torch.no_grad():
        expected = net(x)
    assert (compiled(x) - expected).abs().max() < 1e-4


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_bf16_stays_close_to_fp32(backend):
    _need(backend)
    if backend == "openvino" and not backends.runtime_openvino.bf16_native():
        pytest.skip("this CPU has no native bf16: OpenVINO would run fp32")
    net = _unet()
    x, t = _unet_inputs(2)
    with torch.no_grad():
        expected = net(x, t)
    compiled = compile_net(net, backend, "bf16", example_inputs=(x, t))
    error = (compiled(x, t) - expected).abs().max()
    assert compiled(x, t).dtype == torch.float32
    assert 0 < error < 0.1 * expected.abs().max()  # bf16 really ran, and stayed close


def test_compiled_net_keeps_the_signature_and_checks_shapes():
    _need("onnxruntime")
    net = _unet()
    compiled = compile_net(net, "onnxruntime", example_inputs=_unet_inputs(1))
    assert inspect.signature(compiled) == inspect.signature(net.forward)
    assert next(compiled.parameters()).dtype == torch.float32
    with pytest.raises(ValueError, match="compile again"):
        compiled(torch.randn(1, 3, 64, 64), torch.tensor([3]))


def test_graph_is_exported_once_and_reused(export_spy):
    _need("onnxruntime")
    net, inputs = _unet(), _unet_inputs(1)
    first = compile_net(net, "onnxruntime", example_inputs=inputs)
    assert len(export_spy) == 1
    graph = export_spy[0]
    stamp = graph.stat().st_mtime_ns
    second = compile_net(_unet(), "onnxruntime", example_inputs=_unet_inputs(2))  # same weights
    assert len(export_spy) == 1 and graph.stat().st_mtime_ns == stamp
    x, t = _unet_inputs(2)
    assert torch.equal(first(x, t), second(x, t))


def test_changed_weights_export_a_new_graph(export_spy):
    _need("onnxruntime")
    net, inputs = _unet(), _unet_inputs(1)
    compile_net(net, "onnxruntime", example_inputs=inputs)
    with torch.no_grad():
        net.out[-1].bias += 0.5
    compiled = compile_net(net, "onnxruntime", example_inputs=inputs)
    assert len(export_spy) == 2 and export_spy[0] != export_spy[1]
    x, t = _unet_inputs(2)
    with torch.no_grad():
        expected = net(x, t)
    assert (compiled(x, t) - expected).abs().max() < 1e-4  # the new weights, not the stale graph


def test_auto_measures_and_runs_an_agreeing_candidate(auto_for_tiny):
    _need("onnxruntime")
    net = _unet()
    compiled = compile_net(net, "auto", "fp32", _unet_inputs(1))
    assert compiled.backend in ("torch", *RUNTIMES) and compiled.precision == "fp32"
    assert compiled.reason.startswith("measured fastest: ")
    x, t = _unet_inputs(2)
    with torch.no_grad():
        assert (compiled(x, t) - net(x, t)).abs().max() < 1e-4


def test_auto_falls_back_when_runtimes_are_missing(monkeypatch, auto_for_tiny):
    for name in RUNTIMES:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ImportError
    assert backends.available_backends() == ["torch", "torch-compile"]
    net = _unet()
    x, t = _unet_inputs(2)
    with torch.no_grad():
        expected = net(x, t)
    for precision in ("fp32", "bf16"):
        compiled = compile_net(net, "auto", precision, example_inputs=(x, t))
        assert isinstance(compiled, TorchNet) and compiled.backend == "torch"
    assert torch.equal(compile_net(_unet(), "auto", example_inputs=(x, t))(x, t), expected)
    with pytest.raises(BackendUnavailable, match=r"pip install"):
        compile_net(net, "onnxruntime", example_inputs=(x, t))


def test_auto_falls_back_when_the_exporter_is_missing(monkeypatch, auto_for_tiny):
    _need("onnxruntime")
    monkeypatch.setitem(sys.modules, "onnx", None)  # onnxruntime alone cannot export
    assert backends.available_backends() == ["torch", "torch-compile"]
    assert compile_net(_unet(), "auto", example_inputs=_unet_inputs(1)).backend == "torch"
    with pytest.raises(BackendUnavailable, match=r"needs the onnx package.*dynface\[cpu\]"):
        compile_net(_unet(), "onnxruntime", example_inputs=_unet_inputs(1))


def test_auto_uses_the_other_runtime_when_one_is_missing(monkeypatch, auto_for_tiny):
    _need("openvino")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    compiled = compile_net(_unet(), "auto", "fp32", example_inputs=_unet_inputs(1))
    assert compiled.backend == "openvino"


def test_auto_falls_back_when_the_export_fails(monkeypatch, caplog, auto_for_tiny):
    _need("onnxruntime")

    def broken(net, example_inputs, path):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(onnx_export, "export_onnx", broken)
    net = _unet()
    with caplog.at_level(logging.WARNING):
        compiled = compile_net(net, "auto", example_inputs=_unet_inputs(1))
    assert compiled.backend == "torch" and "unsupported operator" in caplog.text
    with pytest.raises(BackendUnavailable, match="unsupported operator"):
        compile_net(net, "onnxruntime", example_inputs=_unet_inputs(1))


def test_bad_backend_and_precision_are_usage_errors():
    with pytest.raises(ValueError, match="unknown backend"):
        compile_net(_unet(), "tensorrt")
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        compile_net(_unet(), "torch", "fp16")
    with pytest.raises(ValueError, match="does not run bf16"):
        compile_net(_unet(), "onnxruntime", "bf16", example_inputs=_unet_inputs(1))
