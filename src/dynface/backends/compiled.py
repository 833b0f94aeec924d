"""`CompiledNet`: a network whose forward runs on another runtime, called like the network.

It keeps the original module as a child, so `parameters()` still tells callers the device and
dtype to feed, and it checks inputs against the shapes the graph was exported for. A 0-d input
where the graph takes one value per sample (a shared timestep) is expanded to the batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

#: Runs the exported graph on float32 host arrays (one per input) and returns the output array.
ArrayRunner = Callable[[list[np.ndarray]], np.ndarray]


class CompiledNet(nn.Module):
    """`net` with its forward replaced by `runner`; same call signature, same output dtype."""

    def __init__(
        self,
        net: nn.Module,
        runner: ArrayRunner,
        example_inputs: Sequence[Tensor],
        backend: str,
        precision: str,
    ) -> None:
        super().__init__()
        self.net = net
        self.runner = runner
        self.backend = backend
        self.precision = precision
        #: Why it runs on this backend (set by `compile_net`; shown on the run's first line).
        self.reason = ""
        self.input_shapes = [tuple(x.shape[1:]) for x in example_inputs]
        self.__signature__ = inspect.signature(net.forward)

    def forward(self, *inputs: Tensor) -> Tensor:
        if len(inputs) != len(self.input_shapes):
            raise TypeError(f"expected {len(self.input_shapes)} inputs, got {len(inputs)}")
        batch = inputs[0].shape[0]
        arrays = []
        for i, (x, shape) in enumerate(zip(inputs, self.input_shapes, strict=True)):
            x = torch.as_tensor(x)
            if x.ndim == 0 and shape == ():
                x = x.expand(batch)
            if tuple(x.shape[1:]) != shape or x.shape[0] != batch:
                raise ValueError(
                    f"input {i} of shape {tuple(x.shape)} does not match the compiled graph "
                    f"(batch, {', '.join(map(str, shape))}); compile again for this size"
                )
            arrays.append(np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy()))
        out = torch.from_numpy(np.asarray(self.runner(arrays)))
        return out.to(inputs[0].device, inputs[0].dtype if inputs[0].is_floating_point() else None)

    def extra_repr(self) -> str:
        return f"backend={self.backend}, precision={self.precision}"
