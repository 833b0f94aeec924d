"""Evaluation reports on disk (per-image CSV, summary.json/.md) and comparisons across methods."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

from dynface.metrics.evaluate import LOWER_IS_BETTER, METRICS, EvalReport

LABELS = {
    "psnr": "PSNR (dB, RGB)",
    "ssim": "SSIM (RGB)",
    "psnr_y": "PSNR (dB, Y)",
    "ssim_y": "SSIM (Y)",
    "lpips": "LPIPS",
    "fid": "FID",
    "niqe": "NIQE",
    "idd": "IDD (dlib)",
    "lmd": "LMD (5-pt / IOD)",
}
REPORT_FILES = ("per_image.csv", "summary.json", "summary.md", "fid_stats.npz")


def _arrow(metric: str) -> str:
    """'↓' for metrics where lower is better, '↑' otherwise."""
    return "↓" if metric in LOWER_IS_BETTER else "↑"


def write_report(
    report: EvalReport, out_dir: str | os.PathLike[str], name: str, overwrite: bool = False
) -> Path:
    """Write per_image.csv, summary.json, summary.md (and fid_stats.npz) into `out_dir`."""
    out = Path(out_dir)
    existing = [f for f in REPORT_FILES if (out / f).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds {', '.join(existing)}; pass --overwrite or another -o folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    metrics = [m for m in METRICS if m in report.counts and m != "fid"]
    with open(out / "per_image.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["name", *metrics, "restored", "gt"], extrasaction="ignore")
        writer.writeheader()
        for row in report.rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    stats = report.info.get("fid_stats")
    if stats is not None:
        stats.save(out / "fid_stats.npz")
    info = {k: v for k, v in report.info.items() if k != "fid_stats"}
    means = {m: report.summary[m] for m in METRICS if m in report.summary}
    notes = {m: _not_finite_note(v) for m, v in means.items() if not math.isfinite(v)}
    summary = {
        "name": name,
        **{m: value if math.isfinite(value) else None for m, value in means.items()},
        "counts": report.counts,
        "missing": report.missing,
        "info": info,
        **({"notes": notes} if notes else {}),
    }
    text = json.dumps(summary, indent=2, allow_nan=False)  # strict JSON: no Infinity or NaN
    (out / "summary.json").write_text(text + "\n", encoding="utf-8")
    (out / "summary.md").write_text(_markdown(name, report, info), encoding="utf-8")
    return out


def _not_finite_note(value: float) -> str:
    """Why a mean is null in summary.json (strict JSON holds no Infinity or NaN)."""
    cause = "infinity (an image identical to its ground truth has PSNR inf)"
    return f"mean is {value}, written as null: at least one image scored " + (
        cause if math.isinf(value) else "NaN"
    )


def _cell(value: object) -> object:
    """CSV cell: NaN as empty, floats with 6 significant decimals."""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def _markdown(name: str, report: EvalReport, info: dict[str, object]) -> str:
    """summary.md: the means, the images each mean covers, and what is missing and why."""
    lines = [f"# Evaluation: {name}", "", f"{info.get('images', 0)} images.", ""]
    lines += ["| metric | mean | images |", "| --- | ---: | ---: |"]
    for metric in METRICS:
        if metric in report.summary:
            value = report.summary[metric]
            lines.append(
                f"| {LABELS[metric]} {_arrow(metric)} | {value:.4f} | {report.counts[metric]} |"
            )
    if report.missing:
        lines += ["", "## Missing metrics", ""]
        lines += [f"- **{m}**: {reason}" for m, reason in report.missing.items()]
    gaps = info.get("without_value") or {}
    if gaps:
        lines += ["", "## Images without a value", ""]
        lines += [f"- **{m}**: {', '.join(names)}" for m, names in gaps.items()]
        lines += ["", "(no face found; for NIQE, a flat image or one under 96x192 px)"]
    if "fid_reference" in info:
        lines += ["", f"FID reference: `{info['fid_reference']}` "
                  f"({info.get('fid_reference_count')} images), extractor "
                  f"`{info.get('fid_extractor')}`."]  # fmt: skip
    lines += ["", "Settings: see docs/evaluation.md.", ""]
    return "\n".join(lines)


def load_summary(run_dir: str | os.PathLike[str]) -> dict[str, object]:
    """summary.json of a report folder (or the file itself)."""
    path = Path(run_dir)
    path = path / "summary.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no summary.json (run `dynface eval` first)")
    return json.loads(path.read_text(encoding="utf-8"))


def compare(
    run_dirs: list[Path],
    out_dir: str | os.PathLike[str],
    x: str = "psnr",
    y: str | None = None,
    labels: list[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Table (compare.md, compare.csv) over several reports and a scatter plot of two metrics."""
    summaries = [load_summary(d) for d in run_dirs]
    if labels is not None and len(labels) != len(summaries):
        raise ValueError(f"{len(labels)} labels for {len(summaries)} reports")
    names = labels or [
        str(s.get("name") or Path(d).name) for s, d in zip(summaries, run_dirs, strict=True)
    ]
    if y is None:
        y = "fid" if all("fid" in s for s in summaries) else "niqe"
    for axis in (x, y):
        if axis not in METRICS:
            raise ValueError(f"unknown metric {axis!r}; choose from {', '.join(METRICS)}")
    out = Path(out_dir)
    plot = out / f"scatter_{x}_vs_{y}.png"
    targets = [out / "compare.md", out / "compare.csv", plot]
    existing = [p.name for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds {', '.join(existing)}; pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    present = [m for m in METRICS if any(m in s for s in summaries)]
    _write_compare_csv(out / "compare.csv", names, summaries, present)
    lines = _compare_table(names, summaries, present)
    points = [(n, s[x], s[y]) for n, s in zip(names, summaries, strict=True) if _plottable(s, x, y)]
    skipped = [n for n, s in zip(names, summaries, strict=True) if not _plottable(s, x, y)]
    if not points:
        raise ValueError(f"no report has both {x} and {y}; pick other metrics with --x/--y")
    if skipped:
        lines += [f"Not in the plot (no {x} or {y}): {', '.join(skipped)}.", ""]
    lines += [f"![{x} vs {y}]({plot.name})", ""]
    (out / "compare.md").write_text("\n".join(lines), encoding="utf-8")
    _scatter(points, x, y, plot)
    return {"markdown": out / "compare.md", "csv": out / "compare.csv", "plot": plot}


def _write_compare_csv(
    path: Path, names: list[str], summaries: list[dict[str, object]], metrics: list[str]
) -> None:
    """compare.csv: one row per method, one column per metric (empty when missing)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", *metrics])
        for name, s in zip(names, summaries, strict=True):
            writer.writerow([name, *(_fmt(s.get(m)) for m in metrics)])


def _compare_table(
    names: list[str], summaries: list[dict[str, object]], metrics: list[str]
) -> list[str]:
    """The lines of compare.md's table: one row per method, "—" where a report lacks a metric."""
    header = "| method | " + " | ".join(f"{LABELS[m]} {_arrow(m)}" for m in metrics) + " |"
    lines = ["# Comparison", "", header, "|---" * (len(metrics) + 1) + "|"]
    for name, s in zip(names, summaries, strict=True):
        lines.append(f"| {name} | " + " | ".join(_fmt(s.get(m)) or "—" for m in metrics) + " |")
    return [*lines, "", "— = missing in that report (see its summary.md for why).", ""]


def _plottable(summary: dict[str, object], x: str, y: str) -> bool:
    """True when a report holds finite numbers for both axes (null: an infinite mean)."""
    return all(isinstance(summary.get(axis), int | float) for axis in (x, y))


def _fmt(value: object) -> str:
    """Table cell for a metric value (empty when missing)."""
    return f"{value:.4f}" if isinstance(value, int | float) else ""


def _scatter(points: list[tuple[str, float, float]], x: str, y: str, path: Path) -> None:
    """One labelled point per method, axes named with their better direction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=150)
    for name, vx, vy in points:
        ax.scatter(vx, vy, s=48)
        ax.annotate(name, (vx, vy), textcoords="offset points", xytext=(6, 4), fontsize=9)
    ax.set_xlabel(f"{LABELS[x]} {_arrow(x)}")
    ax.set_ylabel(f"{LABELS[y]} {_arrow(y)}")
    ax.grid(True, alpha=0.3)
    ax.margins(0.2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
