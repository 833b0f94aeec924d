"""Evaluate a folder of restored faces: pair with ground truth by name, batch metrics on a device.

Full-reference metrics (PSNR, SSIM, LPIPS, IDD, LMD) need `gt`; NIQE needs nothing; FID compares
the restored set with the GT folder, another folder, or saved statistics. A metric that cannot be
computed (no GT, weight file missing, package missing) is put in `missing` with the reason and
gets no number.

Under a launcher (`accelerate launch`, torchrun) each process scores every N-th pair and features
every N-th image on its own device; the rows and features are gathered, and the main process
gets the same report as a single-process run (the other processes get None).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from dynface.io import list_images, read_image, to_tensor
from dynface.metrics import fidelity
from dynface.metrics.fid import FeatureCache, FeatureStats, folder_features, frechet_distance
from dynface.metrics.niqe import has_enough_blocks, niqe
from dynface.metrics.weights import WeightsCorrupted, WeightsUnavailable
from dynface.parallel import Processes, processes

METRICS = ("psnr", "ssim", "psnr_y", "ssim_y", "lpips", "fid", "niqe", "idd", "lmd")
NEEDS_GT = frozenset({"psnr", "ssim", "psnr_y", "ssim_y", "lpips", "idd", "lmd"})
LOWER_IS_BETTER = frozenset({"lpips", "fid", "niqe", "idd", "lmd"})
SET_LEVEL = frozenset({"fid"})


class UnmatchedFilesError(ValueError):
    """Restored and ground-truth folders whose file names do not pair up."""


@dataclass
class EvalOptions:
    """What to compute and how (defaults: every metric, on the GPU when there is one)."""

    metrics: Sequence[str] = METRICS
    weights_dir: Path | None = None
    download: bool = False
    fid_ref: Path | None = None
    lpips_net: str = "alex"
    device: str = "auto"
    batch_size: int = 8
    cache_dir: Path | None = None
    use_cache: bool = True
    fid_extractor: tuple[str, Callable[[torch.Tensor], torch.Tensor]] | None = None


@dataclass
class EvalReport:
    """Per-image rows, the summary (means), missing metrics with reasons, and run details."""

    rows: list[dict[str, object]]
    summary: dict[str, float]
    counts: dict[str, int]
    missing: dict[str, str]
    info: dict[str, object] = field(default_factory=dict)


def default_cache_dir() -> Path:
    """`eval_cache` under dynface's one cache home (`dynface.weights.home_dir`)."""
    from dynface.weights import home_dir

    return home_dir() / "eval_cache"


def match_pairs(restored: Path, gt: Path | None) -> list[tuple[str, Path, Path | None]]:
    """(stem, restored file, GT file) sorted by stem; unmatched names raise with the full list."""
    restored_files = _by_stem(restored)
    if gt is None:
        return [(stem, path, None) for stem, path in sorted(restored_files.items())]
    gt_files = _by_stem(gt)
    only_restored = sorted(set(restored_files) - set(gt_files))
    only_gt = sorted(set(gt_files) - set(restored_files))
    if only_restored or only_gt:
        lines = [f"file names in {restored} and {gt} do not pair up (matched by name stem):"]
        if only_restored:
            lines.append(f"  no GT for: {', '.join(restored_files[s].name for s in only_restored)}")
        if only_gt:
            lines.append(f"  no restored image for: {', '.join(gt_files[s].name for s in only_gt)}")
        lines.append("rename them or move them out of the folders")
        raise UnmatchedFilesError("\n".join(lines))
    return [(stem, restored_files[stem], gt_files[stem]) for stem in sorted(restored_files)]


