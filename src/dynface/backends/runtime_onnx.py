"""ONNX Runtime backend (CPU, fp32): runs the exported graph with all graph optimisations.

Its threads are told to sleep between runs (`quiet_threads`): with the default options the
intra-op pool busy-waits after every call and slows the torch work that runs between the
network's calls (guidance, the RM); see benchmarks/thread_spin.py.

The optimised graph (fusions, the CPU's blocked layouts) is saved beside the exported one the
first time, keyed by the ONNX Runtime version and the CPU, sealed by sha256 like the graph, and
loaded without optimising again on later runs (it saves most of the session's start). One that
fails its check or does not load is rebuilt from the exported graph, with a warning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from dynface.backends.cache import library_version, seal, seal_problem
from dynface.backends.compiled import ArrayRunner
from dynface.backends.onnx_export import DIGEST_FILE, input_names

NAME = "onnxruntime"
PRECISIONS = ("fp32",)
log = logging.getLogger(__name__)


def available() -> bool:
    """True when onnxruntime is installed (found, not imported: importing it costs
    a run's start time, and happens only when it is used)."""
    return importlib.util.find_spec("onnxruntime") is not None


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
    """A session on `graph` using as many threads as torch does (from the optimised graph saved
    by an earlier run when it passes its check)."""
    session = _session(graph, session_options(quiet_threads))
    names = input_names(len(session.get_inputs()))

    def run(arrays):
        return session.run(None, dict(zip(names, arrays, strict=True)))[0]

    return run


def optimized_path(graph: Path) -> Path:
    """Where the optimised form of `graph` is kept: per ONNX Runtime version, CPU, and the
    graph's own recorded digest (a re-exported graph never meets an older optimised one)."""
    from dynface.backends.autotune import cpu_model

    try:
        source = json.loads((graph.parent / DIGEST_FILE).read_text())[graph.name][:12]
    except (OSError, ValueError, KeyError, TypeError):
        source = "unsealed"
    cpu = hashlib.sha256(cpu_model().encode()).hexdigest()[:12]
    version = library_version("onnxruntime")
    return graph.with_name(f"onnxruntime-{version}-{cpu}-{source}.optimized.onnx")


def _session(graph: Path, options: Any) -> Any:
    """A session on the saved optimised graph when it is sound, else on `graph`, saving its
    optimised form (sealed) for the next run."""
    import onnxruntime as ort

    optimized = optimized_path(graph)
    record = optimized.with_name(optimized.name + ".sha256.json")
    providers = ["CPUExecutionProvider"]
    if optimized.is_file():
        problem = seal_problem([optimized], record)
        if problem is None:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            try:
                return ort.InferenceSession(str(optimized), options, providers=providers)
            except Exception as exc:  # unreadable though sealed: optimise again
                problem = f"it does not load: {exc}"
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        log.warning("optimised graph %s failed its check (%s); rebuilding it", optimized, problem)
    return _optimise_and_save(graph, options, optimized, record)


def _optimise_and_save(graph: Path, options: Any, optimized: Path, record: Path) -> Any:
    """A session on `graph`, its optimised form saved to `optimized` and sealed; when it cannot
    be saved, a session all the same (optimised in memory, as before this cache)."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    part = optimized.with_name(optimized.name + f".{os.getpid()}.part")
    options.optimized_model_filepath = str(part)
    try:
        session = ort.InferenceSession(str(graph), options, providers=providers)
        if part.is_file():
            os.replace(part, optimized)
            seal([optimized], record)
        return session
    except Exception as exc:  # e.g. a graph too big to save in one file: run it unsaved
        log.info("the optimised graph could not be saved (%s)", exc)
    finally:
        part.unlink(missing_ok=True)
    options.optimized_model_filepath = ""
    return ort.InferenceSession(str(graph), options, providers=providers)
