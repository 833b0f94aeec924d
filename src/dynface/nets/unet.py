"""The improved-DDPM UNet of DifFace's face prior, with state-dict keys identical to the release.

Parameter names follow DifFace's config (`image_size`, `model_channels`, `channel_mult`,
`num_res_blocks`, `attention_resolutions` as feature-map sizes, `num_head_channels`, ...), so the
public `iddpm_ffhq512_ema500000.pth` loads with strict keys. Attention runs through
`scaled_dot_product_attention`; group norms are computed in float32 for fp16/bf16 safety.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GroupNorm32(nn.GroupNorm):
    """GroupNorm over 32 groups, evaluated in float32 whatever the input precision."""

    def __init__(self, channels: int) -> None:
        super().__init__(32, channels)

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).type(x.dtype)


def timestep_embedding(timesteps: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding [cos | sin] of (possibly fractional) timesteps, shape (B, dim)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, dtype=torch.float32, device=timesteps.device)
        / half
    )
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class TimestepBlock(nn.Module):
    """A layer that also takes the timestep embedding."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class TimestepSequential(nn.Sequential):
    """Sequential container passing the embedding to the children that take it."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, TimestepBlock) else layer(x)
        return x


class Upsample(nn.Module):
    """Nearest-neighbour x2 upsampling, optionally followed by a 3x3 convolution."""

    def __init__(self, channels: int, use_conv: bool) -> None:
        super().__init__()
        if use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.use_conv = use_conv

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """x2 downsampling by a strided 3x3 convolution (or average pooling)."""

    def __init__(self, channels: int, use_conv: bool) -> None:
        super().__init__()
        self.op = (
            nn.Conv2d(channels, channels, 3, stride=2, padding=1)
            if use_conv
            else nn.AvgPool2d(kernel_size=2, stride=2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class ResBlock(TimestepBlock):
    """Residual block with timestep conditioning (scale-shift norm or additive)."""

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        dropout: float,
        out_channels: int | None = None,
        use_scale_shift_norm: bool = False,
        up: bool = False,
        down: bool = False,
    ) -> None:
        super().__init__()
        out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            GroupNorm32(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False), Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(),
            nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels),
        )
        self.out_layers = nn.Sequential(
            GroupNorm32(out_channels),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip_connection = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        if self.updown:
            h = self.in_layers[:-1](x)
            h = self.in_layers[-1](self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Spatial self-attention; heads split before q/k/v as in the legacy iDDPM layout."""

    def __init__(self, channels: int, num_heads: int = 1, num_head_channels: int = -1) -> None:
        super().__init__()
        if num_head_channels == -1:
            self.num_heads = num_heads
        else:
            if channels % num_head_channels:
                raise ValueError(
                    f"{channels} channels do not split into heads of {num_head_channels}"
                )
            self.num_heads = channels // num_head_channels
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        length = qkv.shape[-1]
        head_dim = c // self.num_heads
        q, k, v = qkv.reshape(b, self.num_heads, 3 * head_dim, length).split(head_dim, dim=2)
        h = F.scaled_dot_product_attention(
            q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2)
        )
        h = h.transpose(-1, -2).reshape(b, c, length)
        return (x + self.proj_out(h)).reshape(b, c, *spatial)


