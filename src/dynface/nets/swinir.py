"""RM, the restoration module: SwinIR as used by DifFace (pixel-unshuffle in, nearest+conv up).

Parameter names follow DifFace's config (`img_size` is the feature resolution after the
unshuffle, `sf` the unshuffle/upscale factor), so `swinir_restoration512_L1.pth` loads with
strict keys. Window attention runs through `scaled_dot_product_attention` with the relative
position bias (and the shift mask) as an additive attention bias. The `attn_mask` and
`relative_position_index` buffers are recomputed, never needed from a file.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NUM_FEAT = 64
RGB_MEAN = (0.4488, 0.4371, 0.4040)


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) -> (B * nW, window * window, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    """(B * nW, window * window, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def relative_position_index(window: int) -> Tensor:
    """Index into the (2w-1)^2 bias table for every pair of positions in a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def shift_attention_mask(h: int, w: int, window: int, shift: int) -> Tensor:
    """(nW, N, N) additive mask (0 or -100) for shifted-window attention."""
    img = torch.zeros(1, h, w, 1)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    region = 0
    for hs in bounds:
        for ws in bounds:
            img[:, hs, ws, :] = region
            region += 1
    windows = window_partition(img, window).squeeze(-1)
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative position bias."""

    def __init__(self, dim: int, window: int, num_heads: int) -> None:
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, num_heads)
        )
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1).to(q.dtype)[None]
        if mask is not None:
            nw = mask.shape[0]
            bias = (bias[None] + mask[None, :, None].to(q.dtype)).expand(bw // nw, -1, -1, -1, -1)
            bias = bias.reshape(bw, self.num_heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    """Two linear layers with GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """Swin transformer block: (shifted) window attention and an MLP, both residual."""

    def __init__(
        self,
        dim: int,
        resolution: tuple[int, int],
        heads: int,
        window: int,
        shift: int,
        mlp_ratio: float,
    ) -> None:
        super().__init__()
        if min(resolution) <= window:
            window, shift = min(resolution), 0
        self.resolution = resolution
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = shift_attention_mask(*resolution, window, shift) if shift > 0 else None
        self.register_buffer("attn_mask", mask)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        h, w = size
        b, _, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        mask = None
        if self.shift:
            mask = (
                self.attn_mask
                if size == self.resolution
                else shift_attention_mask(h, w, self.window, self.shift).to(x.device)
            )
        y = self.attn(window_partition(y, self.window), mask)
        y = window_reverse(y, self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class ResidualGroup(nn.Module):
    """A stack of Swin blocks alternating plain and shifted windows."""

    def __init__(self, dim, resolution, depth, heads, window, mlp_ratio) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, resolution, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio)
            for i in range(depth)
        )

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        for block in self.blocks:
            x = block(x, size)
        return x


class RSTB(nn.Module):
    """Residual Swin Transformer Block: a residual group, a 3x3 conv, and a skip."""

    def __init__(self, dim, resolution, depth, heads, window, mlp_ratio, resi_connection) -> None:
        super().__init__()
        self.residual_group = ResidualGroup(dim, resolution, depth, heads, window, mlp_ratio)
        self.conv = _residual_conv(dim, resi_connection)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        b, _, c = x.shape
        y = self.residual_group(x, size).transpose(1, 2).reshape(b, c, *size)
        return self.conv(y).flatten(2).transpose(1, 2) + x


def _residual_conv(dim: int, kind: str) -> nn.Module:
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if kind == "3conv":
        return nn.Sequential(
            nn.Conv2d(dim, dim // 4, 3, 1, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(dim // 4, dim // 4, 1, 1, 0),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(dim // 4, dim, 3, 1, 1),
        )
    raise ValueError(f"unknown resi_connection {kind!r} (use '1conv' or '3conv')")


class PatchNorm(nn.Module):
    """The patch-embedding LayerNorm (kept as a module so its keys read `patch_embed.norm.*`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x)


def _check_variant(
    patch_size: int, upsampler: str, sf: int, unshuffle: bool, unshuffle_scale: int | None
) -> None:
    """Only the SwinIR variant DifFace ships (its RM) is implemented."""
    if patch_size != 1:
        raise ValueError("only patch_size=1 is supported (as in every released SwinIR)")
    if upsampler != "nearest+conv" or sf not in (2, 4, 8):
        raise ValueError("only DifFace's 'nearest+conv' RM with sf in {2, 4, 8} is supported")
    if unshuffle and unshuffle_scale is None:
        raise ValueError("unshuffle needs unshuffle_scale")


class SwinIR(nn.Module):
    """SwinIR with DifFace's `nearest+conv` head: (B, 3, H, W) in [0, 1] -> same size restored."""

    def __init__(
        self,
        img_size: int = 64,
        patch_size: int = 1,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        sf: int = 4,
        img_range: float = 1.0,
        upsampler: str = "",
        resi_connection: str = "1conv",
        unshuffle: bool = False,
        unshuffle_scale: int | None = None,
        patch_norm: bool = True,
        **unused: object,
    ) -> None:
        super().__init__()
        _check_variant(patch_size, upsampler, sf, unshuffle, unshuffle_scale)
        num_in = in_chans * unshuffle_scale**2 if unshuffle and unshuffle_scale else in_chans
        self.img_range = img_range
        self.upscale = 1 if unshuffle else sf
        self.pad_multiple = window_size * (sf if unshuffle else 1)
        self.register_buffer(
            "mean",
            torch.tensor(RGB_MEAN if in_chans == 3 else (0.0,)).view(1, -1, 1, 1),
            persistent=False,
        )
        conv = nn.Conv2d(num_in, embed_dim, 3, 1, 1)
        self.conv_first = nn.Sequential(nn.PixelUnshuffle(sf), conv) if unshuffle else conv
        resolution = (img_size, img_size)
        self.patch_embed = PatchNorm(embed_dim) if patch_norm else nn.Identity()
        self.layers = nn.ModuleList(
            RSTB(embed_dim, resolution, depth, heads, window_size, mlp_ratio, resi_connection)
            for depth, heads in zip(depths, num_heads, strict=True)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = _residual_conv(embed_dim, resi_connection)
        self.conv_before_upsample = nn.Sequential(
            nn.Conv2d(embed_dim, NUM_FEAT, 3, 1, 1), nn.LeakyReLU(inplace=True)
        )
        self.num_up = {2: 1, 4: 2, 8: 3}[sf]
        for i in range(1, self.num_up + 1):
            self.add_module(f"conv_up{i}", nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1))
        self.conv_hr = nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1)
        self.conv_last = nn.Conv2d(NUM_FEAT, in_chans, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward_features(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.patch_embed(x.flatten(2).transpose(1, 2))
        for layer in self.layers:
            tokens = layer(tokens, (h, w))
        return self.norm(tokens).transpose(1, 2).reshape(b, c, h, w)

    def forward(self, x: Tensor) -> Tensor:
        """Restore (B, 3, H, W) images in [0, 1]; the output is not clamped."""
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.pad_multiple, (-w) % self.pad_multiple
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else x
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        x = self.conv_before_upsample(x)
        for i in range(1, self.num_up + 1):
            up = getattr(self, f"conv_up{i}")
            x = self.lrelu(up(F.interpolate(x, scale_factor=2, mode="nearest")))
        x = self.conv_last(self.lrelu(self.conv_hr(x)))
        x = x / self.img_range + mean
        return x[..., : h * self.upscale, : w * self.upscale]
