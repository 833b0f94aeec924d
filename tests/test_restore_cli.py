"""`dynface restore` and `dynface.photos`: every flag, every kind of bad input, output layout."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from dynface.api import Restorer
from dynface.cli import app
from dynface.config import load_config
from dynface.io import read_image, write_image, write_json
from dynface.outputs import output_names
from dynface.photos import RestoreOptions, restore_photos

from .conftest import REPO, TEST_DATA

TINY_SIZE = load_config("tiny-random")["image_size"]


@pytest.fixture(scope="module")
def tiny() -> Restorer:
    """The real tiny-random restorer with 5 respaced steps, built once (its output is noise)."""
    return Restorer.from_config("tiny-random", device="cpu", overrides={"respacing": "ddim5"})


@dataclass
class Spy:
    """Wraps the real restorer: records batch sizes and seeds, can fail on demand."""

    inner: Restorer
    calls: list[tuple[int, int | None]] = field(default_factory=list)
    fail: bool = False
    kwargs: dict = field(default_factory=dict)

    @property
    def device(self):
        return self.inner.device

    @property
    def config(self):
        return self.inner.config

    def restore_aligned(self, images: torch.Tensor, seed: int | None = None, **callbacks):
        assert images.ndim == 4 and images.shape[1] == 3
        assert float(images.min()) >= 0 and float(images.max()) <= 1
        self.calls.append((images.shape[0], seed))
        if self.fail:
            raise RuntimeError("out of memory (injected)")
        return self.inner.restore_aligned(images, seed=seed, **callbacks)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tiny: Restorer) -> Spy:
    restorer = Spy(tiny)

    def load(config, device, precision, weights_dir, steps, **options):
        if config == "missing":
            raise FileNotFoundError("no config named 'missing'")
        restorer.kwargs = dict(
            config=config,
            device=device,
            precision=precision,
            weights_dir=weights_dir,
            steps=steps,
            **options,
        )
        return restorer

    monkeypatch.setattr("dynface.cli.restore.load_restorer", load)
    return restorer


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(TEST_DATA / "astronaut.png", folder / "astronaut.png")
    shutil.copy(TEST_DATA / "grace_hopper.jpg", folder / "grace_hopper.jpg")
    return folder


def run(*args: str):
    return CliRunner().invoke(app, ["restore", *args], catch_exceptions=False)


def totals(output: str) -> dict[str, str]:
    """The summary table's one row: images, failed, skipped, found, restored, failed faces, time."""
    lines = output.splitlines()
    row = lines[next(i for i, line in enumerate(lines) if line.startswith("┡")) + 1]
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    keys = ("images", "failed", "skipped", "found", "restored", "failed_faces", "per_face")
    return dict(zip(keys, cells, strict=True))


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid-looking 1-bit PNG header of any size with almost no data (fast big-image test)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def test_folder_of_photos_end_to_end_with_tiny_random(photos, tmp_path):
    out = tmp_path / "out"
    args = ["--config", "tiny-random", "--steps", "ddim5", "--device", "cpu"]
    args += ["--precision", "fp32", "--weights-dir", str(tmp_path), "--batch-size", "4"]
    result = run(
        str(photos), "-o", str(out), "--upscale", "2", "--seed", "7", "--save-trace", *args
    )
    assert result.exit_code == 0, result.output
    assert "device cpu" in result.output
    summary = totals(result.output)
    assert (summary["found"], summary["restored"], summary["failed_faces"]) == ("2", "2", "0")
    assert summary["per_face"].endswith(" s")
    nfe = 0
    for name, (h, w) in [("astronaut", (512, 512)), ("grace_hopper", (600, 512))]:
        final = read_image(out / "final" / f"{name}.png").pixels
        assert final.shape == (2 * h, 2 * w, 3)
        # tiny-random works on crops of its config's image_size.
        cropped = read_image(out / "faces" / "cropped" / f"{name}_00.png").pixels
        restored = read_image(out / "faces" / "restored" / f"{name}_00.png").pixels
        assert cropped.shape == restored.shape == (TINY_SIZE, TINY_SIZE, 3)
        assert np.abs(restored - cropped).mean() > 0.01  # the random nets changed the face
        trace = json.loads((out / "traces" / f"{name}.json").read_text())
        assert len(trace["faces"]) == 1 and trace["seed"] == 7 and trace["face_size"] == TINY_SIZE
        assert trace["faces"][0]["method"]["mode"] == "dynface"
        nfe += trace["faces"][0]["method"]["nfe"]
        assert len(trace["faces"][0]["landmarks"]) == 5
        # Far from the face, the final photo is the bicubic upscale of the input.
        photo = read_image(photos / f"{name}{'.png' if name == 'astronaut' else '.jpg'}").pixels
        corner = cv2.resize(photo, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC)[-100:, :100]
        assert np.abs(final[-100:, :100] - np.clip(corner, 0, 1)).max() < 2 / 255
    assert not any(out.rglob("*.part"))
    # The second progress line counts denoising face-steps: every planned one was done.
    assert re.search(rf"denoising steps\W+{nfe}/{nfe}\b", result.output), result.output


