"""ONNX Runtime backend (CPU, fp32): runs the exported graph with all graph optimisations.

Its threads are told to sleep between runs (`quiet_threads`): with the default options the
intra-op pool busy-waits after every call and slows the torch work that runs between the
network's calls (guidance, the RM); see benchmarks/thread_spin.py.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

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


def session_options(quiet_threads: bool = True) -> Any:
    """Full graph optimisation, torch's thread count; no spinning pools unless `quiet_threads`
    is False (the library's defaults, kept for the benchmark that shows the difference)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    if quiet_threads:
        # One op at a time (the graph is a chain) and no busy-waiting after a run: the pools
        # would otherwise keep the cores torch needs for the rest of a step.
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def load(graph: Path, precision: str, quiet_threads: bool = True) -> ArrayRunner:
    """A session on `graph` using as many threads as torch does."""
    import onnxruntime as ort

    options = session_options(quiet_threads)
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    names = input_names(len(session.get_inputs()))

    def run(arrays):
        return session.run(None, dict(zip(names, arrays, strict=True)))[0]

    return run