def _by_stem(folder: Path) -> dict[str, Path]:
    """Images of a folder keyed by name stem; a missing folder or a repeated stem raises."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files: dict[str, Path] = {}
    for path in list_images([folder]):
        if path.stem in files:
            raise UnmatchedFilesError(
                f"{folder}: {files[path.stem].name} and {path.name} share the name {path.stem!r}"
            )
        files[path.stem] = path
    if not files:
        raise FileNotFoundError(f"{folder}: no images found")
    return files


def load_image(path: Path) -> torch.Tensor:
    """3xHxW float32 tensor in [0, 1] of an image file."""
    return to_tensor(read_image(path).pixels)[0]


def evaluate(
    restored: Path,
    gt: Path | None = None,
    options: EvalOptions | None = None,
    progress: bool = True,
) -> EvalReport | None:
    """Compute the requested metrics for every restored image and their means.

    Returns the report; under a multi-process launcher, on the main process only (None on others).
    """
    options = options or EvalOptions()
    unknown = sorted(set(options.metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    wanted = [m for m in METRICS if m in options.metrics]
    pairs = match_pairs(Path(restored), Path(gt) if gt is not None else None)
    procs = processes(options.device)
    tools = _Tools.build(wanted, gt, options, procs)
    active = [m for m in wanted if m not in tools.missing]
    with _progress(progress and procs.is_main) as bar:
        rows = _score_rows(pairs, active, tools, options, procs, bar)
        summary, counts = _means(rows, [m for m in active if m not in SET_LEVEL])
        for name, count in counts.items():
            if count == 0:
                tools.missing[name] = (
                    "no image gave a value (no face found, or images under 96x192 px for NIQE)"
                )
        info: dict[str, object] = {"images": len(rows), "device": str(procs.device)}
        gaps = _without_value(rows, list(counts))
        if gaps:
            info["without_value"] = gaps
        if tools.fid is not None and "fid" in active:
            fid = _fid(tools.fid, [p[1] for p in pairs], options, procs, bar)
            if fid is not None:
                value, stats, fid_info = fid
                summary["fid"], counts["fid"] = value, stats.count
                info.update(fid_info, fid_stats=stats)
    if not procs.is_main:
        return None
    return EvalReport(rows=rows, summary=summary, counts=counts, missing=tools.missing, info=info)


@dataclass
class _Tools:
    """The networks the requested metrics need, and why the others cannot run."""

    missing: dict[str, str]
    lpips: object | None
    faces: object | None
    fid: _FidSetup | None

    @classmethod
    def build(
        cls, wanted: list[str], gt: Path | None, options: EvalOptions, procs: Processes
    ) -> _Tools:
        """Load what each wanted metric needs; record why any cannot run."""
        device = procs.device
        missing: dict[str, str] = {}
        if gt is None:
            for name in wanted:
                if name in NEEDS_GT:
                    missing[name] = "needs ground truth (--gt): it is a full-reference metric"
        with procs.main_first():  # one process downloads or hash-checks weight files at a time
            lpips_model = _prepare("lpips", wanted, missing, lambda: _lpips(options, device))
            need_faces = {"idd", "lmd"} & set(wanted)
            faces = _prepare("idd", wanted, missing, _faces) if need_faces else None
            if faces is None and "lmd" in wanted and "lmd" not in missing:
                missing["lmd"] = missing.get("idd", "face models unavailable")
            fid_setup = _prepare("fid", wanted, missing, lambda: _fid_setup(options, gt, device))
        return cls(missing, lpips_model, faces, fid_setup)


def _score_rows(
    pairs: list[tuple[str, Path, Path | None]],
    active: list[str],
    tools: _Tools,
    options: EvalOptions,
    procs: Processes,
    bar,
) -> list[dict[str, object]]:
    """Per-image rows of this process's share, gathered and put back in input order."""
    order = {stem: i for i, (stem, _, _) in enumerate(pairs)}
    mine = procs.shard(pairs)
    rows: list[dict[str, object]] = []
    task = bar.add_task(_share_label("metrics", procs), total=len(mine))
    for batch in _batches(mine, options.batch_size):
        for names, restored_batch, gt_batch, files in _stack_same_size(batch, procs.device):
            scores = _batch_scores(active, restored_batch, gt_batch, tools.lpips, tools.faces)
            for i, (stem, rpath, gpath) in enumerate(files):
                row: dict[str, object] = {"name": stem, "restored": str(rpath)}
                row["gt"] = str(gpath) if gpath is not None else ""
                row.update({m: float(v[i]) for m, v in scores.items()})
                rows.append(row)
            bar.advance(task, len(names))
    gathered = (r for part in procs.gather(rows) for r in part)
    return sorted(gathered, key=lambda r: order[str(r["name"])])


