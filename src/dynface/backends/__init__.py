"""Faster runtimes for dynface's networks: `compile_net(net, backend, precision, example_inputs)`.

Backends: "torch" (eager PyTorch with the best flags), "torch-compile" (`torch.compile`, for
GPUs), "onnxruntime" and "openvino" (CPU; the network is exported once to ONNX and cached on
disk, keyed by its weights, so the next start takes seconds). "auto" picks the fastest one that
is installed for the device and precision, and falls back to "torch" when a runtime is missing or
fails to export; an explicit backend that cannot run is an error that says what to install.

    prior = compile_net(unet, "auto", "bf16", example_inputs=(x, t))
    eps = prior(x, t)          # same call as unet(x, t), any batch size
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from torch import Tensor, nn

from dynface.backends import onnx_export, runtime_onnx, runtime_openvino
from dynface.backends.compiled import CompiledNet
from dynface.backends.runtime_torch import TorchNet
from dynface.errors import ResourceError, UsageError

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "available_backends",
    "check_backend",
    "compile_net",
    "pick_backend",
]

BACKENDS = ("auto", "torch", "torch-compile", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16")
#: The exporting runtimes, fastest first for each precision on a CPU (see docs/benchmarks.md).
_CPU_ORDER = {"fp32": ("onnxruntime", "openvino"), "bf16": ("openvino",)}
_RUNTIMES = {"onnxruntime": runtime_onnx, "openvino": runtime_openvino}
_EXTRA_HINT = 'install it with: pip install "dynface[cpu]"'
#: "auto" exports only nets at least this big; below it the export costs more than it saves.
AUTO_MIN_PARAMS = 5_000_000
log = logging.getLogger(__name__)


class BackendUnavailable(ResourceError):
    """The asked-for backend is not installed or cannot run this network here."""


def available_backends() -> list[str]:
    """The backends that can run on this machine (runtimes installed)."""
    names = ["torch", "torch-compile"]
    return names + [name for name in _RUNTIMES if _usable(name)]


def _usable(name: str) -> bool:
    """An exporting runtime needs itself and the `onnx` package (for torch's exporter)."""
    return _RUNTIMES[name].available() and onnx_export.available()


def pick_backend(device_type: str, precision: str, params: int = AUTO_MIN_PARAMS) -> str:
    """What "auto" means for a net of `params` parameters: an installed CPU runtime with a fast
    path, else "torch" (always on GPUs, and for small nets)."""
    if device_type != "cpu" or params < AUTO_MIN_PARAMS:
        return "torch"
    for name in _CPU_ORDER.get(precision, ()):
        if not _usable(name):
            continue
        if name == "openvino" and precision == "bf16" and not runtime_openvino.bf16_native():
            continue
        return name
    return "torch"


def check_backend(backend: str, precision: str) -> None:
    """A UsageError when `backend` is unknown or cannot run `precision` at all."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    runtime = _RUNTIMES.get(backend)
    if runtime is not None and precision not in runtime.PRECISIONS:
        raise UsageError(
            f"backend {backend} does not run {precision}; use --precision "
            f"{' or '.join(runtime.PRECISIONS)}, or --backend auto"
        )


def compile_net(
    net: nn.Module,
    backend: str = "auto",
    precision: str = "fp32",
    example_inputs: Sequence[Tensor] = (),
) -> nn.Module:
    """`net` running on `backend` at `precision`, called exactly like `net`.

    `example_inputs` fix every dimension but the batch (the exported graphs take any batch and
    one timestep per sample); they are needed by the exporting backends only. "auto" keeps nets
    under AUTO_MIN_PARAMS on torch. The net is put in eval mode; the torch backends may change
    its parameters' dtype and memory format in place.
    """
    check_backend(backend, precision)
    net.eval()
    device = next(net.parameters()).device
    params = sum(p.numel() for p in net.parameters())
    chosen = pick_backend(device.type, precision, params) if backend == "auto" else backend
    if chosen in ("torch", "torch-compile"):
        return TorchNet(net, precision, compile_graph=chosen == "torch-compile")
    try:
        return _compile_exported(net, chosen, precision, example_inputs, device.type)
    except BackendUnavailable as exc:
        if backend != "auto":
            raise
        log.warning("%s; running on torch instead", exc)
        return TorchNet(net, precision)


def _compile_exported(
    net: nn.Module, name: str, precision: str, example_inputs: Sequence[Tensor], device: str
) -> CompiledNet:
    """Export `net` (or reuse its cached graph) and load it in runtime `name`."""
    runtime = _RUNTIMES[name]
    if not runtime.available():
        raise BackendUnavailable(f"backend {name} is not installed; {_EXTRA_HINT}")
    if not onnx_export.available():
        raise BackendUnavailable(f"backend {name} needs the onnx package to export; {_EXTRA_HINT}")
    if device != "cpu":
        raise BackendUnavailable(f"backend {name} runs on the CPU only; use torch on {device}")
    if not example_inputs:
        raise UsageError(f"backend {name} needs example_inputs to export the network")
    try:
        graph = onnx_export.exported_graph(net, example_inputs)
        runner = runtime.load(graph, precision)
    except Exception as exc:  # an exporter or runtime failure: auto falls back, explicit reports
        raise BackendUnavailable(f"backend {name} could not load this network ({exc})") from exc
    return CompiledNet(net, runner, example_inputs, name, precision)
