"""`dynface.identity`: the distance tells people apart; the guard measures, retries and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from dynface.api import Restorer
from dynface.identity import SAME_PERSON, compare, distance
from dynface.identity.guard import IdentityOptions
from dynface.identity.report import identity_lines
from dynface.photos import RestoreOptions, restore_photos

from .conftest import TEST_DATA

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")


def _rgb(name: str) -> np.ndarray:
    return np.array(Image.open(TEST_DATA / name).convert("RGB"))


ASTRONAUT = _rgb("astronaut_face.png")  # Eileen Collins, aligned 256 px (public domain)
HOPPER = _rgb("grace_hopper_face.png")  # Grace Hopper, aligned 256 px (public domain)


def _blurred(image: np.ndarray, s_star: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), s_star * image.shape[0] / 512)


def test_distance_tells_two_people_apart_also_blurred():
    same = distance(ASTRONAUT, _blurred(ASTRONAUT, 6.0))
    assert same is not None and same < SAME_PERSON
    # A hard pair (0.69 apart when sharp, 0.63 at blur 4); docs/identity.md gives the
    # accuracy per blur level over CelebRef-HQ.
    for a, b in [(ASTRONAUT, HOPPER), (_blurred(ASTRONAUT, 2.0), HOPPER)]:
        other = distance(a, b)
        assert other is not None and other > SAME_PERSON


def test_distance_takes_whole_photos_gray_rgba_and_float():
    whole = _rgb("astronaut.png")
    assert distance(whole, ASTRONAUT) < SAME_PERSON
    gray = cv2.cvtColor(ASTRONAUT, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([HOPPER, np.full(HOPPER.shape[:2], 255, np.uint8)])
    assert distance(gray, ASTRONAUT) < SAME_PERSON
    assert distance(rgba.astype(np.float32) / 255, HOPPER) < 0.05


def test_a_face_too_blurred_to_judge_is_none_with_the_reason():
    check = compare(_blurred(ASTRONAUT, 12.0), ASTRONAUT)  # s* 9.4 on this 256 px crop
    assert check.distance is None and "too degraded to judge identity" in check.reason


def test_no_face_is_none_with_the_reason():
    flat = np.full((128, 128, 3), 120, np.uint8)
    check = compare(ASTRONAUT, flat)
    assert check.distance is None and check.reason == "no face found in the second image"
    assert distance(flat, ASTRONAUT) is None


class StandIn:
    """Replaces the sampling of a tiny Restorer: returns `face_below` for fidelities under
    `switch`, else the input itself; records each call's fidelity and face count."""

    def __init__(self, face_below: np.ndarray, switch: float) -> None:
        self.face_below = torch.from_numpy(face_below).permute(2, 0, 1).float() / 255
        self.switch = switch
        self.calls: list[tuple[float, int]] = []

    def __call__(self, faces, group, generators, levels, fidelity, progress, on_plan):
        self.calls.append((fidelity, len(group)))
        images = [faces[k] if fidelity >= self.switch else self._resized(faces[k]) for k in group]
        trace = {"s_star": 0.0, "fidelity": fidelity, "nfe": 1}
        traces = [SimpleNamespace(to_dict=lambda t=trace: dict(t)) for _ in group]
        return SimpleNamespace(images=torch.stack(images), traces=traces)

    def _resized(self, face: torch.Tensor) -> torch.Tensor:
        size = face.shape[-2:]
        return torch.nn.functional.interpolate(self.face_below[None], size=size, mode="area")[0]


@pytest.fixture()
def tiny() -> Restorer:
    return Restorer.from_config("tiny-random", device="cpu", overrides={"respacing": "ddim5"})


def _guarded(tiny: Restorer, stand_in: StandIn, faces: list[np.ndarray], guard: bool = True):
    tiny._restore_group = stand_in  # type: ignore[method-assign]
    return tiny.restore_aligned(faces, seed=3, identity=IdentityOptions(guard=guard))


def test_guard_keeps_a_face_that_holds_at_once(tiny):
    stand_in = StandIn(HOPPER, switch=0.0)
    result = _guarded(tiny, stand_in, [ASTRONAUT])
    identity = result.traces[0]["identity"]
    assert identity["verdict"] == "same person" and identity["distance"] < SAME_PERSON
    assert [a["fidelity"] for a in identity["attempts"]] == [0.5]
    assert stand_in.calls == [(0.5, 1)]


def test_guard_retries_a_drifting_face_at_higher_fidelity(tiny):
    stand_in = StandIn(HOPPER, switch=0.75)
    result = _guarded(tiny, stand_in, [ASTRONAUT, _blurred(ASTRONAUT, 2.0)])
    for k, trace in enumerate(result.traces):
        identity = trace["identity"]
        first, second = identity["attempts"]
        assert first["fidelity"] == 0.5 and first["distance"] > SAME_PERSON
        assert second["fidelity"] == 0.75 and second["distance"] < SAME_PERSON
        assert identity["verdict"] == "same person" and trace["fidelity"] == 0.75
        kept = (result.images[k].permute(1, 2, 0).numpy() * 255).round()
        assert np.abs(kept - [ASTRONAUT, _blurred(ASTRONAUT, 2.0)][k]).max() <= 1
    assert stand_in.calls == [(0.5, 2), (0.75, 2)]


