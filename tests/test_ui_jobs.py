"""The web UI's job runner (no browser): limits, CLI messages, outputs, traces, cancel."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dynface.errors import ResourceError, UsageError
from dynface.io import ImageReadError, read_image, write_image
from dynface.ui.clips import ClipLimits
from dynface.ui.jobs import JobCancelled, JobRunner, JobSettings, Limits, MethodChoices

from .video_clips import face_frames, write_clip

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "src" / "dynface" / "assets" / "samples"
ASTRONAUT = SAMPLES / "astronaut_degraded.jpg"
HOPPER = SAMPLES / "grace_hopper_degraded.jpg"
FAST = JobSettings(steps="ddim5", seed=3)
CLIP_FRAMES = 4


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> JobRunner:
    """One runner (tiny random nets, loaded once) for the module."""
    return JobRunner("tiny-random", tmp_path_factory.mktemp("jobs"), limits=Limits(2, 1.0))


def test_two_photos_give_photos_previews_faces_traces_and_a_zip(runner: JobRunner) -> None:
    reports: list[str] = []
    result = runner.run([ASTRONAUT, HOPPER], FAST, lambda state, text: reports.append(text))
    assert [photo.name for photo in result.photos] == [
        "astronaut_degraded",
        "grace_hopper_degraded",
    ]
    assert result.seed == 3 and result.random_weights and result.failures == []
    photo = result.photos[0]
    final = read_image(photo.final).pixels
    source = read_image(ASTRONAUT).pixels
    assert final.shape[:2] == (2 * source.shape[0], 2 * source.shape[1])  # upscale 2
    # before/after previews are the same size, so the slider lines them up
    assert read_image(photo.before).pixels.shape == read_image(photo.after).pixels.shape
    face = photo.faces[0]
    assert face.trace["mode"] == "dynface" and "s_star" in face.trace
    assert read_image(face.picture).pixels.shape == (300, 900, 3)
    names = set(zipfile.ZipFile(result.archive).namelist())
    assert {"final/astronaut_degraded.png", "traces/grace_hopper_degraded.json"} <= names
    assert {
        "faces/restored/astronaut_degraded_00.png",
        "pictures/astronaut_degraded_00.png",
    } <= names
    saved = json.loads(zipfile.ZipFile(result.archive).read("traces/astronaut_degraded.json"))
    assert saved["faces"][0]["method"] == face.trace
    assert any("denoising steps" in text for text in reports)
    sheet = read_image(result.trace_sheet).pixels
    assert sheet.shape[0] > 2 * 300  # one picture per face, stacked


def test_the_same_seed_gives_the_same_photo_and_random_seeds_are_reported(
    runner: JobRunner,
) -> None:
    first = read_image(runner.run([HOPPER], FAST).photos[0].final).pixels
    again = read_image(runner.run([HOPPER], FAST).photos[0].final).pixels
    np.testing.assert_array_equal(first, again)
    drawn = runner.run([HOPPER], JobSettings(steps="ddim5"))
    assert 0 <= drawn.seed < 2**31


def test_method_settings_reach_the_method_and_bad_ones_are_refused(runner: JobRunner) -> None:
    method = MethodChoices(guidance="none", dgsa="none", eta="0.25")
    face = runner.run([HOPPER], JobSettings(steps="ddim5", seed=3, method=method)).photos[0]
    trace = face.faces[0].trace
    assert (trace["guidance"], trace["dgsa"], trace["eta"]) == ("none", "none", 0.25)
    with pytest.raises(UsageError, match="eta 'fast' must be"):
        runner.run([HOPPER], JobSettings(method=MethodChoices("none", "none", "fast")))
    with pytest.raises(UsageError, match="backend"):
        runner.run([HOPPER], JobSettings(steps="ddim5", backend="warp-drive"))


def test_fidelity_reaches_the_method_and_is_checked(runner: JobRunner) -> None:
    settings = JobSettings(steps="ddim5", seed=3, fidelity=1.0)
    face = runner.run([HOPPER], settings).photos[0].faces[0]
    assert face.trace["fidelity"] == 1.0
    assert face.trace["s_effective"] < face.trace["s_star"]  # closer to the input: less blur
    with pytest.raises(UsageError, match="fidelity"):
        runner.run([HOPPER], JobSettings(fidelity=1.5))


def test_unreadable_file_gets_the_cli_message_without_the_server_path(
    runner: JobRunner, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")
    with pytest.raises(ImageReadError) as cli:
        read_image(broken)
    with pytest.raises(ResourceError) as ui:
        runner.run([broken], FAST)
    assert str(ui.value) == str(cli.value).replace(f"{broken}: ", "broken.png: ")
    assert str(tmp_path) not in str(ui.value)


def test_photo_without_a_face_says_so_and_good_photos_still_come_back(
    runner: JobRunner, tmp_path: Path
) -> None:
    empty = write_image(tmp_path / "wall.png", np.full((96, 96, 3), 0.6, np.float32))
    with pytest.raises(ResourceError, match="wall.png: no face found"):
        runner.run([empty], FAST)
    result = runner.run([empty, HOPPER], FAST)
    assert [photo.name for photo in result.photos] == ["grace_hopper_degraded"]
    assert len(result.failures) == 1 and "no face found" in result.failures[0]


def test_limits_refuse_too_many_photos_too_many_pixels_and_bad_steps(
    runner: JobRunner, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="upload a photo"):
        runner.run([], FAST)
    with pytest.raises(UsageError, match="limit of 2"):
        runner.run([HOPPER] * 3, FAST)
    big = write_image(tmp_path / "big.png", np.zeros((1100, 1000, 3), np.float32))
    with pytest.raises(UsageError, match=r"big.png: 1.1 MP is more than this server's limit"):
        runner.run([big], FAST)
    with pytest.raises(UsageError, match="not a step count"):
        runner.run([HOPPER], JobSettings(steps="quick"))
    with pytest.raises(UsageError, match="does not fit the 1000-step diffusion"):
        runner.run([HOPPER], JobSettings(steps="ddim999"))


def test_aligned_crops_skip_detection(runner: JobRunner, tmp_path: Path) -> None:
    crop = write_image(tmp_path / "crop.png", np.full((40, 40, 3), 0.4, np.float32))
    result = runner.run([crop], JobSettings(aligned=True, steps="ddim5", seed=0))
    assert len(result.photos[0].faces) == 1
    assert read_image(result.photos[0].final).pixels.shape[:2] == (32, 32)  # tiny net size


def test_cancel_stops_the_job_at_the_next_step_and_writes_no_photo(runner: JobRunner) -> None:
    cancel = threading.Event()

    def report(state, text):
        if state.steps_total:
            cancel.set()  # pressed once the sampling is planned

    before = set(runner.workroot.glob("job-*/final/*.png"))
    jobs = set(runner.workroot.glob("job-*"))
    with pytest.raises(JobCancelled, match="cancelled after 1 denoising steps"):
        runner.run([ASTRONAUT], FAST, report, cancel)
    assert set(runner.workroot.glob("job-*/final/*.png")) == before
    assert set(runner.workroot.glob("job-*")) == jobs  # its folder is gone: no records/*.lock
    assert len(runner.run([ASTRONAUT], FAST).photos) == 1  # the runner is free again


def test_missing_weights_give_the_cli_message(tmp_path: Path) -> None:
    runner = JobRunner("default", tmp_path / "jobs", weights_dir=tmp_path / "none")
    with pytest.raises(ResourceError, match="iddpm_ffhq512_ema500000"):
        runner.run([HOPPER], JobSettings(steps="ddim5"))


def test_dynface_help_does_not_import_the_web_ui() -> None:
    code = (
        "import sys\nfrom dynface.cli import app\n"
        "try:\n    app(['--help'], prog_name='dynface')\nexcept SystemExit:\n    pass\n"
        "print('gradio' in sys.modules, 'dynface.ui' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert " ui " in out and out.strip().splitlines()[-1] == "False False"


@pytest.mark.parametrize(
    ("choice", "upsampler"), [("none", "bicubic"), ("realesrgan", "realesrgan")]
)
def test_background_choice_reaches_the_photo_trace(
    runner: JobRunner, choice: str, upsampler: str
) -> None:
    settings = JobSettings(steps="ddim5", seed=3, bg_upsampler=choice)
    photo = runner.run([HOPPER], settings).photos[0]
    trace = json.loads((photo.final.parent.parent / "traces" / f"{photo.name}.json").read_text())
    assert trace["background"]["upsampler"] == upsampler


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """The tiny nets gain nothing from threads, and on a busy machine threads wait on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.4 s: four 160x120 frames at 10 fps, a face moving across, a 440 Hz tone."""
    pytest.importorskip("av")
    path = tmp_path_factory.mktemp("clip") / "walk.mp4"
    write_clip(path, face_frames(CLIP_FRAMES))
    return path


def _frames_and_sound(path: Path) -> tuple[list[np.ndarray], list[int], float, np.ndarray]:
    """Decoded RGB frames, their timestamps, the stream's time base and the decoded sound."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        time_base = float(stream.time_base)
    with av.open(str(path)) as container:
        sound = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    pictures = [frame.to_ndarray(format="rgb24") for frame in frames]
    return pictures, [frame.pts for frame in frames], time_base, sound