def test_restorer_options_are_passed_through(fake, photos, tmp_path):
    args = ["--config", "tiny-random", "--device", "cpu", "--precision", "bf16"]
    args += ["--steps", "ddim50", "--weights-dir", str(tmp_path)]
    args += ["--backend", "openvino", "--solver", "dpm2m"]
    result = run(str(photos / "astronaut.png"), "-o", str(tmp_path / "o"), *args)
    assert result.exit_code == 0, result.output
    assert fake.kwargs == dict(
        config="tiny-random",
        device="cpu",
        precision="bf16",
        weights_dir=tmp_path,
        steps="ddim50",
        backend="openvino",
        solver="dpm2m",
    )


def test_batch_size_groups_faces_across_photos_and_never_changes_a_face(fake, photos, tmp_path):
    shutil.copy(photos / "astronaut.png", photos / "astronaut_copy.png")
    result = run(str(photos), "-o", str(tmp_path / "two"), "--batch-size", "2", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert [size for size, _ in fake.calls] == [2, 1]
    assert all(len(seeds) == size for size, seeds in fake.calls)  # one seed per face
    result = run(str(photos), "-o", str(tmp_path / "one"), "--batch-size", "1", "--seed", "3")
    assert [size for size, _ in fake.calls[2:]] == [1, 1, 1]
    restored = sorted((tmp_path / "two" / "faces" / "restored").iterdir())
    assert len(restored) == 3
    for face in restored:
        alone = tmp_path / "one" / "faces" / "restored" / face.name
        difference = np.abs(read_image(face).pixels - read_image(alone).pixels).max()
        assert difference <= 1 / 255 + 1e-6, face.name  # PNG rounding of float noise only


def test_globs_upscale_one_and_only_center_face(fake, photos, tmp_path):
    canvas = np.full((512, 1400, 3), 0.5, np.float32)
    canvas[:, 444:956] = read_image(photos / "astronaut.png").pixels
    small = np.asarray(Image.open(photos / "astronaut.png").resize((200, 200)), np.float32) / 255
    canvas[150:350, 1150:1350] = small
    Image.fromarray(np.round(canvas * 255).astype(np.uint8)).save(photos / "two.png")
    out = tmp_path / "o"
    result = run(str(photos / "t*.png"), "-o", str(out), "--upscale", "1")
    assert result.exit_code == 0, result.output
    assert totals(result.output)["found"] == "2"
    assert read_image(out / "final" / "two.png").pixels.shape == (512, 1400, 3)
    result = run(
        str(photos / "two.png"), "-o", str(tmp_path / "c"), "--only-center-face", "--upscale", "1"
    )
    assert result.exit_code == 0, result.output
    assert totals(result.output)["found"] == "1"
    assert sorted(p.name for p in (tmp_path / "c" / "faces" / "restored").iterdir()) == [
        "two_00.png"
    ]


def test_aligned_crops(fake, tmp_path):
    crop = TEST_DATA / "astronaut_face.png"
    if not crop.exists():
        crop = tmp_path / "astronaut_face.png"
        Image.open(TEST_DATA / "astronaut.png").crop((120, 20, 330, 230)).save(crop)
    result = run(str(crop), "-o", str(tmp_path / "o"), "--aligned")
    assert result.exit_code == 0, result.output
    final = read_image(tmp_path / "o" / "final" / "astronaut_face.png").pixels
    assert final.shape == (TINY_SIZE, TINY_SIZE, 3)
    assert (tmp_path / "o" / "faces" / "restored" / "astronaut_face.png").is_file()
    result = run(str(TEST_DATA / "grace_hopper.jpg"), "-o", str(tmp_path / "g"), "--aligned")
    assert result.exit_code == 1
    assert "not a square aligned face crop" in result.output


def test_existing_outputs_need_overwrite(fake, photos, tmp_path):
    out = tmp_path / "o"
    target = photos / "astronaut.png"
    assert run(str(target), "-o", str(out), "--upscale", "1").exit_code == 0
    final = out / "final" / "astronaut.png"
    final.write_bytes(b"user's own file")
    result = run(str(target), "-o", str(out), "--upscale", "1")
    assert result.exit_code == 0
    assert totals(result.output)["skipped"] == "1" and "--overwrite" in result.output
    assert final.read_bytes() == b"user's own file"
    result = run(str(target), "-o", str(out), "--upscale", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert read_image(final).pixels.shape == (512, 512, 3)


def test_bad_inputs_each_get_one_line_and_exit_1(fake, photos, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "garbage.png").write_bytes(b"\x00\x01 not an image at all" * 10)
    (bad / "notes.jpg").write_text("this is a text file with an image name\n")
    data = (photos / "astronaut.png").read_bytes()
    (bad / "truncated.png").write_bytes(data[: len(data) // 3])
    gray16 = np.asarray(Image.open(photos / "astronaut.png").convert("L"), np.uint16) * 257
    Image.fromarray(gray16).save(bad / "sixteen.png")
    assert Image.open(bad / "sixteen.png").mode.startswith("I")
    Image.new("RGB", (1, 1), (200, 150, 120)).save(bad / "one.png")
    png_header_only(bad / "huge.png", 20000, 20000)
    Image.new("RGB", (20000, 300), (128, 128, 128)).save(bad / "wide.png")
    Image.new("RGB", (640, 480), (30, 90, 160)).save(bad / "noface.png")
    out = tmp_path / "o"
    result = run(str(bad), "-o", str(out), "--upscale", "1")
    assert result.exit_code == 1, result.output
    text = result.output
    assert "not an image file" in text
    assert "unreadable or truncated" in text
    assert "16-bit input written as 8-bit" in text
    assert "huge.png: far larger than the 120 MP limit" in text
    assert "no face found in 1x1 px" in text
    assert "no face found in 20000x300 px" in text
    assert "no face found in 640x480 px" in text
    assert len([line for line in text.splitlines() if line.startswith(" failed ")]) == 7
    assert (totals(text)["images"], totals(text)["failed"]) == ("8", "7")
    written = sorted(p.name for p in (out / "final").iterdir())
    assert written == ["sixteen.png"]
    assert Image.open(out / "final" / "sixteen.png").mode == "RGB"  # written as 8-bit RGB
    assert not any(out.rglob("*.part"))


def test_restoration_errors_fail_without_writing(fake, photos, tmp_path):
    fake.fail = True
    result = run(str(photos), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "restoration failed: out of memory (injected)" in result.output
    assert not (tmp_path / "o" / "final").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--upscale", "0"],
        ["--batch-size", "0"],
        ["--device", "tpu"],
        ["--precision", "fp8"],
        ["--config", "missing"],
    ],
)
def test_usage_errors_exit_2(fake, photos, tmp_path, args):
    result = CliRunner().invoke(app, ["restore", str(photos), "-o", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output


def test_no_inputs_and_output_file_are_usage_errors(fake, tmp_path):
    result = CliRunner().invoke(app, ["restore", str(tmp_path / "*.png"), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "no image files found" in result.output
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(
        app, ["restore", str(TEST_DATA / "astronaut.png"), "-o", str(tmp_path / "file")]
    )
    assert result.exit_code == 2


def test_output_names_are_unique():
    names = output_names([Path("a/x.png"), Path("b/x.png"), Path("c/x.jpg"), Path("d/x.png")])
    assert names == ["x", "x_png", "x_jpg", "x_png_2"]


def test_library_streams_photos_and_rejects_bad_options(tmp_path, tiny):
    restorer = Spy(tiny)
    paths = [TEST_DATA / "astronaut.png", TEST_DATA / "grace_hopper.jpg"]
    results = restore_photos(
        paths, restorer, tmp_path, RestoreOptions(batch_size=1, upscale=1, seed=None)
    )
    assert [r.status for r in results] == ["ok", "ok"]
    assert restorer.calls == [(1, None), (1, None)]  # no seed: the global generator
    assert all(len(r.outputs) == 3 for r in results)
    with pytest.raises(ValueError):
        restore_photos(paths, restorer, tmp_path, RestoreOptions(batch_size=0))


def test_written_files_get_normal_permissions_and_json_is_atomic(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    image = write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
    record = write_json(tmp_path / "t.json", {"x": np.float32(1.5), "t": torch.ones(2)})
    for path in (image, record):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert json.loads(record.read_text()) == {"x": 1.5, "t": [1.0, 1.0]}
    with pytest.raises(FileExistsError):
        write_json(record, {})
    assert write_json(record, {"y": 1}, overwrite=True).read_text().startswith("{")
    assert not list(tmp_path.glob("*.part"))


def test_demo_restores_the_packaged_samples(tmp_path):
    from typer.testing import CliRunner

    from dynface.cli import app

    result = CliRunner().invoke(
        app, ["demo", "-o", str(tmp_path), "--config", "tiny-random", "--steps", "ddim5"]
    )
    assert result.exit_code == 0, result.output
    assert "random weights" in result.output
    finals = sorted(p.name for p in (tmp_path / "final").iterdir())
    assert finals == ["astronaut_degraded.png", "grace_hopper_degraded.png"]
    assert len(list((tmp_path / "traces").glob("*.json"))) == 2
    sheet = read_image(tmp_path / "compare" / "astronaut_degraded.png").pixels
    crop = read_image(tmp_path / "faces" / "cropped" / "astronaut_degraded_00.png").pixels
    restored = read_image(tmp_path / "faces" / "restored" / "astronaut_degraded_00.png").pixels
    size = crop.shape[0]
    assert sheet.shape == (size, 2 * size + 8, 3)
    assert np.abs(sheet[:, :size] - crop).max() < 1 / 255 + 1e-6
    assert np.abs(sheet[:, size + 8 :] - restored).max() < 1 / 255 + 1e-6


def test_grayscale_photo_keeps_grayscale_faces(tmp_path):
    gray = tmp_path / "in" / "astronaut_gray.png"
    gray.parent.mkdir()
    Image.open(TEST_DATA / "astronaut.png").convert("L").save(gray)
    out = tmp_path / "out"
    result = run(str(gray), "-o", str(out), "--config", "tiny-random", "--steps", "ddim5")
    assert result.exit_code == 0, result.output
    assert "kept grayscale" in result.output
    for image in (out / "final" / "astronaut_gray.png", out / "faces" / "restored"):
        path = image if image.suffix else next(image.iterdir())
        pixels = read_image(path).pixels
        assert np.abs(pixels[..., 0] - pixels[..., 1]).max() < 2 / 255
        assert np.abs(pixels[..., 1] - pixels[..., 2]).max() < 2 / 255


def test_transparent_photo_keeps_its_alpha(tmp_path):
    photo = np.asarray(Image.open(TEST_DATA / "astronaut.png").convert("RGBA")).copy()
    photo[:, :100, 3] = 0  # a transparent strip on the left
    source = tmp_path / "in" / "astronaut_rgba.png"
    source.parent.mkdir()
    Image.fromarray(photo).save(source)
    out = tmp_path / "out"
    result = run(
        str(source), "-o", str(out), "--config", "tiny-random", "--steps", "ddim5", "--upscale", "1"
    )
    assert result.exit_code == 0, result.output
    assert "transparency kept" in result.output
    final = np.asarray(Image.open(out / "final" / "astronaut_rgba.png"))
    assert final.shape == (512, 512, 4)
    assert final[:, :90, 3].max() == 0 and final[:, 110:, 3].min() == 255


def test_demo_on_a_cpu_takes_fewer_steps_unless_steps_are_given(tmp_path):
    """README's first command must finish in minutes on a laptop CPU: fast, said on stderr."""
    config = tmp_path / "tiny250.yaml"
    preset = (REPO / "src" / "dynface" / "configs" / "tiny-random.yaml").read_text()
    config.write_text(preset.replace("respacing: ddim25", "respacing: ddim250"))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1", COLUMNS="200")
    demo = [sys.executable, "-m", "dynface", "demo", "--config", str(config), "--device", "cpu"]

    def evaluations(out: Path, *args: str) -> tuple[list[int], str]:
        done = subprocess.run(
            [*demo, "-o", str(out), *args], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr
        traces = [json.loads(path.read_text()) for path in sorted(out.glob("traces/*.json"))]
        return [face["method"]["nfe"] for trace in traces for face in trace["faces"]], done.stderr

    fast, said = evaluations(tmp_path / "fast")
    assert len(fast) == 2 and all(nfe <= 16 for nfe in fast)
    assert "--steps fast" in said and "--steps ddim250" in said
    full, said = evaluations(tmp_path / "full", "--steps", "ddim250")
    assert all(slow > 4 * quick for slow, quick in zip(full, fast, strict=True))
    assert "--steps fast" not in said


def test_restore_on_a_cpu_takes_fast_steps_and_says_what_ran(tmp_path):
    """No --steps and no --solver on a CPU: FAST, said on stderr; the first line, the photo
    record, the manifest and the trace name the solver and respacing. --solver alone keeps the
    config's steps, with a tip."""
    config = tmp_path / "tiny250.yaml"
    preset = (REPO / "src" / "dynface" / "configs" / "tiny-random.yaml").read_text()
    config.write_text(preset.replace("respacing: ddim25", "respacing: ddim250"))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1", COLUMNS="200")
    face = str(TEST_DATA / "astronaut_face.png")
    restore = [sys.executable, "-m", "dynface", "restore", face, "--aligned", "--device", "cpu"]
    said = "On a CPU restore runs --steps fast: 18x fewer steps than the config's ddim250"
    tip = "tip: on a CPU, --steps fast takes 18x fewer steps than the config's ddim250"
    cases = [([], "dpmpp2m", "logsnr14"), (["--steps", "ddim10"], "ddim", "ddim10"),
             (["--solver", "ddim"], "ddim", "ddim250")]  # fmt: skip
    for k, (args, solver, respacing) in enumerate(cases):
        out = tmp_path / f"out{k}"
        done = subprocess.run(
            [*restore, "--config", str(config), "-o", str(out), "--save-trace", *args],
            capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (said in done.stderr) is (k == 0) and (tip in done.stdout) is (k == 2), done
        assert f"solver {solver}, steps {respacing}" in done.stdout.splitlines()[0], done.stdout
        record = json.loads(next(out.glob("records/*.json")).read_text())
        manifest = json.loads((out / "manifest.jsonl").read_text().splitlines()[-1])
        trace = json.loads(next(out.glob("traces/*.json")).read_text())["faces"][0]["method"]
        for entry in (record, manifest, trace):
            assert (entry["solver"], entry["respacing"]) == (solver, respacing), entry


def test_restore_on_a_cpu_without_a_cpu_runtime_suggests_the_cpu_extra(
    fake, photos, tmp_path, monkeypatch
):
    monkeypatch.setattr("dynface.backends.available_backends", lambda: ["torch", "torch-compile"])
    tip = 'tip: on a CPU, pip install "dynface[cpu]" runs the networks on ONNX Runtime'
    result = run(str(photos), "-o", str(tmp_path / "a"), "--device", "cpu", "--seed", "0")
    assert result.exit_code == 0, result.output
    assert tip in " ".join(result.output.split())
    chosen = run(str(photos), "-o", str(tmp_path / "b"), "--device", "cpu", "--backend", "torch")
    assert chosen.exit_code == 0 and tip not in " ".join(chosen.output.split())
