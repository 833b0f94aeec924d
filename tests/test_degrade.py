"""Synthetic degradations: seeded reproducibility, the test-set protocol and its CSV, kernels."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dynface.cli import app
from dynface.data.degrade import (
    DIFFACE_GRID,
    Degradation,
    DegradationConfig,
    blur_kernels,
    degrade,
    sample_degradations,
    sample_protocol,
)
from dynface.data.testset import read_sources, read_test_set, write_test_set
from dynface.io import read_image, to_tensor, write_image

from .conftest import REPO, TEST_DATA


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> list:
    """Three 64 px variants of the public-domain astronaut face written as PNG files."""
    folder = tmp_path_factory.mktemp("hq")
    base = read_image(TEST_DATA / "astronaut_face.png").pixels[::4, ::4]
    variants = [base, base[:, ::-1], base[::-1] * 0.9]
    return [write_image(folder / f"face{i}.png", v) for i, v in enumerate(variants)]


def test_sampling_is_seeded_and_in_range():
    cfg = DegradationConfig()
    a = sample_degradations(50, cfg, torch.Generator().manual_seed(1))
    b = sample_degradations(50, cfg, torch.Generator().manual_seed(1))
    c = sample_degradations(50, cfg, torch.Generator().manual_seed(2))
    assert a == b and a != c
    for d in a:
        assert 0.1 <= d.sigma_x <= 12 and 0.1 <= d.sigma_y <= 12
        assert 1 <= d.scale <= 12 and 0 <= d.noise <= 15 and 30 <= d.jpeg <= 100


def test_protocol_draws_from_the_difface_grid():
    params = sample_protocol(200, "difface-celeba-test", torch.Generator().manual_seed(0))
    assert {d.sigma_x for d in params} <= set(DIFFACE_GRID["sigma"])
    assert {d.scale for d in params} == set(DIFFACE_GRID["scale"])
    assert {d.jpeg for d in params} == set(DIFFACE_GRID["jpeg"])
    assert {d.noise for d in params} == set(DIFFACE_GRID["noise"])
    with pytest.raises(ValueError, match="unknown protocol"):
        sample_protocol(1, "celeba-nope", torch.Generator())


def test_isotropic_kernel_is_the_separable_gaussian_and_rotation_swaps_axes():
    iso = Degradation(2.0, 2.0, 0.0, 1.0, 0.0, 100, False, 0)
    k = blur_kernels([iso], 41)[0]
    n = torch.arange(-20, 21, dtype=torch.float64)
    g = torch.exp(-0.5 * (n / 2.0) ** 2)
    ref = torch.outer(g, g)
    assert torch.allclose(k, ref / ref.sum(), atol=1e-6)
    wide_x = Degradation(4.0, 1.0, 0.0, 1.0, 0.0, 100, False, 0)
    wide_y = Degradation(4.0, 1.0, math.pi / 2, 1.0, 0.0, 100, False, 0)
    kx, ky = blur_kernels([wide_x, wide_y], 41)
    assert torch.allclose(kx.T, ky, atol=1e-8)


def test_degrade_output_and_determinism():
    x = to_tensor(read_image(TEST_DATA / "astronaut_face.png").pixels[::4, ::4]).repeat(2, 1, 1, 1)
    params = sample_protocol(2, "difface-celeba-test", torch.Generator().manual_seed(3))
    y1, y2 = degrade(x, params), degrade(x, params)
    assert y1.shape == x.shape and torch.equal(y1, y2)
    assert float(y1.min()) >= 0 and float(y1.max()) <= 1
    assert float((y1 - x).abs().mean()) > 0.01


def test_test_set_is_reproducible_and_csv_rederives_images(faces, tmp_path):
    a = write_test_set(faces, tmp_path / "a", seed=0, size=64)
    b = write_test_set(faces, tmp_path / "b", seed=0, size=64)
    c = write_test_set(faces, tmp_path / "c", seed=1, size=64)
    assert a.read_text().replace(str(tmp_path / "a"), "") == b.read_text().replace(
        str(tmp_path / "b"), ""
    )
    assert a.read_text() != c.read_text()
    for name in ("face0.png", "face2.png"):
        assert (tmp_path / "a/lq" / name).read_bytes() == (tmp_path / "b/lq" / name).read_bytes()
    rows = read_test_set(a)
    assert [r[0] for r in rows] == ["face0.png", "face1.png", "face2.png"]
    name, params = rows[1]
    hq = to_tensor(read_image(tmp_path / "a/hq" / name).pixels)
    again = degrade(hq, [params])[0].permute(1, 2, 0).numpy()
    stored = read_image(tmp_path / "a/lq" / name).pixels
    assert np.array_equal(np.round(again * 255), np.round(stored * 255))
    with pytest.raises(FileExistsError):
        write_test_set(faces, tmp_path / "a", seed=0, size=64)


def test_degrade_cli(faces, tmp_path):
    out = tmp_path / "set"
    args = ["degrade", str(faces[0].parent), "-o", str(out), "--seed", "0", "--size", "64"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "lq").iterdir()) == ["face0.png", "face1.png", "face2.png"]
    assert len(read_test_set(out / "degradations.csv")) == 3
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_degrade_process_renames_same_named_inputs_from_different_folders(faces, tmp_path):
    """Two x.png from two folders and an x.jpg: three outputs, each named, the CSV maps them."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.png").write_bytes(faces[0].read_bytes())
    write_image(tmp_path / "a" / "x.jpg", read_image(faces[1]).pixels)
    out = tmp_path / "set"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "dynface", "degrade", str(tmp_path / "a"),
               str(tmp_path / "b"), "-o", str(out), "--size", "64"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    sources = dict(read_sources(out / "degradations.csv"))
    names = ["x.png", "x_png.png", "x_png_2.png"]  # a/x.jpg, a/x.png, b/x.png in sorted order
    assert sorted(sources.values()) == names and sources[str(tmp_path / "b" / "x.png")] == names[2]
    assert sorted(p.name for p in (out / "lq").iterdir()) == names
    renamed = [line for line in done.stdout.splitlines() if line.startswith("note:")]
    assert len(renamed) == 2 and all("another input has its name" in line for line in renamed)
    hq = {name: read_image(out / "hq" / name).pixels for name in sources.values()}
    assert np.array_equal(hq["x_png.png"], hq["x_png_2.png"])  # the two copies of the same face