def test_a_clip_and_a_photo_in_one_job_are_both_restored_with_the_clips_timing_and_sound(
    runner: JobRunner, clip: Path, one_thread: None
) -> None:
    reports: list[str] = []
    result = runner.run([HOPPER, clip], FAST, lambda state, text: reports.append(text))
    assert [photo.name for photo in result.photos] == ["grace_hopper_degraded"]
    assert result.failures == [] and len(result.clips) == 1
    restored = result.clips[0]
    assert restored.final.name == "walk.mp4" and restored.preview == restored.final
    assert (restored.frames, restored.faces_restored, restored.tracks) == (CLIP_FRAMES, 4, 1)
    before, before_pts, before_base, before_sound = _frames_and_sound(clip)
    after, after_pts, after_base, after_sound = _frames_and_sound(restored.final)
    assert len(after) == CLIP_FRAMES and after[0].shape == before[0].shape
    assert [pts * after_base for pts in after_pts] == [pts * before_base for pts in before_pts]
    assert after_sound.shape == before_sound.shape and np.abs(after_sound).max() > 0.1
    np.testing.assert_array_equal(after_sound, before_sound)  # the sound is copied
    changed = [np.abs(a.astype(float) - b).mean() for a, b in zip(after, before, strict=True)]
    assert min(changed) > 1.0  # the face in every frame was replaced (random nets: noise)
    summary = json.loads((restored.final.parent.parent / "traces" / "walk.tracks.json").read_text())
    assert summary["seed"] == 3 and summary["tracks"][0]["seeds"] == [3]  # the page's seed
    names = set(zipfile.ZipFile(result.archive).namelist())
    assert {"final/walk.mp4", "traces/walk.frames.jsonl", "final/grace_hopper_degraded.png"} <= (
        names
    )
    for stage in ("analysing frames", "restoring frames", "writing frames"):
        assert any(text.startswith(f"{stage} {CLIP_FRAMES}/{CLIP_FRAMES}") for text in reports)
    assert any("restoring frames" in text and "denoising steps" in text for text in reports)


