"""`dynface eval` and `dynface eval compare` end to end on small public-domain faces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dynface.cli import app
from dynface.io import to_numpy, write_image
from dynface.metrics.evaluate import EvalOptions, evaluate
from dynface.metrics.report import write_report

from .conftest import REPO
from .metrics_helpers import degrade, face
from .test_metrics_fid import tiny_extractor

runner = CliRunner()


def _folders(tmp_path: Path, size: int = 192) -> tuple[Path, Path]:
    """gt/ with the two public-domain faces and restored/ with degraded copies (same names)."""
    gt, restored = tmp_path / "gt", tmp_path / "restored"
    for name in ("astronaut", "grace_hopper"):
        clean = face(name, size)
        write_image(gt / f"{name}.png", to_numpy(clean))
        write_image(restored / f"{name}.png", to_numpy(degrade(clean, 1.5, 0.02, 70)))
    return restored, gt


def test_unmatched_files_are_listed(tmp_path: Path) -> None:
    restored, gt = _folders(tmp_path, 128)
    (restored / "grace_hopper.png").rename(restored / "extra.png")
    result = runner.invoke(app, ["eval", "--restored", str(restored), "--gt", str(gt),
                                 "-o", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 2
    assert "no GT for: extra.png" in result.output
    assert "no restored image for: grace_hopper.png" in result.output
    assert not (tmp_path / "r").exists()


def test_summary_keys_and_missing_metrics(tmp_path: Path) -> None:
    restored, gt = _folders(tmp_path)
    out = tmp_path / "report"
    result = runner.invoke(app, ["eval", "--restored", str(restored), "--gt", str(gt),
                                 "-o", str(out), "--weights-dir", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    for key in ("psnr", "ssim", "psnr_y", "ssim_y", "niqe"):
        assert isinstance(summary[key], float) and summary["counts"][key] == 2
    assert 15 < summary["psnr"] < 40 and 0 < summary["ssim"] < 1
    for key in ("lpips", "fid"):  # weight files absent: listed with the reason, never a number
        assert key not in summary and "not available" in summary["missing"][key]
    assert "idd" in summary or "idd" in summary["missing"]
    rows = (out / "per_image.csv").read_text().splitlines()
    assert rows[0].startswith("name,psnr,ssim,psnr_y,ssim_y") and len(rows) == 3
    assert "lpips" in (out / "summary.md").read_text()
    again = runner.invoke(app, ["eval", "--restored", str(restored), "-o", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_without_gt_only_no_reference_metrics(tmp_path: Path) -> None:
    restored, _ = _folders(tmp_path)
    out = tmp_path / "nr"
    result = runner.invoke(app, ["eval", "--restored", str(restored), "-o", str(out),
                                 "--metrics", "psnr,niqe,fid"])  # fmt: skip
    assert result.exit_code == 1, result.output  # psnr and fid were asked for and cannot run
    assert "requested metric(s) could not run (psnr: needs ground truth" in result.output
    summary = json.loads((out / "summary.json").read_text())  # the report is still written
    assert set(summary) >= {"niqe", "missing"} and "psnr" not in summary
    assert "--gt" in summary["missing"]["psnr"] and "fid" in summary["missing"]
    default = runner.invoke(app, ["eval", "--restored", str(restored), "-o", str(tmp_path / "d")])
    assert default.exit_code == 0, default.output  # the default list runs what it can


def test_fid_against_gt_folder_and_saved_statistics(tmp_path: Path) -> None:
    restored, gt = _folders(tmp_path, 128)
    for i in range(3):  # FID needs at least two images per set; add a few more pairs
        clean = face("astronaut", 128).roll(17 * (i + 1), dims=-1)
        write_image(gt / f"extra{i}.png", to_numpy(clean))
        write_image(restored / f"extra{i}.png", to_numpy(degrade(clean, 2.0, 0.03, 60)))
    options = EvalOptions(metrics=("fid",), fid_extractor=("tiny", tiny_extractor()),
                          cache_dir=tmp_path / "cache")  # fmt: skip
    report = evaluate(restored, gt, options, progress=False)
    assert report.summary["fid"] > 0 and report.counts["fid"] == 5
    write_report(report, tmp_path / "fid_report", "deg")
    assert (tmp_path / "fid_report" / "fid_stats.npz").is_file()
    self_options = EvalOptions(
        metrics=("fid",),
        fid_extractor=("tiny", tiny_extractor()),
        cache_dir=tmp_path / "cache",
        fid_ref=tmp_path / "fid_report" / "fid_stats.npz",
    )
    self_report = evaluate(restored, None, self_options, progress=False)
    assert self_report.summary["fid"] == pytest.approx(0.0, abs=1e-6)
    cached = list((tmp_path / "cache" / "tiny").glob("*.npz"))
    assert len(cached) == 2


def test_compare_writes_table_and_scatter_plot(tmp_path: Path) -> None:
    restored, gt = _folders(tmp_path)
    heavier = tmp_path / "heavier"
    for name in ("astronaut", "grace_hopper"):
        write_image(heavier / f"{name}.png", to_numpy(degrade(face(name, 192), 3.0, 0.05, 30)))
    runs = []
    for label, folder in (("light", restored), ("heavy", heavier)):
        out = tmp_path / label
        args = ["--restored", str(folder), "--gt", str(gt), "-o", str(out), "--name", label]
        result = runner.invoke(app, ["eval", *args, "--metrics", "psnr,ssim,niqe"])
        assert result.exit_code == 0, result.output
        runs.append(str(out))
    result = runner.invoke(app, ["eval", "compare", *runs, "-o", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    plot = tmp_path / "cmp" / "scatter_psnr_vs_niqe.png"  # no FID in the reports: NIQE instead
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| light |" in table and "| heavy |" in table
    csv_rows = (tmp_path / "cmp" / "compare.csv").read_text().splitlines()
    light, heavy = (
        dict(zip(csv_rows[0].split(","), r.split(","), strict=True)) for r in csv_rows[1:]
    )
    assert float(light["psnr"]) > float(heavy["psnr"]) and float(light["niqe"]) < float(
        heavy["niqe"]
    )


def test_identical_images_have_infinite_psnr_not_a_crash() -> None:
    x = torch.rand(1, 3, 32, 32)
    from dynface.metrics.fidelity import psnr

    assert np.isinf(psnr(x, x).item())


def _strict_json(text: str) -> dict:
    """json.loads that refuses Infinity and NaN, as strict JSON readers do."""

    def refuse(token: str) -> None:
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_eval_process_survives_a_black_image_and_writes_strict_json(tmp_path: Path) -> None:
    """A black image gets no NIQE (and is named); an identical pair's infinite PSNR is null."""
    restored, gt = _folders(tmp_path)
    black = np.zeros((192, 192, 3), np.uint8)
    write_image(restored / "black.png", black)
    write_image(gt / "black.png", np.full_like(black, 40))
    (restored / "astronaut.png").write_bytes((gt / "astronaut.png").read_bytes())
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "dynface", "eval", "--restored", str(restored), "--gt",
               str(gt), "-o", str(out), "--metrics", "psnr,niqe", "--device", "cpu"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = _strict_json((out / "summary.json").read_text())
    assert summary["psnr"] is None and "infinity" in summary["notes"]["psnr"]
    assert summary["counts"] == {"psnr": 3, "niqe": 2}
    assert isinstance(summary["niqe"], float)
    assert summary["info"]["without_value"] == {"niqe": ["black"]}
    rows = {r.split(",")[0]: r.split(",") for r in (out / "per_image.csv").read_text().split()}
    assert rows["black"][2] == "" and rows["grace_hopper"][2] != ""
    assert "Images without a value" in (out / "summary.md").read_text()
