"""LPIPS v0.1 (Zhang et al. 2018) in plain torch: an ImageNet trunk plus learned linear heads.

The trunks are torchvision's AlexNet / VGG-16 `features` layouts, so their published state dicts
load unchanged; the heads are the `lin0..lin4` 1x1 convolutions of richzhang/PerceptualSimilarity.
Inputs are RGB in [0, 1] (mapped to [-1, 1] as `lpips.LPIPS(normalize=True)` does); lower is
more similar.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from dynface.metrics.weights import load_state_dict, trust_loaded

# (layer list, indices of `features` after which LPIPS taps the activations)
_ALEX = (
    [("conv", 3, 64, 11, 4, 2), ("relu",), ("pool",), ("conv", 64, 192, 5, 1, 2), ("relu",),
     ("pool",), ("conv", 192, 384, 3, 1, 1), ("relu",), ("conv", 384, 256, 3, 1, 1), ("relu",),
     ("conv", 256, 256, 3, 1, 1), ("relu",)],
    (1, 4, 7, 9, 11),
)  # fmt: skip
_VGG_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
NETS = ("alex", "vgg")


def _vgg_layers() -> tuple[list[tuple], tuple[int, ...]]:
    """VGG-16 `features` up to relu5_3, and the indices of relu1_2 ... relu5_3."""
    layers: list[tuple] = []
    taps: list[int] = []
    channels = 3
    for item in _VGG_CFG:
        if item == "M":
            taps.append(len(layers) - 1)
            layers.append(("pool2",))
        else:
            layers += [("conv", channels, item, 3, 1, 1), ("relu",)]
            channels = item
    taps.append(len(layers) - 1)
    return layers, tuple(taps)


def _build(layers: list[tuple]) -> nn.Sequential:
    """nn.Sequential with torchvision's module indices for the given layer descriptions."""
    modules: list[nn.Module] = []
    for layer in layers:
        if layer[0] == "conv":
            _, cin, cout, k, s, p = layer
            modules.append(nn.Conv2d(cin, cout, k, stride=s, padding=p))
        elif layer[0] == "relu":
            modules.append(nn.ReLU())
        elif layer[0] == "pool":
            modules.append(nn.MaxPool2d(3, 2))
        else:
            modules.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*modules)


class LPIPS(nn.Module):
    """LPIPS distance between two Bx3xHxW batches in [0, 1]; returns B values."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in NETS:
            raise ValueError(f"LPIPS net must be one of {NETS}, got {net!r}")
        layers, taps = _ALEX if net == "alex" else _vgg_layers()
        self.net = net
        self.taps = taps
        self.features = _build(layers)
        tap_widths, width = [], 3
        for index, module in enumerate(self.features):
            width = module.out_channels if isinstance(module, nn.Conv2d) else width
            if index in taps:
                tap_widths.append(width)
        self.lins = nn.ModuleList(nn.Conv2d(w, 1, 1, bias=False) for w in tap_widths)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    @classmethod
    def from_files(
        cls,
        net: str = "alex",
        weights_dir: str | os.PathLike[str] | None = None,
        download: bool = False,
    ) -> LPIPS:
        """LPIPS with the registered trunk and head files (`lpips_<net>_backbone`, `_lin`)."""
        model = cls(net)
        model.load_weights(
            load_state_dict(f"lpips_{net}_backbone", weights_dir, download),
            load_state_dict(f"lpips_{net}_lin", weights_dir, download),
        )
        trust_loaded(f"lpips_{net}_backbone", weights_dir)
        return model

    def load_weights(self, trunk: dict[str, torch.Tensor], heads: dict[str, torch.Tensor]) -> None:
        """Load a torchvision trunk state dict and an LPIPS `linK.model.1.weight` head dict."""
        features = {
            k.removeprefix("features."): v for k, v in trunk.items() if k.startswith("features.")
        }
        own = self.features.state_dict()
        self.features.load_state_dict({k: features[k] for k in own if k in features}, strict=True)
        lins = {
            f"{k.split('.')[0].removeprefix('lin')}.weight": v
            for k, v in heads.items()
            if k.startswith("lin")
        }
        self.lins.load_state_dict(lins, strict=True)

    def forward(self, restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS of two batches in [0, 1]."""
        both = torch.cat([restored, target]).to(self.shift.dtype)
        x = (both * 2 - 1 - self.shift) / self.scale
        total = torch.zeros(restored.shape[0], device=x.device, dtype=x.dtype)
        layer = 0
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.taps:
                unit = x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
                a, b = unit.chunk(2)
                total = total + self.lins[layer]((a - b).square()).mean(dim=(1, 2, 3))
                layer += 1
                if layer == len(self.taps):
                    break
        return total
