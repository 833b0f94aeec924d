"""Background upsampling of whole photos: Real-ESRGAN (RRDBNet, tiled) or plain bicubic.

Faces are restored by the diffusion pipeline; everything else in the photo is upscaled here and
the faces are pasted onto it. `--bg-upsampler realesrgan` runs Real-ESRGAN's x2 network for
upscale factors up to 2 and its x4 network above, then resizes to the exact factor (as GFPGAN and
CodeFormer do); `none` is the bicubic resize; `auto` (the default) picks Real-ESRGAN when its
weights are on disk and a GPU is there, since on a CPU it takes minutes per megapixel.

On a CPU with a backend other than torch, Real-ESRGAN runs where the prior does
(`dynface.backends.compile_net`: measured for "auto"): one graph exported for one tile size,
and tiles smaller than that (photos smaller than a tile) edge-padded to it and cropped after.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynface import weights
from dynface.backends import compile_net
from dynface.backends.runtime_torch import TorchNet
from dynface.checkpoints import load_into
from dynface.config import BackgroundConfig, NetworkConfig
from dynface.devices import pick_device
from dynface.errors import UsageError
from dynface.faces.paste import upscale_background
from dynface.nets.rrdbnet import RRDBNet, build_rrdbnet
from dynface.tiling import TileSpec, tiled_upscale

CHOICES = ("auto", "realesrgan", "none")
#: Tiles in input pixels: 512 on a GPU (about 2 GB in fp16 for the x4 net), 256 on a CPU.
GPU_TILES = TileSpec(tile=512, overlap=32)
CPU_TILES = TileSpec(tile=256, overlap=32)


@dataclass
class BackgroundReport:
    """What upscaled one photo's background and how long it took (for the trace)."""

    upsampler: str
    seconds: float
    network: str | None = None
    device: str | None = None
    precision: str | None = None
    backend: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without empty fields."""
        return {key: value for key, value in vars(self).items() if value is not None}


class BicubicUpsampler:
    """Today's background: a bicubic resize (`--bg-upsampler none`)."""

    name = "bicubic"

    def __init__(self, note: str | None = None) -> None:
        self.note = note

    def upscale(self, image: np.ndarray, scale: float) -> tuple[np.ndarray, BackgroundReport]:
        """Resize an (H, W, 3) uint8 or [0, 1] float image by `scale` (tiled); same dtype out."""
        started = time.perf_counter()
        result = upscale_background(image, scale)
        return result, BackgroundReport(self.name, time.perf_counter() - started, note=self.note)


class RealESRGANUpsampler:
    """Real-ESRGAN x2 / x4 networks, loaded on first use, run in overlapping tiles."""

    name = "realesrgan"

    def __init__(
        self,
        sections: Mapping[int, NetworkConfig],
        device: torch.device,
        dtype: torch.dtype,
        tiles: TileSpec,
        weights_dir: str | Path | None = None,
        seed: int = 0,
        backend: str = "torch",
    ) -> None:
        self.sections = dict(sections)
        self.device = device
        self.dtype = dtype
        self.tiles = tiles
        self.weights_dir = weights_dir
        self.seed = seed
        self.backend = backend
        self._nets: dict[int, RRDBNet | FixedTiles] = {}

    def network_scale(self, scale: float) -> int:
        """The net for `scale`: x2 up to 2, x4 above (or whichever of the two is configured)."""
        wanted = 2 if scale <= 2 else 4
        return wanted if wanted in self.sections else next(iter(self.sections))

    def weight_name(self, net_scale: int) -> str:
        """The configured weight file (registry name or path) of one network, or "random"."""
        return str(self.sections[net_scale].weights)

    def upscale(self, image: np.ndarray, scale: float) -> tuple[np.ndarray, BackgroundReport]:
        """Upscale an (H, W, 3) uint8 or [0, 1] float image by `scale`; uint8 (H', W', 3) out."""
        started = time.perf_counter()
        net_scale = self.network_scale(scale)
        net = self.network(net_scale)
        pixels = image if image.dtype == np.uint8 else np.clip(image, 0, 1).astype(np.float32)
        compiled = isinstance(net, FixedTiles)
        dtype = torch.float32 if compiled else self.dtype  # a runtime applies its own precision
        result = tiled_upscale(
            net, pixels, net_scale, self.tiles, self.device, dtype, align=net.unshuffle
        )
        height, width = image.shape[:2]
        size = output_size(width, height, scale)
        if size != (result.shape[1], result.shape[0]):
            shrink = size[0] < result.shape[1]
            interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
            result = cv2.resize(result, size, interpolation=interp)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        resized = f"x{net_scale} network, then resized to x{scale:g}"
        report = BackgroundReport(
            self.name,
            time.perf_counter() - started,
            network=Path(self.weight_name(net_scale)).stem,
            device=str(self.device),
            precision=net.net.precision if compiled else str(self.dtype).removeprefix("torch."),
            backend=net.describe() if compiled else "torch",
            note=resized if net_scale != scale else None,
        )
        return result, report

    def network(self, net_scale: int) -> RRDBNet | FixedTiles:
        """The network of one scale, built and loaded (or seeded, for `weights: random`) once,
        on the backend (a CPU runtime when not torch)."""
        if net_scale not in self._nets:
            section = self.sections[net_scale]
            params = {"scale": net_scale, **section.params}
            if section.weights == "random":
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed + net_scale)
                    net = build_rrdbnet(params)
            else:
                path = weights.resolve(str(section.weights), weights_dir=self.weights_dir)
                net = load_into(build_rrdbnet(params), path)
            self._nets[net_scale] = self._placed(net.eval())
        return self._nets[net_scale]

    def _placed(self, net: RRDBNet) -> RRDBNet | FixedTiles:
        """`net` on a CPU runtime for one tile size when the backend says so, else on torch at
        the upsampler's dtype (GPUs, `--backend torch`, or "auto" measuring torch fastest)."""
        if self.device.type == "cpu" and self.backend not in ("torch", "torch-compile"):
            side = self.tiles.tile // net.unshuffle * net.unshuffle
            example = torch.zeros(1, 3, side, side)
            precision = "bf16" if self.dtype == torch.bfloat16 else "fp32"
            compiled = compile_net(net, self.backend, precision, example_inputs=(example,))
            if not isinstance(compiled, TorchNet):
                return FixedTiles(compiled, side, net.scale, net.unshuffle)
        return net.to(self.device, self.dtype)


