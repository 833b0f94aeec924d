"""OpenVINO backend (CPU, fp32 or bf16): compiles the exported graph, caching the compiled blob.

bf16 is an inference-precision hint; it only pays on CPUs with native bf16 (AVX512-BF16, AMX),
which `bf16_native()` reports, and not always there (`--backend auto` measures it). fp32 is
pinned explicitly: recent OpenVINO picks bf16 by default on some CPUs, which would silently
change results. The compiled blobs (OpenVINO's CACHE_DIR, one folder per version, precision and
thread count) are sealed by sha256 like the graph: a blob that fails the check is compiled again.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from dynface.backends.cache import library_version, seal, seal_problem
from dynface.backends.compiled import ArrayRunner

NAME = "openvino"
PRECISIONS = ("fp32", "bf16")
_HINTS = {"fp32": "f32", "bf16": "bf16"}
log = logging.getLogger(__name__)


def available() -> bool:
    """True when openvino is installed (found, not imported: importing it costs
    a run's start time, and happens only when it is used)."""
    os.environ.setdefault("OPENVINO_TELEMETRY_OPT_OUT", "1")
    return importlib.util.find_spec("openvino") is not None


def bf16_native() -> bool:
    """True when OpenVINO's CPU plugin reports native bf16 support on this machine."""
    if not available():
        return False
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def compile_config(precision: str, blobs: Path, quiet_threads: bool = True) -> dict[str, Any]:
    """Precision pinned, one latency stream on torch's thread count, blobs cached in `blobs`;
    threads not pinned to cores unless `quiet_threads` is False (pinned workers fight torch's)."""
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": _HINTS[precision],
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "CACHE_DIR": str(blobs),
    }
    if quiet_threads:
        config.update({"NUM_STREAMS": 1, "ENABLE_CPU_PINNING": False})
    return config


def load(graph: Path, precision: str, quiet_threads: bool = True) -> ArrayRunner:
    """Compile `graph` for the CPU at `precision`, reusing the blob cached beside the graph when
    it passes its digest check."""
    os.environ.setdefault("OPENVINO_TELEMETRY_OPT_OUT", "1")
    import openvino as ov

    threads = torch.get_num_threads()
    blobs = graph.parent / f"openvino-{library_version('openvino')}-{precision}-t{threads}"
    record = blobs.with_name(blobs.name + ".sha256.json")
    before = _checked_blobs(blobs, record)
    config = compile_config(precision, blobs, quiet_threads)
    compiled = ov.Core().compile_model(str(graph), "CPU", config)
    if _files(blobs) != before:
        seal(_files(blobs), record)
    request = compiled.create_infer_request()

    def run(arrays):
        return request.infer(arrays)[0].copy()  # the request reuses its output buffer

    return run


def _files(folder: Path) -> list[Path]:
    """The plain files in `folder`, sorted (none when it does not exist)."""
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def _checked_blobs(blobs: Path, record: Path) -> list[Path]:
    """The cached blobs when they pass their digest check; else the folder is emptied (with a
    warning) so OpenVINO compiles afresh, and the list is empty."""
    files = _files(blobs)
    problem = seal_problem(files, record) if files else None
    if problem is None:
        return files
    log.warning("cached OpenVINO blobs %s failed their check (%s); compiling again", blobs, problem)
    shutil.rmtree(blobs, ignore_errors=True)
    return []
