"""`dynface ui` as users meet it: a real server process, driven by headless Chromium and
gradio_client; plus what a server must never do (listen everywhere, serve server files).

Needs Debian's chromium (`apt-get install chromium`) and the `test` extra; skipped otherwise.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
sync_api = pytest.importorskip("playwright.sync_api")

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "src" / "dynface" / "assets" / "samples"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: A CPU shared with other jobs can take a while to import Gradio and torch.
START_TIMEOUT = 120
JOB_TIMEOUT_MS = 90_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A `dynface ui` process; its stderr/stdout go to a log file the tests can read."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.port = _free_port()
        self.log = tmp / f"server-{self.port}.log"
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"), DYNFACE_OFFLINE="1")
        env.pop("DYNFACE_UI_AUTH", None)
        command = [sys.executable, "-m", "dynface", "ui", "--config", "tiny-random"]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp,
            )
        self.url = f"http://127.0.0.1:{self.port}/"
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dynface ui exited early:\n{self.output()}")
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        raise RuntimeError(f"dynface ui did not answer in {START_TIMEOUT} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        """SIGTERM, as a service manager would stop it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def temporary_folder(self) -> Path:
        for line in self.output().splitlines():
            if "temporary files in " in line:
                return Path(line.split("temporary files in ")[1].split(" (")[0])
        raise AssertionError(f"no temporary folder announced:\n{self.output()}")


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a socket listening on `port` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, hex_port = fields[1].split(":")
        if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One tiny-random server for the module."""
    running = Server(tmp_path_factory.mktemp("ui"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium under Playwright, with a fresh profile."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        profile = tempfile.mkdtemp(prefix="dynface-chromium-")
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        yield context
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture()
def page(browser, server: Server):
    """A fresh tab on the UI, fully loaded."""
    tab = browser.new_page()
    tab.goto(server.url)
    tab.wait_for_selector("#dynface-restore")
    yield tab
    tab.close()


def test_upload_restore_and_see_slider_faces_traces_and_downloads(
    page, server: Server, tmp_path: Path
) -> None:
    photos = [SAMPLES / "astronaut_degraded.jpg", SAMPLES / "grace_hopper_degraded.jpg"]
    page.locator("#dynface-photos input[type=file]").set_input_files([str(p) for p in photos])
    page.locator("#dynface-photos").get_by_text("grace_hopper_degraded").wait_for()
    page.locator("#dynface-identity-guard input[type=checkbox]").check()
    page.click("#dynface-restore")
    status = page.locator("#dynface-status")
    status.get_by_text("Restored 2 face(s) in 2 photo(s)").wait_for(timeout=JOB_TIMEOUT_MS)
    # the random networks' flat patches hold no face: identity is said to be unmeasured
    assert status.get_by_text("Identity not measured for 2 face(s).").count() == 1
    # before/after slider: two images; dragging the handle moves where "after" is cut
    assert page.locator("#dynface-slider img").count() == 2
    after = page.locator("#dynface-slider img").nth(1)
    clip = "document.querySelectorAll('#dynface-slider img')[1].style.clipPath"
    page.wait_for_function(f"() => {clip}.includes('50%')")
    handle = page.locator("#dynface-slider [data-testid=slider]").bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 120, y, steps=5)
    page.mouse.up()
    page.wait_for_function(f"() => {clip} && !{clip}.includes('50%')")
    assert "inset" in after.evaluate("img => img.style.clipPath")
    # gallery: each face before and after
    faces = page.locator("#dynface-faces")
    faces.locator("img").first.wait_for()
    assert faces.get_by_text("astronaut_degraded · face 1: before").count() == 1
    badge = "grace_hopper_degraded · face 1: after · identity not measured"
    assert faces.get_by_text(badge).count() == 1
    # the trace picture and its numbers
    trace = page.locator("#dynface-traces img")
    trace.wait_for()
    assert trace.evaluate("img => img.naturalHeight") > 2 * 300  # two faces stacked
    assert page.get_by_text("s* (px)").count() >= 1
    # downloads: each photo, and a zip that holds the faces and traces
    downloads = page.locator("#dynface-downloads")
    downloads.get_by_text("dynface_results").wait_for()
    assert downloads.get_by_text("astronaut_degraded").count() == 1
    link = downloads.locator('a[download="dynface_results.zip"]').get_attribute("href")
    archive = zipfile.ZipFile(io.BytesIO(page.request.get(link).body()))
    assert "traces/grace_hopper_degraded.json" in archive.namelist()
    assert "faces/restored/astronaut_degraded_00.png" in archive.namelist()
    trace = json.loads(archive.read("traces/grace_hopper_degraded.json"))
    assert trace["faces"][0]["method"]["identity"]["guard"] is True
    shot = tmp_path / "restored.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000


def test_upload_a_clip_restore_and_play_it_and_download_it(
    page, server: Server, tmp_path: Path
) -> None:
    from .video_clips import face_frames, write_clip

    av = pytest.importorskip("av")
    clip = tmp_path / "walk.mp4"
    write_clip(clip, face_frames(4))  # 0.4 s at 10 fps, 160x120, with a tone
    page.locator("#dynface-photos input[type=file]").set_input_files(str(clip))
    page.locator("#dynface-photos").get_by_text("walk").wait_for()
    assert not page.locator("#dynface-clip").is_visible()  # no clip yet, no player
    page.click("#dynface-restore")
    status = page.locator("#dynface-status")
    status.get_by_text("Restored 4 face(s) over 4 frames of walk.mp4").wait_for(
        timeout=JOB_TIMEOUT_MS
    )
    # the player has the restored clip and the browser can play it: it decodes a frame
    video = page.locator("#dynface-clip video")
    video.wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('#dynface-clip video');"
        " return v && v.readyState >= 2 && !v.error; }",
        timeout=30_000,
    )
    facts = video.evaluate("v => [v.videoWidth, v.videoHeight, v.duration, v.currentSrc]")
    assert facts[:2] == [160, 120] and facts[2] == pytest.approx(0.4, abs=0.05)
    assert "walk" in facts[3]
    assert not page.locator("#dynface-slider").is_visible()  # no photo: no before/after
    assert not page.locator("#dynface-faces").is_visible()  # ... and no empty face gallery
    downloads = page.locator("#dynface-downloads")
    downloads.get_by_text("dynface_results").wait_for()
    link = downloads.locator('a[download="walk.mp4"]').get_attribute("href")
    saved = tmp_path / "downloaded.mp4"
    saved.write_bytes(page.request.get(link).body())
    with av.open(str(saved)) as container:
        assert len(list(container.decode(video=0))) == 4
        assert len(container.streams.audio) == 1  # the sound came along
    # a photo added to the clip: both come back, the photo's slider beside the clip
    photo = SAMPLES / "grace_hopper_degraded.jpg"
    page.locator("#dynface-photos input[type=file]").set_input_files(str(photo))  # adds to it
    page.locator("#dynface-photos").get_by_text("grace_hopper_degraded").wait_for()
    page.click("#dynface-restore")
    status.get_by_text("Restored 1 face(s) in 1 photo(s) and 4 face(s) over 4 frames").wait_for(
        timeout=JOB_TIMEOUT_MS
    )
    assert page.locator("#dynface-slider img").count() == 2
    assert page.locator("#dynface-faces img").first.is_visible()
    assert page.locator("#dynface-clip video").is_visible()
    assert downloads.get_by_text("grace_hopper_degraded").count() == 1
    shot = tmp_path / "clip.png"
    page.screenshot(path=str(shot), full_page=True)


def test_unreadable_file_shows_the_error_message(page, server: Server, tmp_path: Path) -> None:
    logged = len(server.output())
    broken = tmp_path / "broken.png"
    broken.write_text("this is not a picture")
    page.locator("#dynface-photos input[type=file]").set_input_files(str(broken))
    page.locator("#dynface-photos").get_by_text("broken").wait_for()
    page.click("#dynface-restore")
    message = page.get_by_text("broken.png: not an image file")
    message.first.wait_for(timeout=JOB_TIMEOUT_MS)
    assert str(tmp_path) not in page.content()
    log = server.output()[logged:]  # an ordinary refusal is one line in the log, no traceback
    assert "Traceback" not in log and "broken.png: not an image file" in log, log


def test_an_example_fills_the_photo_and_presets_the_controls(page) -> None:
    page.get_by_text("grace_hopper_degraded: fidelity 0.8").click()
    page.locator("#dynface-photos").get_by_text("grace_hopper_degraded").wait_for()
    assert page.locator("#dynface-fidelity input[type=number]").input_value() == "0.8"
    page.get_by_text("Advanced").click()
    assert page.locator("#dynface-steps input").input_value() == "ddim50"
    assert page.locator("#dynface-only-center input").is_checked()


def test_cancel_stops_a_long_job(page) -> None:
    page.locator("#dynface-photos input[type=file]").set_input_files(
        str(SAMPLES / "astronaut_degraded.jpg")
    )
    page.locator("#dynface-photos").get_by_text("astronaut_degraded").wait_for()
    page.get_by_text("Advanced").click()
    steps = page.locator("#dynface-steps input")
    steps.fill("1000")  # every step of the diffusion: long enough to cancel
    steps.press("Enter")
    page.click("#dynface-restore")
    page.get_by_text("denoising steps").first.wait_for(timeout=JOB_TIMEOUT_MS)
    page.click("#dynface-cancel")
    page.locator("#dynface-status").get_by_text("Cancelled").wait_for(timeout=JOB_TIMEOUT_MS)
    # the server is free again: the next request is served
    steps.fill("ddim5")
    steps.press("Enter")
    page.click("#dynface-restore")
    page.locator("#dynface-status").get_by_text("Restored 1 face(s)").wait_for(
        timeout=JOB_TIMEOUT_MS
    )


def test_restore_without_a_photo_asks_for_one(page) -> None:
    page.click("#dynface-restore")
    page.get_by_text("upload a photo first").first.wait_for(timeout=JOB_TIMEOUT_MS)


def test_api_endpoint_restore_with_gradio_client(server: Server) -> None:
    client = gradio_client.Client(server.url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    parameters = api["named_endpoints"]["/restore"]["parameters"]
    assert parameters[0]["label"] == "photo" and not parameters[0]["parameter_has_default"]
    assert all(parameter["parameter_has_default"] for parameter in parameters[1:])
    # The names scripts pass by keyword, in the order of a positional data list.
    assert [parameter["parameter_name"] for parameter in parameters] == [
        "photo", "aligned", "fidelity", "guidance", "dgsa", "eta", "steps", "seed", "random_seed",
        "upscale", "only_center", "device", "precision", "backend", "background", "identity_guard",
    ]  # fmt: skip
    defaults = {
        parameter["parameter_name"]: parameter["parameter_default"] for parameter in parameters
    }
    assert defaults["fidelity"] == 0.5 and defaults["background"] == "auto"
    assert defaults["identity_guard"] is False
    assert defaults["random_seed"] is True and defaults["steps"] == ""
    photo = SAMPLES / "grace_hopper_degraded.jpg"
    restored, traces = client.predict(gradio_client.handle_file(str(photo)), api_name="/restore")
    from dynface.io import read_image

    out, source = read_image(restored).pixels, read_image(photo).pixels
    assert out.shape[:2] == (2 * source.shape[0], 2 * source.shape[1])
    assert traces["random_weights"] is True and traces["faces"][0]["mode"] == "dynface"
    assert traces["backends"] == "torch"  # tiny nets stay on torch
    plain = client.predict(
        gradio_client.handle_file(str(photo)), guidance="none", eta="0.25", api_name="/restore"
    )
    assert plain[1]["faces"][0]["guidance"] == "none" and plain[1]["faces"][0]["eta"] == 0.25
    assert traces["faces"][0]["fidelity"] == 0.5  # the default
    leaning = client.predict(
        gradio_client.handle_file(str(photo)), fidelity=1.0, api_name="/restore"
    )
    assert leaning[1]["faces"][0]["fidelity"] == 1.0
    again = client.predict(
        gradio_client.handle_file(str(photo)),
        random_seed=False,
        seed=traces["seed"],
        api_name="/restore",
    )
    assert (read_image(again[0]).pixels == out).all()  # the reported seed repeats the result


def test_api_endpoint_restore_refuses_a_clip_with_a_message(server: Server, tmp_path: Path) -> None:
    from .video_clips import face_frames, write_clip

    pytest.importorskip("av")
    clip = tmp_path / "walk.mp4"
    write_clip(clip, face_frames(2))
    client = gradio_client.Client(server.url, verbose=False)
    with pytest.raises(Exception, match="/restore takes one photo; restore clips on the page"):
        client.predict(gradio_client.handle_file(str(clip)), api_name="/restore")


def test_no_server_path_is_readable(server: Server) -> None:
    for path in (SAMPLES / "astronaut_degraded.jpg", server.log, Path("/etc/passwd")):
        url = f"{server.url}gradio_api/file={path}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 403, path
    # A forged request naming a server file instead of an upload is refused before our code.
    forged = {"path": str(SAMPLES / "astronaut_degraded.jpg"), "meta": {"_type": "gradio.FileData"}}
    values = [forged, False, 0.5, "closed-form", "heuristic", "dynamic", "", 0, True, 2, False]
    body = json.dumps({"data": [*values, "auto", "fp32", "auto", "auto", False]}).encode()
    request = urllib.request.Request(
        f"{server.url}gradio_api/call/restore", body, {"Content-Type": "application/json"}
    )
    event = json.load(urllib.request.urlopen(request, timeout=10))["event_id"]
    answer = urllib.request.urlopen(f"{server.url}gradio_api/call/restore/{event}", timeout=60)
    stream = answer.read().decode()
    assert stream.startswith("event: error") and "not uploaded by a user" in stream


def _upload(url: str, name: str, size: int) -> int:
    """POST one file of `size` bytes to Gradio's upload route, as the page does; the status."""
    boundary = "dynface-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + b"x" * size
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}gradio_api/upload",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_uploads_with_no_job_stop_at_the_folder_limit(tmp_path: Path) -> None:
    """A client that only uploads fills at most --max-uploads-mb, then gets one-line refusals."""
    server = Server(tmp_path, "--max-uploads-mb", "2", "--max-file-mb", "1")
    try:
        statuses = [_upload(server.url, f"p{k}.png", 700_000) for k in range(4)]
        uploads = server.temporary_folder() / "uploads"
        held = sum(path.stat().st_size for path in uploads.rglob("*") if path.is_file())
    finally:
        server.stop()
    assert statuses == [200, 200, 507, 507] and held <= 2_000_000
    log = server.output()
    assert log.count("dynface ui: upload refused:") == 2 and "Traceback" not in log