def test_guard_keeps_the_highest_fidelity_when_no_attempt_holds(tiny):
    stand_in = StandIn(HOPPER, switch=2.0)
    identity = _guarded(tiny, stand_in, [ASTRONAUT]).traces[0]["identity"]
    assert [a["fidelity"] for a in identity["attempts"]] == [0.5, 0.75, 1.0]
    assert identity["verdict"] == "not confirmed" and identity["same_person"] is False
    assert all(a["distance"] > SAME_PERSON for a in identity["attempts"])


def test_measure_without_guard_reports_drift_but_does_not_retry(tiny):
    stand_in = StandIn(HOPPER, switch=2.0)
    identity = _guarded(tiny, stand_in, [ASTRONAUT], guard=False).traces[0]["identity"]
    assert identity["verdict"] == "not confirmed" and len(identity["attempts"]) == 1
    assert stand_in.calls == [(0.5, 1)]


def test_flat_patches_are_not_measured_and_not_retried(tiny):
    result = tiny.restore_aligned(
        torch.from_numpy(ASTRONAUT).permute(2, 0, 1), seed=0, identity=IdentityOptions(guard=True)
    )
    identity = result.traces[0]["identity"]
    assert identity["verdict"] == "not measured" and len(identity["attempts"]) == 1
    assert identity["reason"] == "no face found in the restored face"


def test_references_replace_the_input(tiny, tmp_path):
    stand_in = StandIn(HOPPER, switch=2.0)  # always returns Hopper's face
    tiny._restore_group = stand_in  # type: ignore[method-assign]
    options = IdentityOptions(references=(_rgb("grace_hopper.jpg"),))
    identity = tiny.restore_aligned([ASTRONAUT], identity=options).traces[0]["identity"]
    assert identity["against"] == "reference" and identity["verdict"] == "same person"


def test_photos_record_and_summary_name_the_unconfirmed_faces(tiny, tmp_path):
    tiny._restore_group = StandIn(HOPPER, switch=2.0)  # type: ignore[method-assign]
    options = RestoreOptions(face_size=256, identity_guard=True, bg_upsampler="none")
    [result] = restore_photos([TEST_DATA / "astronaut.png"], tiny, tmp_path, options)
    assert result.status == "ok" and [f["verdict"] for f in result.identity] == ["not confirmed"]
    record = json.loads((tmp_path / "records" / "astronaut.json").read_text())
    assert (
        record["identity"][0]["attempts"] == 3
        and record["identity"][0]["name"] == "face 0"
        and record["identity"][0]["fidelity"] == 1.0
    )
    [line] = identity_lines([result])
    assert line.startswith("identity not confirmed for 1 face(s): astronaut.png face 0 (0.")


@pytest.mark.slow
def test_cli_identity_guard_with_tiny_random_weights(tmp_path):
    command = [sys.executable, "-m", "dynface", "restore", str(TEST_DATA / "astronaut.png")]
    command += ["-o", str(tmp_path), "--config", "tiny-random", "--steps", "ddim5"]
    command += ["--identity-guard", "--save-trace"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "identity not measured for 1 face(s): no face found in the restored face" in done.stdout
    trace = json.loads((tmp_path / "traces" / "astronaut.json").read_text())
    identity = trace["faces"][0]["method"]["identity"]
    assert identity["guard"] is True and identity["attempts"][0]["fidelity"] == 0.5


@pytest.mark.slow
def test_a_clip_decides_identity_once_per_track_and_restores_it_at_that_fidelity(tiny, tmp_path):
    pytest.importorskip("av")
    from dynface.video import VideoOptions, restore_video

    from .video_clips import write_clip

    clip = tmp_path / "clip.mp4"
    frames = []
    for k in range(5):  # Grace Hopper's sharp face sliding over a plain background
        frame = np.full((240, 320, 3), 100, np.uint8)
        frame[40:200, 60 + 4 * k : 220 + 4 * k] = cv2.resize(HOPPER, (160, 160))
        frames.append(frame)
    write_clip(clip, frames, audio=False)
    stand_in = StandIn(ASTRONAUT, switch=0.75)  # another person below fidelity 0.75
    tiny._restore_group = stand_in  # type: ignore[method-assign]
    options = VideoOptions(face_size=256, identity=IdentityOptions(guard=True))
    result = restore_video(clip, tiny, tmp_path / "out", options)
    assert result.status == "ok" and result.faces_restored == 5
    [track] = result.identity
    assert track["name"] == "track 0" and track["verdict"] == "same person"
    assert track["fidelity"] == 0.75 and track["attempts"] == 2
    # decided on the track's first face (0.5, then 0.75), then every frame at 0.75
    assert stand_in.calls[:2] == [(0.5, 1), (0.75, 1)]
    assert {fidelity for fidelity, _ in stand_in.calls[2:]} == {0.75}
    lines = (tmp_path / "out" / "traces" / "clip.frames.jsonl").read_text().splitlines()
    identities = [json.loads(line)["method"]["identity"] for line in lines]
    assert len(identities) == 5 and all(i == identities[0] for i in identities)
    assert identities[0]["frame"] == 0 and len(identities[0]["attempts"]) == 2
    tracks = json.loads((tmp_path / "out" / "traces" / "clip.tracks.json").read_text())
    assert tracks["tracks"][0]["identity"]["verdict"] == "same person"


@pytest.mark.slow
def test_cli_refuses_a_reference_without_a_face_before_any_work(tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(blank)
    command = [sys.executable, "-m", "dynface", "restore", str(TEST_DATA / "astronaut.png")]
    command += ["-o", str(tmp_path / "out"), "--config", "tiny-random", "--reference", str(blank)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "--reference" in done.stderr and "no face found in reference photo 1" in done.stderr
    assert not (tmp_path / "out" / "final").exists()
