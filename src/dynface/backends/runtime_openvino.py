"""OpenVINO backend (CPU, fp32 or bf16): compiles the exported graph, caching the compiled blob.

bf16 is an inference-precision hint; it only pays on CPUs with native bf16 (AVX512-BF16, AMX),
which `bf16_native()` reports. fp32 is pinned explicitly: recent OpenVINO picks bf16 by default on
some CPUs, which would silently change results.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch

from dynface.backends.cache import library_version
from dynface.backends.compiled import ArrayRunner

NAME = "openvino"
PRECISIONS = ("fp32", "bf16")
_HINTS = {"fp32": "f32", "bf16": "bf16"}


def available() -> bool:
    """True when openvino imports."""
    os.environ.setdefault("OPENVINO_TELEMETRY_OPT_OUT", "1")
    try:
        importlib.import_module("openvino")
    except ImportError:
        return False
    return True


def bf16_native() -> bool:
    """True when OpenVINO's CPU plugin reports native bf16 support on this machine."""
    if not available():
        return False
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def load(graph: Path, precision: str) -> ArrayRunner:
    """Compile `graph` for the CPU at `precision`, reusing the blob cached beside the graph."""
    import openvino as ov

    blobs = graph.parent / f"openvino-{library_version('openvino')}-{precision}"
    config = {
        "INFERENCE_PRECISION_HINT": _HINTS[precision],
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "CACHE_DIR": str(blobs),
    }
    compiled = ov.Core().compile_model(str(graph), "CPU", config)
    request = compiled.create_infer_request()

    def run(arrays):
        return request.infer(arrays)[0].copy()  # the request reuses its output buffer

    return run
