"""Losses of the DGSA stage: stationary-wavelet sub-band L1 and DISTS (VGG16 weights by path)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynface.checkpoints import load_state_dict


def haar_swt(x: Tensor, levels: int = 2) -> list[Tensor]:
    """Undecimated (stationary) Haar transform: [LH1, HL1, HH1, ..., LHn, HLn, HHn, LLn].

    Level j uses the a-trous Haar filters dilated by 2^(j-1), circular padding; every band keeps
    the input size, so the transform is shift-invariant (no aliasing between sub-bands).
    """
    b, c, h, w = x.shape
    lo = torch.tensor([0.5, 0.5], dtype=x.dtype, device=x.device)
    hi = torch.tensor([0.5, -0.5], dtype=x.dtype, device=x.device)
    kernels = torch.stack(
        [torch.outer(lo, hi), torch.outer(hi, lo), torch.outer(hi, hi), torch.outer(lo, lo)]
    )[:, None].repeat(c, 1, 1, 1)  # (4c, 1, 2, 2): LH, HL, HH, LL per channel
    bands: list[Tensor] = []
    approx = x
    for j in range(levels):
        d = 2**j
        out = F.conv2d(F.pad(approx, (0, d, 0, d), mode="circular"), kernels, dilation=d, groups=c)
        out = out.reshape(b, c, 4, h, w)
        bands += [out[:, :, 0], out[:, :, 1], out[:, :, 2]]
        approx = out[:, :, 3]
    return [*bands, approx]


class SWTLoss(nn.Module):
    """Weighted L1 over stationary-wavelet sub-bands: the DGSA loss's first term
    (docs/training.md#dgsa)."""

    def __init__(self, levels: int = 2, weights: list[float] | None = None):
        super().__init__()
        self.levels = levels
        n = 3 * levels + 1
        self.weights = list(weights) if weights is not None else [1.0] * n
        if len(self.weights) != n:
            raise ValueError(
                f"{levels} SWT levels have {n} sub-bands; got {len(self.weights)} weights"
            )

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Sum over bands of weight * mean |band(pred) - band(target)|."""
        bands = zip(haar_swt(pred, self.levels), haar_swt(target, self.levels), strict=True)
        return sum(w * (p - t).abs().mean() for w, (p, t) in zip(self.weights, bands, strict=True))


#: torchvision's VGG16 `features` indices of the conv layers DISTS uses, per stage.
_VGG_STAGES = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
_VGG_CHANNELS = (64, 128, 256, 512, 512)


class _L2Pool(nn.Module):
    """DISTS's L2 pooling: sqrt of Hann-weighted local energy, stride 2."""

    def __init__(self, channels: int):
        super().__init__()
        a = torch.hann_window(5, periodic=False, dtype=torch.float64)[1:-1]
        g = torch.outer(a, a)
        self.register_buffer("kernel", (g / g.sum()).float()[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv2d(x**2, self.kernel, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


def _dists_alpha_beta() -> tuple[Tensor, Tensor] | None:
    """The published DISTS alpha/beta, as shipped inside torchmetrics (None when unavailable)."""
    try:
        import torchmetrics.functional.image.dists as tm_dists
    except ImportError:
        return None
    path = Path(tm_dists.__file__).parent / "dists_models" / "weights.pt"
    if not path.is_file():
        return None
    w = torch.load(path, map_location="cpu", weights_only=True)
    return w["alpha"], w["beta"]


class DISTS(nn.Module):
    """DISTS (Ding et al. 2020) on a frozen VGG16 whose weights the user supplies by path."""

    def __init__(self, vgg_weights: str | Path):
        super().__init__()
        state = load_state_dict(vgg_weights)
        state = {k.removeprefix("features."): v for k, v in state.items()}
        self.stages = nn.ModuleList()
        cin = 3
        for i, (idx, cout) in enumerate(zip(_VGG_STAGES, _VGG_CHANNELS, strict=True)):
            layers: list[nn.Module] = [] if i == 0 else [_L2Pool(cin)]
            for j in idx:
                conv = nn.Conv2d(cin, cout, 3, padding=1)
                if f"{j}.weight" not in state:
                    raise ValueError(
                        f"{vgg_weights}: no VGG16 layer features.{j}; pass torchvision's "
                        "vgg16 state dict (keys features.N.weight/bias)"
                    )
                conv.weight.data.copy_(state[f"{j}.weight"])
                conv.bias.data.copy_(state[f"{j}.bias"])
                layers += [conv, nn.ReLU()]
                cin = cout
            self.stages.append(nn.Sequential(*layers))
        self.requires_grad_(False)
        self.chns = (3, *_VGG_CHANNELS)
        ab = _dists_alpha_beta()
        if ab is None:  # uniform weights: structure and texture terms count equally
            ab = (torch.ones(1, sum(self.chns), 1, 1), torch.ones(1, sum(self.chns), 1, 1))
        self.register_buffer("alpha", ab[0].float())
        self.register_buffer("beta", ab[1].float())
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _features(self, x: Tensor) -> list[Tensor]:
        feats = [x]
        h = (x - self.mean) / self.std
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        return feats

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean DISTS distance of two (B, 3, H, W) batches in [0, 1]; 0 for identical images."""
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, self.chns, dim=1)
        betas = torch.split(self.beta / total, self.chns, dim=1)
        sim = 0.0
        c = 1e-6
        for fx, fy, a, b in zip(
            self._features(pred), self._features(target), alphas, betas, strict=True
        ):
            mx, my = fx.mean((2, 3), keepdim=True), fy.mean((2, 3), keepdim=True)
            vx = (fx - mx).pow(2).mean((2, 3), keepdim=True)
            vy = (fy - my).pow(2).mean((2, 3), keepdim=True)
            cov = (fx * fy).mean((2, 3), keepdim=True) - mx * my
            structure = (2 * mx * my + c) / (mx**2 + my**2 + c)
            texture = (2 * cov + c) / (vx + vy + c)
            sim = sim + (a * structure).sum(1) + (b * texture).sum(1)
        return (1 - sim).mean()
