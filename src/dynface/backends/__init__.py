"""Faster runtimes for dynface's networks: `compile_net(net, backend, precision, example_inputs)`.

Backends: "torch" (eager PyTorch with the best flags), "torch-compile" (`torch.compile`, for
GPUs), "onnxruntime" and "openvino" (CPU; the network is exported once to ONNX and cached on
disk, keyed by its weights and sealed by sha256, so the next start takes seconds).

"auto" keeps GPUs and nets under AUTO_MIN_PARAMS parameters on torch; on a CPU it measures
each installed runtime (and bf16 where asked for and native) against eager fp32 once, keeps
those that agree with it, and runs the fastest (`dynface.backends.autotune`, cached with the
graph). An explicit backend that cannot run is an error that says what to install. Every
compiled net says what it runs on and why: `.backend`, `.precision`, `.reason`.

    prior = compile_net(unet, "auto", "bf16", example_inputs=(x, t))
    eps = prior(x, t)          # same call as unet(x, t), any batch size
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from torch import Tensor, nn

from dynface.backends import autotune, onnx_export, runtime_onnx, runtime_openvino
from dynface.backends.cache import graph_dir
from dynface.backends.compiled import ArrayRunner, CompiledNet
from dynface.backends.runtime_torch import TorchNet
from dynface.errors import ResourceError, UsageError

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "auto_candidates",
    "available_backends",
    "check_backend",
    "compile_net",
]

BACKENDS = ("auto", "torch", "torch-compile", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16")
_RUNTIMES = {"onnxruntime": runtime_onnx, "openvino": runtime_openvino}
_EXTRA_HINT = 'install it with: pip install "dynface[cpu]"'
#: "auto" exports and measures only nets at least this big (the prior, the RM and Real-ESRGAN at
#: official sizes are 16-160 M); below it the export costs more than it could save.
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


def auto_candidates(device_type: str, precision: str) -> list[tuple[str, str]]:
    """The (runtime, precision) pairs "auto" measures against eager fp32 on this device: each
    installed CPU runtime at fp32, and OpenVINO at bf16 when bf16 is asked for and native."""
    if device_type != "cpu":
        return []
    pairs = [(name, "fp32") for name in _RUNTIMES if _usable(name)]
    if precision == "bf16" and _usable("openvino") and runtime_openvino.bf16_native():
        pairs.append(("openvino", "bf16"))
    return pairs


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
) -> TorchNet | CompiledNet:
    """`net` running on `backend` at `precision`, called exactly like `net`.

    `example_inputs` fix every dimension but the batch (the exported graphs take any batch and
    one timestep per sample); they are needed by the exporting backends only. With "auto",
    `precision` is the lowest allowed: bf16 lets it pick bf16 where measured faster than fp32.
    The net is put in eval mode; the torch backends may change its parameters' dtype and memory
    format in place.
    """
    check_backend(backend, precision)
    net.eval()
    device = next(net.parameters()).device.type
    if backend != "auto":
        return _explained(
            _build(net, backend, precision, example_inputs, device), "explicit --backend"
        )
    if device != "cpu":
        reason = f"torch runs the nets on {device}"
    elif sum(p.numel() for p in net.parameters()) < AUTO_MIN_PARAMS:
        reason = "small nets stay on torch"
    elif not any(_usable(name) for name in _RUNTIMES):
        reason = f"no CPU runtime installed; {_EXTRA_HINT}"
    elif not example_inputs:
        reason = "no example inputs to export the network with"
    else:
        folder = graph_dir(net, example_inputs)

        def build(name: str, chosen: str) -> TorchNet | CompiledNet:
            return _build(net, name, chosen, example_inputs, device, folder)

        def candidates() -> list[tuple[str, str]]:
            return auto_candidates(device, precision)

        module, choice = autotune.tuned(net, example_inputs, precision, candidates, build, folder)
        return _explained(module, choice.reason)
    return _explained(TorchNet(net, precision), reason)


def _explained(module: TorchNet | CompiledNet, reason: str) -> TorchNet | CompiledNet:
    """`module` with `reason` (why it runs where it does) attached, for the run's first line."""
    module.reason = reason
    return module


def _build(
    net: nn.Module,
    name: str,
    precision: str,
    example_inputs: Sequence[Tensor],
    device: str,
    folder: Path | None = None,
) -> TorchNet | CompiledNet:
    """`net` on backend `name` (no choosing): torch, torch-compile or an exporting runtime."""
    if name in ("torch", "torch-compile"):
        return TorchNet(net, precision, compile_graph=name == "torch-compile")
    return _compile_exported(net, name, precision, example_inputs, device, folder)


def _compile_exported(
    net: nn.Module,
    name: str,
    precision: str,
    example_inputs: Sequence[Tensor],
    device: str,
    folder: Path | None = None,
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
        runner = _load_graph(net, runtime, precision, example_inputs, folder)
    except Exception as exc:  # an exporter or runtime failure: auto falls back, explicit reports
        raise BackendUnavailable(f"backend {name} could not load this network ({exc})") from exc
    return CompiledNet(net, runner, example_inputs, name, precision)


def _load_graph(
    net: nn.Module,
    runtime: ModuleType,
    precision: str,
    example_inputs: Sequence[Tensor],
    folder: Path | None,
) -> ArrayRunner:
    """The runtime's runner on the (verified) cached graph; a cached graph that still does not
    load is exported again once, with a warning."""
    graph = onnx_export.exported_graph(net, example_inputs, folder=folder)
    try:
        return runtime.load(graph, precision)
    except Exception as exc:  # unreadable though its digest matched: rebuild it once
        log.warning("cached graph %s could not be loaded (%s); exporting it again", graph, exc)
    graph = onnx_export.exported_graph(net, example_inputs, fresh=True, folder=folder)
    return runtime.load(graph, precision)