def test_other_containers_get_a_browser_copy_with_the_same_frames(
    runner: JobRunner, tmp_path: Path, one_thread: None
) -> None:
    pytest.importorskip("av")
    source = tmp_path / "tape.mkv"
    write_clip(source, face_frames(2))
    restored = runner.run([source], replace(FAST, fidelity=0.8)).clips[0]
    assert restored.final.name == "tape.mkv" and restored.preview.suffix == ".mp4"
    traces = (restored.final.parent.parent / "traces" / "tape.frames.jsonl").read_text()
    assert {json.loads(line)["method"]["fidelity"] for line in traces.splitlines()} == {0.8}
    final, final_pts, final_base, final_sound = _frames_and_sound(restored.final)
    copy, copy_pts, copy_base, copy_sound = _frames_and_sound(restored.preview)
    np.testing.assert_array_equal(np.stack(copy), np.stack(final))  # streams copied, not encoded
    assert [p * copy_base for p in copy_pts] == [p * final_base for p in final_pts]
    np.testing.assert_array_equal(copy_sound, final_sound)


def test_clip_limits_refuse_long_many_and_unreadable_clips_before_any_work(
    clip: Path, tmp_path: Path
) -> None:
    def no_networks(*args: object, **kwargs: object) -> None:
        raise AssertionError("the networks were loaded for a refused request")

    short = Limits(clips=ClipLimits(max_seconds=0.3))
    runner = JobRunner("tiny-random", tmp_path / "jobs", limits=short, loader=no_networks)
    with pytest.raises(
        UsageError, match=r"walk.mp4: 0.4 s \(4 frames\) is more than this server's"
    ):
        runner.run([clip], FAST)
    few = JobRunner("tiny-random", tmp_path / "jobs", limits=Limits(clips=ClipLimits(max_frames=3)))
    with pytest.raises(UsageError, match="limit of 30 s or 3 frames; cut it shorter"):
        few.run([HOPPER, clip], FAST)
    with pytest.raises(UsageError, match="2 clips at once"):
        runner.run([clip, clip], FAST)
    broken = tmp_path / "broken.mov"
    broken.write_bytes(b"not a video")
    with pytest.raises(ResourceError, match=r"^broken.mov cannot be read as a video") as unread:
        runner.run([broken], FAST)
    assert str(tmp_path) not in str(unread.value)
    with pytest.raises(UsageError, match=r"upload a photo first .* or a clip \(MP4"):
        runner.run([], FAST)
    assert not (tmp_path / "jobs").exists()  # no job folder: nothing was started