def test_binds_localhost_only_by_default(server: Server) -> None:
    assert listening_addresses(server.port) == {"127.0.0.1"}
    assert "warning" not in server.output()


def test_listen_with_auth_warns_binds_everywhere_asks_a_login_and_cleans_up(
    tmp_path: Path,
) -> None:
    exposed = Server(tmp_path, "--listen", "--auth", "alice:secret")
    try:
        assert listening_addresses(exposed.port) == {"0.0.0.0"}
        assert "warning: --listen" in exposed.output()
        with pytest.raises(ValueError, match="(?i)login|auth|credentials"):
            gradio_client.Client(exposed.url, verbose=False)
        client = gradio_client.Client(exposed.url, auth=("alice", "secret"), verbose=False)
        endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        assert "/restore" in endpoints
        folder = exposed.temporary_folder()
        assert folder.is_dir()
    finally:
        exposed.stop()
    assert exposed.process.returncode == 0
    assert not folder.exists()  # uploads and outputs removed on exit


def test_exposing_the_server_without_a_login_warns_to_add_one() -> None:
    from dynface.ui.server import ServerOptions, security_warnings

    assert security_warnings(ServerOptions()) == []
    listen = security_warnings(ServerOptions(listen=True))
    assert any("--listen" in line for line in listen)
    assert any("--auth user:password" in line for line in listen)
    share = security_warnings(ServerOptions(share=True, auth=("a", "b")))
    assert len(share) == 1 and "gradio.live" in share[0]
