"""The learned DGSA network: 3 conv layers + sigmoid on [g_0, x0, t-map] -> A in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from dynface.checkpoints import load_into, load_state_dict


class DGSANet(nn.Module):
    """Per-pixel guidance strength A_t from the guidance image g_0, the prediction x0 and t."""

    def __init__(self, hidden: int = 32, steps: int = 1000) -> None:
        super().__init__()
        self.steps = steps
        self.body = nn.Sequential(
            nn.Conv2d(7, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, 1, 3, padding=1),
        )

    def forward(self, g0: Tensor, x0: Tensor, t: Tensor | int) -> Tensor:
        """A in [0, 1], (B, 1, H, W); g0 and x0 (B, 3, H, W) in [-1, 1], t on the 1000 scale."""
        b, _, h, w = x0.shape
        t_b = torch.as_tensor(t, device=x0.device, dtype=x0.dtype).reshape(-1).expand(b)
        t_map = (t_b / self.steps).view(b, 1, 1, 1).expand(b, 1, h, w)
        return torch.sigmoid(self.body(torch.cat([g0.to(x0.dtype), x0, t_map], dim=1)))

    @classmethod
    def from_file(cls, path: str | Path) -> DGSANet:
        """Load weights (.safetensors or a weights-only .pth); the width is read from the file."""
        return cls.from_state_dict(load_state_dict(path))

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> DGSANet:
        """Build a net whose width fits `state` and load it strictly."""
        first = state.get("body.0.weight")
        if first is None:
            raise ValueError("not a DGSA state dict: body.0.weight is missing")
        net = cls(hidden=first.shape[0])
        load_into(net, state)
        return net.eval()
