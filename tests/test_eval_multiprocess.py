"""`dynface eval` on two processes (torchrun, gloo on CPU) writes the single-process report."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dynface.cli import app
from dynface.io import to_numpy, write_image
from dynface.metrics.evaluate import EvalOptions, evaluate
from dynface.metrics.fid import FeatureCache

from .conftest import REPO
from .metrics_helpers import degrade, face
from .test_metrics_fid import tiny_extractor

SIZES = [(192, 192), (96, 192), (192, 192), (192, 192), (96, 192), (192, 192), (192, 192)]


def _pairs(tmp_path: Path) -> tuple[Path, Path]:
    """Seven pairs of two sizes (mixed in name order), so shards and batches are uneven."""
    gt, restored = tmp_path / "gt", tmp_path / "restored"
    for i, (h, w) in enumerate(SIZES):
        name = "astronaut" if i % 2 else "grace_hopper"
        clean = face(name, 192).roll(23 * i, dims=-1)[..., :h, :w]
        write_image(gt / f"p{i}.png", to_numpy(clean))
        write_image(restored / f"p{i}.png", to_numpy(degrade(clean, 0.5 + 0.4 * i, 0.02, 70, i)))
    return restored, gt


def _launch(script: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `script` on two CPU processes with torchrun."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*cmd, *script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _assert_close(a: object, b: object) -> None:
    """Equal structures; floats (and numeric CSV cells) within 1e-6."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            _assert_close(a[key], b[key])
    elif isinstance(a, float) or (isinstance(a, str) and _is_number(a)):
        assert float(b) == pytest.approx(float(a), rel=1e-6, abs=1e-6)
    else:
        assert a == b


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_two_processes_write_the_single_process_report(tmp_path: Path) -> None:
    restored, gt = _pairs(tmp_path)
    args = ["--restored", str(restored), "--gt", str(gt), "--metrics", "psnr,ssim,niqe"]
    single = CliRunner().invoke(
        app, ["eval", *args, "-o", str(tmp_path / "one"), "--batch-size", "3"]
    )
    assert single.exit_code == 0, single.output
    done = _launch(["-m", "dynface", "eval", *args, "-o", str(tmp_path / "two")], tmp_path)
    assert done.stdout.count("# Evaluation") == 1  # the main process alone prints the summary

    one, two = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two"))
    assert one["counts"] == {"psnr": 7, "ssim": 7, "niqe": 7}
    _assert_close(one, two)
    rows_one, rows_two = (
        _csv(tmp_path / "one" / "per_image.csv"),
        _csv(tmp_path / "two" / "per_image.csv"),
    )
    assert [r["name"] for r in rows_one] == [f"p{i}" for i in range(7)]
    assert len(rows_two) == 7
    for a, b in zip(rows_one, rows_two, strict=True):
        _assert_close(a, b)
    assert not np.isnan([float(r["niqe"]) for r in rows_two]).any()


def test_two_processes_gather_fid_features_and_fill_the_cache(tmp_path: Path) -> None:
    restored, gt = _pairs(tmp_path)
    options = EvalOptions(metrics=("psnr", "fid"), fid_extractor=("tiny", tiny_extractor()),
                          cache_dir=tmp_path / "cache1")  # fmt: skip
    one = evaluate(restored, gt, options, progress=False)
    script = str(REPO / "tests" / "_eval_fid_two.py")
    _launch([script, str(restored), str(gt), str(tmp_path / "two"), str(tmp_path / "cache2")],
            tmp_path)  # fmt: skip
    two = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert one.summary["fid"] > 0 and two["counts"]["fid"] == 7
    assert two["fid"] == pytest.approx(one.summary["fid"], rel=1e-6, abs=1e-6)
    with np.load(tmp_path / "two" / "fid_stats.npz") as stats:
        np.testing.assert_allclose(stats["mu"], one.info["fid_stats"].mu, rtol=1e-6, atol=1e-7)
    for folder in (restored, gt):  # the main process saved every image's features, both folders
        ref, got = (FeatureCache(tmp_path / c, folder, "tiny") for c in ("cache1", "cache2"))
        assert got.entries.keys() == ref.entries.keys() and len(got.entries) == 7
        for key, value in ref.entries.items():
            np.testing.assert_allclose(got.entries[key], value, rtol=1e-6, atol=1e-7)
