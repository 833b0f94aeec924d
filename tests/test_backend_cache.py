"""R-cache-tamper: a cached compiled graph that was tampered with, truncated or cannot be read is
never run: it is rebuilt once with a one-line warning, and the output equals a clean run's."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import torch

from dynface.backends import compile_net, onnx_export
from dynface.backends.cache import seal
from dynface.config import load_config
from dynface.nets import build_unet

from .conftest import REPO, TEST_DATA


def _unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_unet(load_config("tiny-random")["prior"]["params"]).eval()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    return x, torch.tensor([10, 700])


def _clean_run(backend: str) -> tuple[torch.Tensor, object]:
    """The output of a first (exporting) compile, and the graph's path."""
    compiled = compile_net(_unet(), backend, "fp32", example_inputs=_inputs())
    return compiled(*_inputs()), compiled


def _rerun(backend: str, caplog) -> torch.Tensor:
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        compiled = compile_net(_unet(), backend, "fp32", example_inputs=_inputs())
    return compiled(*_inputs())


def test_tampered_initializers_in_model_onnx_are_exported_again(export_spy, caplog):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    clean, _ = _clean_run("onnxruntime")
    graph = export_spy[0]
    model = onnx.load(str(graph))
    for init in model.graph.initializer:  # every weight set to 0.5, as an attacker would
        if init.data_type == onnx.TensorProto.FLOAT:
            array = onnx.numpy_helper.to_array(init).copy()
            array[...] = 0.5
            init.CopyFrom(onnx.numpy_helper.from_array(array, init.name))
    onnx.save(model, str(graph))
    out = _rerun("onnxruntime", caplog)
    assert torch.equal(out, clean)
    assert len(export_spy) == 2  # exported once more
    assert "failed its check" in caplog.text and str(graph) in caplog.text


def test_a_truncated_model_onnx_is_exported_again(export_spy, caplog):
    pytest.importorskip("onnxruntime")
    clean, _ = _clean_run("onnxruntime")
    graph = export_spy[0]
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    out = _rerun("onnxruntime", caplog)
    assert len(export_spy) == 2 and "failed its check" in caplog.text
    assert torch.equal(out, clean)
    assert _rerun("onnxruntime", caplog) is not None and len(export_spy) == 2  # then trusted again


def test_a_graph_that_does_not_load_though_sealed_is_exported_again_once(export_spy, caplog):
    pytest.importorskip("onnxruntime")
    clean, _ = _clean_run("onnxruntime")
    graph = export_spy[0]
    graph.write_bytes(b"not a protobuf at all")
    seal([graph], graph.parent / onnx_export.DIGEST_FILE)  # the record forged to match
    out = _rerun("onnxruntime", caplog)
    assert len(export_spy) == 2 and "could not be loaded" in caplog.text
    assert len(caplog.records) == 1  # one line
    assert torch.equal(out, clean)


def test_overwritten_bytes_of_an_openvino_blob_are_compiled_again(export_spy, caplog):
    pytest.importorskip("openvino")
    clean, _ = _clean_run("openvino")
    blobs = sorted(export_spy[0].parent.glob("openvino-*-fp32-t*/*"))
    assert blobs, "OpenVINO wrote no cached blob"
    for blob in blobs:
        data = bytearray(blob.read_bytes())
        middle = len(data) // 2
        data[middle : middle + 2000] = b"\x3f" * min(2000, len(data) - middle)
        blob.write_bytes(bytes(data))
    out = _rerun("openvino", caplog)
    assert torch.equal(out, clean)
    assert "failed their check" in caplog.text
    assert len(export_spy) == 1  # the graph itself was sound: only the blob was rebuilt
    caplog.clear()
    assert torch.equal(_rerun("openvino", caplog), clean) and not caplog.records


def test_a_cache_written_before_digests_is_not_trusted(export_spy, caplog):
    pytest.importorskip("onnxruntime")
    clean, _ = _clean_run("onnxruntime")
    (export_spy[0].parent / onnx_export.DIGEST_FILE).unlink()
    out = _rerun("onnxruntime", caplog)
    assert len(export_spy) == 2 and "no digest was recorded" in caplog.text
    assert torch.equal(out, clean)


def test_a_tampered_optimised_onnxruntime_graph_is_rebuilt(export_spy, caplog):
    pytest.importorskip("onnxruntime")
    from dynface.backends import runtime_onnx

    clean, _ = _clean_run("onnxruntime")
    optimized = runtime_onnx.optimized_path(export_spy[0])
    assert optimized.is_file()  # saved by the first run, loaded by the next ones
    data = bytearray(optimized.read_bytes())
    data[-3000:-1000] = b"\x3f" * 2000  # among the weights
    optimized.write_bytes(bytes(data))
    out = _rerun("onnxruntime", caplog)
    assert torch.equal(out, clean)
    assert "optimised graph" in caplog.text and "failed its check" in caplog.text
    assert len(export_spy) == 1  # the exported graph was sound


def test_a_restore_run_on_a_tampered_cache_equals_a_clean_run(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "DYNFACE_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "dynface", "restore", str(TEST_DATA / "astronaut_face.png")]
    command += ["--aligned", "--config", "tiny-random", "--steps", "ddim5", "--seed", "0"]
    command += ["--backend", "onnxruntime"]

    def restore(out: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*command, "-o", str(tmp_path / out)], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        return done

    restore("clean")
    graphs = sorted((tmp_path / "home" / "compiled").glob("*/model.onnx"))
    assert len(graphs) == 2  # the prior and the RM
    for graph in graphs:
        graph.write_bytes(graph.read_bytes()[:1000])  # truncated
    again = restore("again")
    assert again.stderr.count("failed its check") == 2
    final = "final/astronaut_face.png"
    assert (tmp_path / "again" / final).read_bytes() == (tmp_path / "clean" / final).read_bytes()
