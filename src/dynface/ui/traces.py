"""Pictures and tables of what the method decided for a face, made from its trace dict.

A trace (see `dynface.method.pipeline`) holds the equivalent blur level s*, the guidance blur
levels s_j and the diffusion steps t_j where each guidance target becomes active, the start step,
eta, a 16x16 thumbnail of the DGSA map and timings. `trace_picture` draws the face, the DGSA map
as a heat map over it, and the start steps on a timeline of the diffusion (t = T is pure noise,
t = 0 the clean face).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

#: Heat-map colours of the DGSA map (0: no guidance, 1: full guidance).
HEAT_MAP = "inferno"


def dgsa_overlay(face: np.ndarray, dgsa: np.ndarray, opacity: float = 0.55) -> np.ndarray:
    """The DGSA map (h, w) in [0, 1], upsampled, coloured and blended over a face (H, W, 3)."""
    height, width = face.shape[:2]
    strength = cv2.resize(dgsa.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    heat = colormaps[HEAT_MAP](np.clip(strength, 0, 1))[..., :3].astype(np.float32)
    return np.clip((1 - opacity) * face + opacity * heat, 0, 1)


def trace_picture(
    face: np.ndarray, trace: dict[str, Any] | None, total_steps: int = 1000, label: str = ""
) -> np.ndarray:
    """RGB picture (uint8) of one face's decisions: DGSA heat map and diffusion timeline."""
    figure = Figure(figsize=(9.0, 3.0), dpi=100, layout="constrained")
    if label:
        figure.suptitle(label, x=0.01, ha="left", fontsize=10, fontweight="bold")
    grid = figure.add_gridspec(1, 2, width_ratios=[1, 2.4])
    _draw_dgsa(figure.add_subplot(grid[0]), face, trace)
    _draw_timeline(figure.add_subplot(grid[1]), trace or {}, total_steps)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _draw_dgsa(axes: Any, face: np.ndarray, trace: dict[str, Any] | None) -> None:
    """Left panel: the DGSA map over the face with its colour bar, or the face and why not."""
    thumbnail = (trace or {}).get("dgsa_thumbnail")
    axes.set_xticks([])
    axes.set_yticks([])
    if thumbnail is None:
        axes.imshow(face)
        reason = "no DGSA map" if (trace or {}).get("dgsa") in (None, "none") else "map per step"
        axes.set_title(f"face ({reason})", fontsize=9)
        return
    dgsa = np.asarray(thumbnail, dtype=np.float32)
    axes.imshow(dgsa_overlay(face, dgsa))
    scale = ScalarMappable(Normalize(0, 1), HEAT_MAP)
    bar = axes.figure.colorbar(scale, ax=axes, fraction=0.046, pad=0.02)
    bar.ax.tick_params(labelsize=7)
    mean = trace.get("dgsa_mean")
    title = "DGSA guidance strength" + (f" (mean {mean:.2f})" if mean is not None else "")
    axes.set_title(title, fontsize=9)


def _draw_timeline(axes: Any, trace: dict[str, Any], total_steps: int) -> None:
    """Right panel: noise (t = T) to clean (t = 0), the sampled range and when each target acts."""
    axes.set_xlim(total_steps, 0)
    axes.set_ylim(0, 1)
    axes.set_yticks([])
    axes.set_xlabel("diffusion step t  (T = pure noise, 0 = clean face)", fontsize=8)
    axes.tick_params(labelsize=7)
    start = trace.get("start_t")
    if start is None:
        axes.set_title("no trace for this face", fontsize=9)
        return
    axes.axvspan(start, 0, ymin=0.4, ymax=0.6, color="#c6dbef")
    axes.text(start / 2, 0.5, "denoising", fontsize=8, color="#08519c", ha="center", va="center")
    axes.axvline(start, ymin=0.3, ymax=0.7, color="#08519c", linewidth=2)
    axes.text(start, 0.72, f"start t={start}", fontsize=8, color="#08519c", ha="center")
    levels = list(zip(trace.get("t_levels") or [], trace.get("s_levels") or [], strict=False))
    for j, (t_level, s_level) in enumerate(levels):
        axes.plot([t_level], [0.36], marker="^", markersize=8, color=f"C{1 + j}")
        label = f"guide {j + 1}: blur {s_level:g} px"
        axes.text(t_level, 0.26 - 0.09 * j, label, fontsize=7, color=f"C{1 + j}", ha="center")
    if levels:
        axes.text(total_steps, 0.92, "▲ guide j acts from its step on", fontsize=7, va="top")
    axes.set_title(_timeline_title(trace), fontsize=9)


def _timeline_title(trace: dict[str, Any]) -> str:
    """One line: s*, eta and the network evaluations, as the method reports them."""
    parts = []
    if trace.get("s_star") is not None:
        parts.append(f"s* = {trace['s_star']:g} px")
    effective = trace.get("s_effective")
    if effective is not None and effective != trace.get("s_star"):
        parts.append(f"fidelity {trace.get('fidelity', 0.5):g}: acts as {effective:g} px")
    if trace.get("eta") is not None:
        parts.append(f"eta = {trace['eta']:g}")
    if trace.get("nfe") is not None:
        parts.append(f"{trace['nfe']} denoising steps")
    return "  ·  ".join(parts) or "trace"


def stack_pictures(pictures: list[np.ndarray], gap: int = 12) -> np.ndarray:
    """Pictures of equal width one above the other on white, for one image of every face."""
    width = max(picture.shape[1] for picture in pictures)
    rows = []
    for k, picture in enumerate(pictures):
        if k:
            rows.append(np.full((gap, width, 3), 255, np.uint8))
        pad = width - picture.shape[1]
        rows.append(np.pad(picture, ((0, 0), (0, pad), (0, 0)), constant_values=255))
    return np.concatenate(rows)


def summary_rows(faces: list[tuple[str, int, dict[str, Any] | None]]) -> list[list[str]]:
    """Table rows, one per face (see SUMMARY_HEADERS)."""
    rows = []
    for photo, index, trace in faces:
        trace = trace or {}
        timing = trace.get("timing") or {}
        seconds = sum(float(value) for value in timing.values())
        rows.append(
            [
                photo,
                str(index + 1),
                _text(trace.get("fidelity")),
                _text(trace.get("s_star")),
                _text(trace.get("start_t")),
                ", ".join(_text(t) for t in trace.get("t_levels") or []) or "-",
                ", ".join(_text(s) for s in trace.get("s_levels") or []) or "-",
                _text(trace.get("eta")),
                _text(trace.get("dgsa_mean")),
                f"{seconds:.2f} s" if timing else "-",
            ]
        )
    return rows


#: Columns of `summary_rows`: guide j acts from step t_j on, with blur s_j (px at 512).
SUMMARY_HEADERS = [
    "photo",
    "face",
    "fidelity",
    "s* (px)",
    "start t",
    "guide t_j",
    "guide s_j (px)",
    "eta",
    "DGSA mean",
    "time",
]


def _text(value: Any) -> str:
    """A table cell: '-' for missing values, compact numbers otherwise."""
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)
