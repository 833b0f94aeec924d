"""Which torch device to run on: one resolver for the restorer, the metrics and the tools."""

from __future__ import annotations

import torch


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve "auto" to cuda, then mps, then cpu; check that an explicit choice exists."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    if name == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("--device mps was asked for, but this PyTorch build has no MPS")
    return torch.device(name)
