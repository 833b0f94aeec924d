"""PyTorch eager backend with the flags that pay: no autograd; on the CPU, bf16
autocast with channels-last tensors; on a GPU, half-precision weights, channels-last and cuDNN
autotuning. Optionally `torch.compile` (backend "torch-compile"): on our CPU it measured 1.06x
eager after ~2 minutes of compiling, so it is meant for GPUs (not measured there yet).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

NAME = "torch"
PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def wrap(net: nn.Module, precision: str, compile_graph: bool = False) -> Callable[..., Tensor]:
    """`net` run eagerly (or compiled) at `precision`; returns outputs in the input's dtype."""
    device = next(net.parameters()).device
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 needs a GPU; on the CPU use bf16 or fp32")
    dtype = DTYPES[precision]
    channels_last = precision != "fp32" or device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        net.to(dtype)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    body = torch.compile(net) if compile_graph else net  # dynamic batch after one recompile
    autocast = device.type == "cpu" and precision == "bf16"

    def forward(*inputs: Tensor) -> Tensor:
        first = inputs[0]
        cast = dtype if device.type == "cuda" else None
        args = [_prepare(x, cast, channels_last) for x in inputs]
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            out = body(*args)
        return out.to(first.dtype).contiguous()

    return forward


def _prepare(x: Tensor, dtype: torch.dtype | None, channels_last: bool) -> Tensor:
    """Floating 4-D inputs in the net's dtype and memory format; others (timesteps) as they are."""
    if not x.is_floating_point() or x.ndim != 4:
        return x
    x = x.to(dtype) if dtype is not None else x
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class TorchNet(nn.Module):
    """`net` called through `wrap`: keeps the module (and its parameters) as a child."""

    def __init__(self, net: nn.Module, precision: str, compile_graph: bool = False) -> None:
        super().__init__()
        self.net = net
        self.backend = "torch-compile" if compile_graph else NAME
        self.precision = precision
        #: Why it runs on this backend (set by `compile_net`; shown on the run's first line).
        self.reason = ""
        self._forward = wrap(net, precision, compile_graph)

    def forward(self, *inputs: Tensor) -> Tensor:
        return self._forward(*inputs)

    def extra_repr(self) -> str:
        return f"backend={self.backend}, precision={self.precision}"
