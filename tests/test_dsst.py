"""DSST: spectra normalisation, the closed-form table, its calibration, JSON and CLI."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from typer.testing import CliRunner

from dynface.cli import app
from dynface.diffusion import Diffusion
from dynface.method.dsst import (
    DSSTable,
    face_paths,
    linear_alphas_cumprod,
    spectral_distance,
    to_respaced_index,
)
from dynface.method.spectra import bin_frequencies, radial_power_spectrum

from .conftest import TEST_DATA, shared_path
from .faces import load_faces


def test_unit_white_noise_has_unit_power_per_bin():
    gen = torch.Generator().manual_seed(0)
    p = radial_power_spectrum(torch.randn(4, 3, 128, 96, generator=gen), bins=32)
    assert p.shape == (4, 32)
    assert abs(float(p[:, 4:].mean()) - 1) < 0.03
    freqs = bin_frequencies(32)
    assert float(freqs[0]) > 0 and float(freqs[-1]) < 0.5


def test_schedule_matches_the_diffusion():
    assert torch.allclose(linear_alphas_cumprod(), Diffusion().base_alphas_cumprod, rtol=0, atol=0)


def test_default_table_is_calibrated_and_monotone():
    table = DSSTable.default()
    assert table.provenance["faces"] == 218
    assert table.start_step(0.0) == 0
    assert abs(table.start_step(12.0) - 925) <= 5
    assert 650 <= table.start_step(2.5) <= 730  # published range starts near 690
    assert bool((table.steps.diff() >= 0).all())
    dense = table.start_step(torch.linspace(0, 20, 401))
    assert dense.dtype == torch.int64 and bool((dense.diff() >= 0).all())
    assert int(dense[-1]) == table.start_step(16.0)  # clamped to the grid


def test_build_from_a_batch_calibrates_tol_and_interpolates():
    table = DSSTable.build(load_faces().float())
    assert table.start_step(12.0) == 925 and table.start_step(0.0) == 0
    assert bool((table.steps.diff() >= 0).all())
    lo, hi = table.start_step(4.0), table.start_step(4.25)
    assert lo <= table.start_step(4.125) <= hi
    s12 = torch.tensor([12.0])
    d = spectral_distance(table.power, bin_frequencies(64), s12, linear_alphas_cumprod())
    assert float(d[925, 0]) <= table.tol < float(d[924, 0])
    fixed = DSSTable.build(load_faces().float(), tol=table.tol * 4)
    assert fixed.start_step(12.0) < 925  # a looser tolerance starts earlier


def test_json_round_trip_and_refusals(tmp_path):
    table = DSSTable.build(load_faces().float(), grid=torch.arange(0, 16.5, 0.5))
    path = table.save(tmp_path / "t.json")
    again = DSSTable.load(path)
    assert torch.equal(again.steps, table.steps) and again.tol == table.tol
    assert again.provenance["schedule"]["steps"] == 1000
    assert again.provenance["spectrum"]["bins"] == 64
    with pytest.raises(FileExistsError):
        table.save(path)
    (tmp_path / "bad.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not a dynface DSST table"):
        DSSTable.load(tmp_path / "bad.json")


def test_respaced_index_is_the_nearest_step_not_above():
    steps = Diffusion(respacing="ddim250").timesteps
    t = torch.tensor([0, 3, 4, 925, 999])
    idx = to_respaced_index(t, steps)
    assert idx.tolist() == [0, 0, 1, 231, 249]
    assert bool((steps[idx] <= t).all())
    nxt = (idx + 1).clamp(max=len(steps) - 1)
    assert bool(((steps[nxt] > t) | (idx == len(steps) - 1)).all())
    assert to_respaced_index(925, steps.tolist()) == 231


def test_cli_build_and_show(tmp_path):
    runner = CliRunner()
    out = tmp_path / "table.json"
    faces = [str(TEST_DATA / "astronaut_face.png"), str(TEST_DATA / "grace_hopper_face.png")]
    res = runner.invoke(app, ["dsst", "build", *faces, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert DSSTable.load(out).provenance["faces"] == 2
    res = runner.invoke(app, ["dsst", "build", *faces, "-o", str(out)])
    assert res.exit_code != 0 and "exists" in res.output
    res = runner.invoke(app, ["dsst", "show", str(out)])
    assert res.exit_code == 0, res.output
    assert "925" in res.output and out.with_suffix(".png").stat().st_size > 1000


def test_manifest_rows_select_clean_aligned_faces(tmp_path):
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "quality", "aligned"])
        w.writerow(["a.png", "HQ", "aligned512"])
        w.writerow(["b.png", "LQ-real", "aligned512"])
        w.writerow(["c.png", "HQ", "whole"])
    assert face_paths([manifest]) == [tmp_path / "a.png"]


@pytest.mark.shared_data
def test_a_subset_of_shared_faces_agrees_with_the_default_table():
    faces = face_paths([shared_path("data", "manifest.csv")])[::27]
    table = DSSTable.build(faces)
    default = DSSTable.default()
    for s in (2.5, 4.0, 8.0):
        assert abs(table.start_step(s) - default.start_step(s)) <= 25
