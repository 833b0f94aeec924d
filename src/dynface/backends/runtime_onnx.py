"""ONNX Runtime backend (CPU, fp32): runs the exported graph with all graph optimisations."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from dynface.backends.compiled import ArrayRunner
from dynface.backends.onnx_export import input_names

NAME = "onnxruntime"
PRECISIONS = ("fp32",)


def available() -> bool:
    """True when onnxruntime imports."""
    try:
        importlib.import_module("onnxruntime")
    except ImportError:
        return False
    return True


def load(graph: Path, precision: str) -> ArrayRunner:
    """A session on `graph` using as many threads as torch does."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    # No busy-waiting between runs: it would steal the cores torch needs for the rest of a step.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    names = input_names(len(session.get_inputs()))

    def run(arrays):
        return session.run(None, dict(zip(names, arrays, strict=True)))[0]

    return run
