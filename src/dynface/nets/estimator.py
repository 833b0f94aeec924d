"""Learned blur-level estimator SE = SDE(TM(y)) (docs/training.md#networks-dynfacenetsestimator).

SDE regresses the Gaussian blur std s (px at 512) of a blurred face. TM maps any degraded face y
to k(s*) * x, the Gaussian-blurred clean face, so that SDE can read s* off it. Both work at a
reduced square size internally (ours: 256 px for SDE, 128 px for TM), take (B, 3, H, W) batches
in [0, 1] of any size, and stay small (well under a few MB of weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynface.resize import resize
from dynface.units import S_MAX


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
        nn.GroupNorm(min(8, cout // 4), cout),
        nn.GELU(),
    )


class SDE(nn.Module):
    """Small CNN: blurred face -> s in [0, s_max] px at 512 (patchify stem, global pooling)."""

    def __init__(
        self,
        work_size: int = 256,
        channels: tuple[int, ...] = (16, 32, 64, 96, 128),
        s_max: float = S_MAX,
    ):
        super().__init__()
        self.work_size = work_size
        self.channels = list(channels)
        self.s_max = s_max
        # A 4x4 stride-4 stem sees every input pixel, so fine detail survives the cheap downscale.
        self.stem = nn.Conv2d(3, channels[0], 4, stride=4)
        layers: list[nn.Module] = []
        cin = channels[0]
        for cout in channels[1:]:
            layers += [_conv(cin, cout, stride=2), _conv(cout, cout)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * cin, 64), nn.GELU(), nn.Linear(64, 1))

    def forward(self, y: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B,) blur std in px at 512."""
        h = self.body(self.stem(resize(y, self.work_size, mode="bilinear") * 2 - 1))
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.s_max * torch.sigmoid(self.head(pooled)[:, 0])


class TM(nn.Module):
    """Small U-Net: degraded face y -> its Gaussian-blurred clean version k(s*) * x, in [0, 1].

    It runs at half its working size (stride-2 stem, pixel-shuffle head) and adds its output to
    the input as a residual, which keeps it cheap enough to train on a CPU.
    """

    def __init__(self, work_size: int = 128, channels: tuple[int, ...] = (16, 32, 64, 96)):
        super().__init__()
        self.work_size = work_size
        self.channels = list(channels)
        self.inp = _conv(3, channels[0], stride=2)
        self.down = nn.ModuleList(
            nn.Sequential(_conv(a, b, stride=2), _conv(b, b))
            for a, b in zip(channels[:-1], channels[1:], strict=True)
        )
        self.up = nn.ModuleList(
            nn.Sequential(_conv(b + a, a), _conv(a, a))
            for a, b in zip(channels[:-1], channels[1:], strict=True)
        )
        self.out = nn.Sequential(nn.Conv2d(channels[0], 12, 3, padding=1), nn.PixelShuffle(2))

    def forward(self, y: Tensor, out_size: int | None = None) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, S, S); S = `out_size`, default the working size."""
        x = resize(y, self.work_size, mode="bilinear") * 2 - 1
        skips = [self.inp(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        h = skips.pop()
        for block in reversed(self.up):
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], dim=1))
        out = ((x + self.out(h)).clamp(-1, 1) + 1) / 2
        size = out_size or self.work_size
        if size != self.work_size:
            out = F.interpolate(out, size=(size, size), mode="bilinear", align_corners=False)
        return out


class SE(nn.Module):
    """Blur-level estimator SE(y) = SDE(TM(y)): degraded face -> equivalent blur level s*."""

    def __init__(self, tm: TM | None = None, sde: SDE | None = None):
        super().__init__()
        self.tm = tm or TM()
        self.sde = sde or SDE()

    def forward(self, y: Tensor, return_blurred: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """(B, 3, H, W) in [0, 1] -> (B,) s* in px at 512 (and TM's output when asked)."""
        blurred = self.tm(y, out_size=self.sde.work_size)
        s = self.sde(blurred)
        return (s, blurred) if return_blurred else s
