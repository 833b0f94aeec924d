"""One process or several (`accelerate launch`, torchrun): this process's rank, device and gather.

A run started by a launcher (which sets `WORLD_SIZE` > 1) joins the launcher's process group
through accelerate when it is installed (`dynface[train]`), else through `torch.distributed`
with gloo; a plain run is one process on the requested device, with no process group at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from dynface.devices import pick_device

T = TypeVar("T")


def has_accelerator() -> bool:
    """True when torch sees a GPU-like device (CUDA, MPS, XPU, ...)."""
    probe = getattr(torch, "accelerator", None)
    return bool(probe.is_available()) if probe is not None else torch.cuda.is_available()


def launched_world_size() -> int:
    """Number of processes a launcher (torchrun, `accelerate launch`, MPI) started; 1 if none."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


@dataclass(frozen=True)
class Processes:
    """This process's place in the run: rank, count, its device, and how to gather objects."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    _all_gather: Callable[[Any], list[Any]] | None = field(default=None, repr=False)

    @property
    def is_main(self) -> bool:
        """True on the process that writes outputs and shows progress."""
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share of `items` (every `world_size`-th, from `rank`)."""
        return list(items[self.rank :: self.world_size])

    def gather(self, obj: T) -> list[T]:
        """`obj` of every process, in rank order, on every process."""
        if self._all_gather is None:
            return [obj]
        return self._all_gather(obj)

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block on the main process first (downloads, cache writes), then on the rest."""
        if not self.is_main:
            self.gather(None)
        try:
            yield
        finally:
            if self.is_main:
                self.gather(None)


def processes(device: str = "auto") -> Processes:
    """The processes of this run; `device` is honoured as given when there is only one."""
    world = launched_world_size()
    if world <= 1:
        return Processes(device=pick_device(device))
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(
            f"--device {device} names one device, but {world} processes were launched; "
            "use --device auto (each process takes its own GPU) or --device cpu"
        )
    cpu = device == "cpu" or not has_accelerator()
    try:
        from accelerate import PartialState
        from accelerate.utils import gather_object
    except ImportError:
        return _torch_processes(cpu)
    # Without an accelerator, accelerate only joins a torchrun/MPI process group when told cpu=True.
    state = PartialState(cpu=cpu)
    return Processes(
        device=torch.device("cpu") if state.device.type == "cpu" else state.device,
        rank=state.process_index,
        world_size=state.num_processes,
        _all_gather=lambda obj: gather_object([obj]),
    )


def _torch_processes(cpu: bool) -> Processes:
    """The launcher's process group via plain torch.distributed (gloo), without accelerate."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = (
        torch.device("cpu") if cpu or not torch.cuda.is_available() else torch.device("cuda", local)
    )
    if device.type == "cuda":
        torch.cuda.set_device(device)

    def all_gather(obj: Any) -> list[Any]:
        out: list[Any] = [None] * world
        dist.all_gather_object(out, obj)
        return out

    return Processes(device=device, rank=rank, world_size=world, _all_gather=all_gather)


def finish() -> None:
    """Leave the process group, if one was joined (avoids torch's exit warning)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