def _prepare(name: str, wanted: list[str], missing: dict[str, str], build: Callable[[], object]):
    """Build what metric `name` needs, or record why it cannot be computed."""
    if name not in wanted or name in missing:
        return None
    try:
        return build()
    except (WeightsUnavailable, WeightsCorrupted, ImportError, RuntimeError) as exc:
        missing[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None


def _lpips(options: EvalOptions, device: torch.device):
    """LPIPS with the user's weight files, on `device`."""
    from dynface.metrics.lpips import LPIPS

    return LPIPS.from_files(options.lpips_net, options.weights_dir, options.download).to(device)


def _faces():
    """dlib's face models."""
    from dynface.metrics.face import DlibFaces

    return DlibFaces()


@dataclass
class _FidSetup:
    """The feature extractor and what the restored set is compared with."""

    name: str
    extractor: Callable[[torch.Tensor], torch.Tensor]
    reference: Path


def _fid_setup(options: EvalOptions, gt: Path | None, device: torch.device) -> _FidSetup:
    """Pick the FID reference (folder or .npz) and load the extractor."""
    reference = options.fid_ref or gt
    if reference is None:
        raise RuntimeError("needs a reference: --gt, or --fid-ref FOLDER or statistics .npz")
    if not Path(reference).exists():
        raise FileNotFoundError(f"FID reference {reference} does not exist")
    if options.fid_extractor is not None:
        name, extractor = options.fid_extractor
    else:
        from dynface.metrics.inception import FIDInceptionV3

        model = FIDInceptionV3.from_files(options.weights_dir, options.download).to(device)
        name, extractor = model.name, model
    return _FidSetup(name=name, extractor=extractor, reference=Path(reference))


def _fid(
    setup: _FidSetup, restored: list[Path], options: EvalOptions, procs: Processes, bar
) -> tuple[float, FeatureStats, dict[str, object]] | None:
    """FID of the restored files against the reference folder or statistics file (main only)."""
    restored_features = _features(restored, setup, options, procs, bar)
    ref_features = None
    if not setup.reference.is_file():
        ref_features = _features(list_images([setup.reference]), setup, options, procs, bar)
    if restored_features is None:
        return None
    stats = FeatureStats.of(restored_features)
    if ref_features is None:
        ref_stats = FeatureStats.load(setup.reference)
    else:
        ref_stats = FeatureStats.of(ref_features)
    info = {"fid_reference": str(setup.reference), "fid_extractor": setup.name}
    info["fid_reference_count"] = ref_stats.count
    return frechet_distance(stats, ref_stats), stats, info


def _features(
    paths: list[Path], setup: _FidSetup, options: EvalOptions, procs: Processes, bar
) -> np.ndarray | None:
    """FID features of a folder's files, each process its share, cached; None off the main."""
    cache_root = (options.cache_dir or default_cache_dir()) if options.use_cache else None
    mine = procs.shard(paths)
    label = _share_label(f"FID features ({paths[0].parent.name})", procs)
    task = bar.add_task(label, total=len(mine))
    cache = FeatureCache(cache_root, paths[0].parent, setup.name)
    feats = None  # stays None for a process with no share (fewer images than processes)
    if mine:
        feats = folder_features(
            mine,
            setup.extractor,
            load_image,
            cache,
            batch_size=options.batch_size,
            device=procs.device,
            progress=lambda n: bar.advance(task, n),
            save=procs.world_size == 1,
        )
    if procs.world_size == 1:
        return feats
    parts = procs.gather(feats)
    if not procs.is_main:
        return None
    full = np.empty((len(paths), parts[0].shape[1]), dtype=parts[0].dtype)
    for rank, part in enumerate(parts):
        if part is not None:
            full[rank :: procs.world_size] = part
    for path, feat in zip(paths, full, strict=True):
        if cache.get(path) is None:
            cache.put(path, feat)
    cache.save()
    return full


def _batch_scores(
    active: list[str],
    restored: torch.Tensor,
    target: torch.Tensor | None,
    lpips_model,
    faces,
) -> dict[str, np.ndarray]:
    """Per-image values of the image-level metrics for one same-size batch."""
    out: dict[str, torch.Tensor | np.ndarray] = {}
    with torch.inference_mode():
        if target is not None:
            if "psnr" in active:
                out["psnr"] = fidelity.psnr(restored, target)
            if "ssim" in active:
                out["ssim"] = fidelity.ssim(restored, target)
            if {"psnr_y", "ssim_y"} & set(active):
                ry, ty = fidelity.rgb_to_y(restored), fidelity.rgb_to_y(target)
                if "psnr_y" in active:
                    out["psnr_y"] = fidelity.psnr(ry, ty)
                if "ssim_y" in active:
                    out["ssim_y"] = fidelity.ssim(ry, ty)
            if "lpips" in active:
                out["lpips"] = lpips_model(restored, target)
        if "niqe" in active:
            if has_enough_blocks(*restored.shape[-2:]):
                out["niqe"] = niqe(restored)
            else:
                out["niqe"] = np.full(len(restored), math.nan)
    if target is not None and ({"idd", "lmd"} & set(active)):
        from dynface.metrics.face import to_uint8

        scores = [
            faces.pair(to_uint8(r), to_uint8(t)) for r, t in zip(restored, target, strict=True)
        ]
        if "idd" in active:
            out["idd"] = np.array([s.idd for s in scores])
        if "lmd" in active:
            out["lmd"] = np.array([s.lmd for s in scores])
    return {
        k: v.detach().double().cpu().numpy() if isinstance(v, torch.Tensor) else v
        for k, v in out.items()
    }


def _batches(items: list, size: int) -> Iterator[list]:
    """Consecutive chunks of `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


_READERS = ThreadPoolExecutor(max_workers=4)


def _stack_same_size(batch: list[tuple[str, Path, Path | None]], device: torch.device):
    """Read a chunk of pairs in threads; yield same-size groups as device batches."""
    restored = list(_READERS.map(load_image, [p[1] for p in batch]))
    targets = list(_READERS.map(lambda p: load_image(p[2]) if p[2] else None, batch))
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (image, target) in enumerate(zip(restored, targets, strict=True)):
        if target is not None and target.shape != image.shape:
            raise ValueError(
                f"{batch[i][1]} is {image.shape[2]}x{image.shape[1]} px but its GT {batch[i][2]} "
                f"is {target.shape[2]}x{target.shape[1]} px; resize one of them to match"
            )
        groups.setdefault(tuple(image.shape), []).append(i)
    for indices in groups.values():
        r = torch.stack([restored[i] for i in indices]).to(device)
        t = None if targets[0] is None else torch.stack([targets[i] for i in indices]).to(device)
        yield [batch[i][0] for i in indices], r, t, [batch[i] for i in indices]


def _means(rows: list[dict[str, object]], metrics: list[str]) -> tuple[dict, dict]:
    """Mean over images of each metric, ignoring NaN (no face found, image too small)."""
    summary: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name in metrics:
        values = np.array([row[name] for row in rows], dtype=np.float64)
        valid = values[~np.isnan(values)]
        counts[name] = int(valid.size)
        if valid.size:
            summary[name] = float(valid.mean())
    return summary, counts


def _without_value(rows: list[dict[str, object]], metrics: list[str]) -> dict[str, list[str]]:
    """Per metric, the images that got no value (NaN): no face, flat image, too small for NIQE."""
    gaps = {
        name: [str(row["name"]) for row in rows if math.isnan(float(row[name]))] for name in metrics
    }
    return {name: names for name, names in gaps.items() if names}


def _share_label(what: str, procs: Processes) -> str:
    """Progress label; with several processes the bar counts the main process's share."""
    if procs.world_size == 1:
        return what
    return f"{what} (process 0's share of {procs.world_size})"


def _progress(enabled: bool) -> Progress:
    """A rich progress display (silent when disabled)."""
    return Progress(disable=not enabled, transient=False)