def test_cancel_stops_a_clip_at_the_next_step_and_writes_no_clip(
    runner: JobRunner, clip: Path, one_thread: None
) -> None:
    cancel = threading.Event()

    restoring_from = []

    def report(state, text):
        if state.stage == "restoring frames":
            restoring_from.append(state.steps_done)
            if state.steps_done > restoring_from[0]:
                cancel.set()  # pressed once the first face of the clip is being sampled

    before = set(runner.workroot.glob("job-*/final/*walk*"))
    jobs = set(runner.workroot.glob("job-*"))
    # The identity check restores the track's first face first (5 face-steps); then all four
    # faces are sampled together (4 face-steps a step): cancelled during the first step, the
    # job stops at the second, long before the fifth and last.
    with pytest.raises(JobCancelled, match=r"after 13 denoising steps \(restoring frames 0\)"):
        runner.run([clip], FAST, report, cancel)
    assert set(runner.workroot.glob("job-*/final/*walk*")) == before
    assert set(runner.workroot.glob("job-*")) == jobs  # its folder is gone: no .dynface-work/
    assert runner.run([clip], FAST).clips[0].frames == CLIP_FRAMES  # the runner is free again


def test_reference_photos_are_what_identity_is_measured_against(runner: JobRunner) -> None:
    pytest.importorskip("dlib")
    settings = replace(FAST, identity_guard=True, references=(HOPPER,))
    [photo] = runner.run([HOPPER], settings).photos
    identity = photo.faces[0].trace["identity"]
    assert identity["against"] == "reference" and identity["guard"] is True
    # the tiny random networks give flat patches: said, not retried
    assert identity["verdict"] == "not measured" and len(identity["attempts"]) == 1


def test_a_reference_without_a_face_is_refused_in_one_line(
    runner: JobRunner, tmp_path: Path
) -> None:
    pytest.importorskip("dlib")
    blank = tmp_path / "blank.png"
    write_image(blank, np.full((64, 64, 3), 0.5, np.float32))
    settings = replace(FAST, references=(blank,))
    with pytest.raises(UsageError, match="no face found in reference photo 1"):
        runner.run([HOPPER], settings)


def test_a_refusal_is_one_line_in_the_server_log_not_a_traceback(capsys) -> None:
    gr = pytest.importorskip("gradio")
    from types import SimpleNamespace

    from dynface.ui.app import Handlers

    class Refusing:
        def run(self, *args: object) -> None:
            raise UsageError("broken.png: not an image file (or a format Pillow cannot read)")

    handlers = Handlers(Refusing())  # type: ignore[arg-type]
    with pytest.raises(gr.Error) as raised:
        handlers._run(["broken.png"], JobSettings(), SimpleNamespace(session_hash="s"), None)
    assert not raised.value.print_exception  # Gradio prints no traceback for it
    assert "not an image file" in raised.value.message
    assert capsys.readouterr().err.splitlines() == [
        "dynface ui: could not restore: broken.png: not an image file (or a format Pillow "
        "cannot read)"
    ]