class FixedTiles(nn.Module):
    """A net compiled for (N, 3, side, side) tiles that takes any tile up to that side: smaller
    ones are edge-padded to it and the output cropped, so one graph serves every tile."""

    def __init__(self, net: nn.Module, side: int, scale: int, unshuffle: int) -> None:
        super().__init__()
        self.net = net
        self.side = side
        self.scale = scale
        self.unshuffle = unshuffle

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if height > self.side or width > self.side:
            raise ValueError(f"tile {height}x{width} is larger than the graph's {self.side}")
        padded = F.pad(x, (0, self.side - width, 0, self.side - height), mode="replicate")
        return self.net(padded)[..., : height * self.scale, : width * self.scale]

    def describe(self) -> str:
        """E.g. "onnxruntime (measured fastest: ...)": the runtime and why, for the report."""
        reason = getattr(self.net, "reason", "")
        return str(self.net.backend) + (f" ({reason})" if reason else "")


BackgroundUpsampler = BicubicUpsampler | RealESRGANUpsampler


def output_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(width, height) of a photo upscaled by `scale`, as the face paste-back expects it."""
    return max(1, round(width * scale)), max(1, round(height * scale))


def make_background_upsampler(
    choice: str = "auto",
    config: BackgroundConfig | Mapping[str, Any] | None = None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    weights_dir: str | Path | None = None,
    scale: float = 2.0,
    seed: int = 0,
    backend: str = "torch",
) -> BackgroundUpsampler:
    """The background upsampler for `--bg-upsampler` (auto, realesrgan, none).

    `config` is a restore config's `background` section (`x2` / `x4` networks with `weights` and
    `params`, `weights: random` for tests; the official files when None). For `realesrgan`
    the weights of the network `scale` needs are checked (and downloaded) now, so a missing file
    fails before any face is restored; `auto` only uses files already on disk. `backend` is
    the restorer's (`--backend`): on a CPU, anything but torch runs Real-ESRGAN's tiles there.
    """
    if choice not in CHOICES:
        raise UsageError(f"--bg-upsampler must be one of {', '.join(CHOICES)}, got {choice!r}")
    if choice == "none":
        return BicubicUpsampler()
    if not isinstance(config, BackgroundConfig):
        config = BackgroundConfig.from_dict(config)
    torch_device = pick_device(device)
    tiles = GPU_TILES if torch_device.type in ("cuda", "mps") else CPU_TILES
    nets = {int(key[1:]): getattr(config, key) for key in ("x2", "x4")}
    upsampler = RealESRGANUpsampler(
        {scale: net for scale, net in nets.items() if net is not None},
        torch_device,
        _dtype(torch_device, precision),
        TileSpec(tile=config.tile or tiles.tile, overlap=config.overlap),
        weights_dir,
        seed,
        backend,
    )
    name = upsampler.weight_name(upsampler.network_scale(scale))
    if choice == "auto":
        reason = _auto_refusal(name, torch_device, weights_dir)
        if reason:
            return BicubicUpsampler(note=f"auto: {reason}")
    elif name != "random":
        weights.resolve(name, weights_dir=weights_dir)
    return upsampler


def _dtype(device: torch.device, precision: str) -> torch.dtype:
    """fp16 on CUDA (as Real-ESRGAN runs); the restorer's precision elsewhere."""
    if device.type == "cuda":
        return torch.bfloat16 if precision == "bf16" else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def _auto_refusal(name: str, device: torch.device, weights_dir: str | Path | None) -> str | None:
    """Why `auto` falls back to bicubic here (None: Real-ESRGAN can run)."""
    if name != "random" and not Path(name).expanduser().is_file():
        try:
            status, _ = weights.local_status(weights.get_spec(name), weights_dir)
        except weights.WeightsUnavailable:
            return f"{name} does not exist"
        if status != "present":
            state = "not downloaded" if status == "missing" else f"{status} on disk"
            return f"{name} is {state} (`dynface weights download {name}` to use it)"
    if device.type == "cpu":
        return "no GPU; --bg-upsampler realesrgan runs it on the CPU (slow: minutes per photo)"
    return None