class UNetModel(nn.Module):
    """iDDPM UNet: `forward(x, t)` returns (B, out_channels, H, W) (epsilon and variance)."""

    def __init__(
        self,
        image_size: int,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int | Sequence[int],
        attention_resolutions: Sequence[int],
        dropout: float = 0.0,
        channel_mult: Sequence[float] = (1, 2, 4, 8),
        conv_resample: bool = True,
        dims: int = 2,
        num_classes: int | None = None,
        use_fp16: bool = False,
        num_heads: int = 1,
        num_head_channels: int = -1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        use_new_attention_order: bool = False,
    ) -> None:
        super().__init__()
        if dims != 2 or num_classes is not None or use_new_attention_order:
            raise ValueError("only the 2-D, unconditional, legacy-attention UNet is supported")
        blocks_per_level = _per_level(num_res_blocks, len(channel_mult))
        self.image_size = image_size
        self.model_channels = model_channels
        self.out_channels = out_channels
        emb_dim = model_channels * 4
        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        plan = _Levels(
            [int(m * model_channels) for m in channel_mult],
            blocks_per_level,
            tuple(attention_resolutions),
            _Blocks(emb_dim, dropout, use_scale_shift_norm, num_heads, num_head_channels),
            resblock_updown,
            conv_resample,
        )
        # Construction order fixes the seeded random init of the tiny presets: keep it.
        self.input_blocks, skips, resolution = plan.encoder(in_channels, image_size)
        self.middle_block = plan.middle()
        self.output_blocks = plan.decoder(skips, resolution)
        width = plan.widths[0]
        self.out = nn.Sequential(
            GroupNorm32(width), nn.SiLU(), nn.Conv2d(width, out_channels, 3, padding=1)
        )

    def forward(self, x: Tensor, timesteps: Tensor) -> Tensor:
        """Predict the 6-channel output (epsilon, variance interpolation) for `x` at `timesteps`."""
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(x.shape[0])
        dtype = self.time_embed[0].weight.dtype
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels).to(dtype))
        h = x.to(dtype)
        skips = []
        for module in self.input_blocks:
            h = module(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for module in self.output_blocks:
            h = module(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h).to(x.dtype)


def _per_level(num_res_blocks: int | Sequence[int], levels: int) -> list[int]:
    """Residual blocks per resolution level (one number for all, or one per level)."""
    if isinstance(num_res_blocks, int):
        return [num_res_blocks] * levels
    if len(num_res_blocks) != levels:
        raise ValueError("num_res_blocks and channel_mult must have the same length")
    return list(num_res_blocks)


@dataclass(frozen=True)
class _Blocks:
    """Builds the UNet's residual and attention blocks with its shared settings."""

    emb_dim: int
    dropout: float
    scale_shift: bool
    num_heads: int
    num_head_channels: int

    def res(self, ch_in: int, ch_out: int, **kw: bool) -> ResBlock:
        return ResBlock(ch_in, self.emb_dim, self.dropout, ch_out, self.scale_shift, **kw)

    def attn(self, ch: int, heads: int | None = None) -> AttentionBlock:
        return AttentionBlock(ch, heads or self.num_heads, self.num_head_channels)


@dataclass(frozen=True)
class _Levels:
    """The UNet's resolution levels: channel width, residual blocks and attention per level."""

    widths: list[int]
    num_res_blocks: list[int]
    attention_resolutions: tuple[int, ...]
    blocks: _Blocks
    resblock_updown: bool
    conv_resample: bool

    def encoder(self, in_channels: int, size: int) -> tuple[nn.ModuleList, list[int], int]:
        """Input blocks, the channels of each skip connection, and the lowest resolution."""
        ch = self.widths[0]
        modules = nn.ModuleList([TimestepSequential(nn.Conv2d(in_channels, ch, 3, padding=1))])
        skips = [ch]
        for level, width in enumerate(self.widths):
            for _ in range(self.num_res_blocks[level]):
                layers: list[nn.Module] = [self.blocks.res(ch, width)]
                ch = width
                if size in self.attention_resolutions:
                    layers.append(self.blocks.attn(ch))
                modules.append(TimestepSequential(*layers))
                skips.append(ch)
            if level != len(self.widths) - 1:
                down = (
                    self.blocks.res(ch, ch, down=True)
                    if self.resblock_updown
                    else Downsample(ch, self.conv_resample)
                )
                modules.append(TimestepSequential(down))
                skips.append(ch)
                size //= 2
        return modules, skips, size

    def middle(self) -> TimestepSequential:
        """The bottleneck: residual, attention, residual at the deepest width."""
        ch = self.widths[-1]
        return TimestepSequential(
            self.blocks.res(ch, ch), self.blocks.attn(ch), self.blocks.res(ch, ch)
        )

    def decoder(self, skips: list[int], size: int) -> nn.ModuleList:
        """Output blocks, consuming the skip connections from the deepest up."""
        ch = self.widths[-1]
        modules = nn.ModuleList()
        for level, width in list(enumerate(self.widths))[::-1]:
            for i in range(self.num_res_blocks[level] + 1):
                layers: list[nn.Module] = [self.blocks.res(ch + skips.pop(), width)]
                ch = width
                if size in self.attention_resolutions:
                    layers.append(self.blocks.attn(ch, heads=1))
                if level and i == self.num_res_blocks[level]:
                    up = (
                        self.blocks.res(ch, ch, up=True)
                        if self.resblock_updown
                        else Upsample(ch, self.conv_resample)
                    )
                    layers.append(up)
                    size *= 2
                modules.append(TimestepSequential(*layers))
        return modules
