"""Weight registry: downloads from a local HTTP server, resume, sha256 checks, offline, CLI."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dynface import weights
from dynface.cli import app
from dynface.weights import WeightsCorrupted, WeightSpec, WeightsUnavailable

PAYLOAD = bytes(range(256)) * 40 + b"dynface test weights"
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
WRONG_SHA = "0" * 64


@dataclass
class Server:
    """A tiny HTTP file server with Range support that logs what it was asked."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    cut_after: int | None = None  # send only this many bytes of the next response, then hang up
    ignore_range: bool = False


def _handler(state: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            range_header = self.headers.get("Range")
            state.requests.append((self.path, range_header))
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
            if match and not state.ignore_range:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start:]
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if state.cut_after is not None:
                chunk, state.cut_after = chunk[: state.cut_after], None
                self.close_connection = True
            self.wfile.write(chunk)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _spec(name: str, url: str, sha256: str | None, size: int | None = None) -> WeightSpec:
    return WeightSpec(name, f"{name}.bin", url, sha256, size, "test-arch", f"test file {name}")


@pytest.fixture
def registry(server: Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, WeightSpec]:
    """A registry of test files served by `server`; the real one is left untouched."""
    monkeypatch.setattr(weights, "REGISTRY", {})
    monkeypatch.delenv("DYNFACE_OFFLINE", raising=False)
    monkeypatch.delenv("DYNFACE_WEIGHTS_URL", raising=False)
    for name in ("tiny", "tofu", "bad"):
        server.files[f"/rel/{name}.bin"] = PAYLOAD
    weights.register(_spec("tiny", f"{server.base}/rel/tiny.bin", PAYLOAD_SHA, len(PAYLOAD)))
    weights.register(_spec("tofu", f"{server.base}/rel/tofu.bin", None))
    weights.register(_spec("bad", f"{server.base}/rel/bad.bin", WRONG_SHA))
    return weights.REGISTRY


def _cache_files() -> list[str]:
    return sorted(p.name for p in weights.cache_dir().iterdir() if not p.name.endswith(".lock"))


def test_download_caches_and_verifies(registry: dict, server: Server) -> None:
    path = weights.download("tiny", progress=False)
    assert path == weights.cache_dir() / "tiny.bin"
    assert path.read_bytes() == PAYLOAD
    assert len(server.requests) == 1
    assert weights.resolve("tiny") == path
    assert weights.resolve("tiny.bin") == path  # the file name works as well as the name
    assert weights.download("tiny") == path
    assert len(server.requests) == 1  # served from the cache, no second download
    assert weights.verify("tiny").status == "ok"


def test_corrupted_download_is_rejected_and_deleted(registry: dict) -> None:
    with pytest.raises(WeightsCorrupted) as info:
        weights.download("bad", progress=False)
    assert PAYLOAD_SHA in str(info.value) and WRONG_SHA in str(info.value)
    assert _cache_files() == []


def test_resume_from_partial_file(registry: dict, server: Server) -> None:
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    (cache / "tiny.bin.part").write_bytes(PAYLOAD[:3000])
    path = weights.download("tiny", progress=False)
    assert server.requests == [("/rel/tiny.bin", "bytes=3000-")]
    assert path.read_bytes() == PAYLOAD
    assert _cache_files() == ["tiny.bin"]


def test_interrupted_download_resumes_on_next_call(registry: dict, server: Server) -> None:
    server.cut_after = 4000
    with pytest.raises(WeightsUnavailable, match="resume"):
        weights.download("tiny", progress=False)
    assert (weights.cache_dir() / "tiny.bin.part").stat().st_size == 4000
    path = weights.download("tiny", progress=False)
    assert server.requests[-1] == ("/rel/tiny.bin", "bytes=4000-")
    assert path.read_bytes() == PAYLOAD


def test_complete_partial_file_is_fetched_again(registry: dict, server: Server) -> None:
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    (cache / "tiny.bin.part").write_bytes(PAYLOAD + b"extra")  # server answers 416
    assert weights.download("tiny", progress=False).read_bytes() == PAYLOAD
    assert [r for _, r in server.requests] == [f"bytes={len(PAYLOAD) + 5}-", None]


def test_server_without_range_support_restarts_cleanly(registry: dict, server: Server) -> None:
    server.ignore_range = True
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    (cache / "tiny.bin.part").write_bytes(b"x" * 3000)
    assert weights.download("tiny", progress=False).read_bytes() == PAYLOAD


def test_mirror_url_replaces_the_folder(
    registry: dict, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights.register(_spec("moved", "http://127.0.0.1:9/gone/moved.bin", PAYLOAD_SHA))
    server.files["/mirror/moved.bin"] = PAYLOAD
    monkeypatch.setenv("DYNFACE_WEIGHTS_URL", f"{server.base}/mirror/")
    assert weights.download("moved", progress=False).read_bytes() == PAYLOAD
    assert server.requests == [("/mirror/moved.bin", None)]


def test_local_folder_mirror_works_offline(
    registry: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tiny.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("DYNFACE_WEIGHTS_URL", str(tmp_path))
    monkeypatch.setenv("DYNFACE_OFFLINE", "1")
    assert weights.resolve("tiny").read_bytes() == PAYLOAD


def test_offline_gives_one_clear_sentence_without_network(
    registry: dict, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was used in offline mode")

    monkeypatch.setenv("DYNFACE_OFFLINE", "1")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(WeightsUnavailable) as info:
        weights.resolve("tiny")
    message = str(info.value)
    assert "tiny.bin" in message and "DYNFACE_OFFLINE=1" in message
    assert registry["tiny"].url in message
    assert str(weights.cache_dir() / "tiny.bin") in message
    assert "\n" not in message and message.count(". ") == 0 and message.endswith(".")
    assert server.requests == []


def test_http_error_names_the_file_and_where_to_put_it(registry: dict, server: Server) -> None:
    del server.files["/rel/tiny.bin"]
    with pytest.raises(WeightsUnavailable, match="HTTP 404") as info:
        weights.resolve("tiny", weights_dir="/opt/w")
    assert "/opt/w/tiny.bin" in str(info.value)


def test_trust_on_first_use_records_then_detects_tampering(registry: dict) -> None:
    path = weights.download("tofu", progress=False)
    record = json.loads((weights.cache_dir() / "checksums.json").read_text())["tofu.bin"]
    assert record["sha256"] == PAYLOAD_SHA and record["size"] == len(PAYLOAD)
    assert weights.expected_sha256(registry["tofu"]) == (PAYLOAD_SHA, "recorded")
    assert weights.resolve("tofu") == path
    path.write_bytes(b"X" + PAYLOAD[1:])  # same size, different content
    with pytest.raises(WeightsCorrupted, match=PAYLOAD_SHA):
        weights.resolve("tofu")
    assert weights.verify("tofu").status == "corrupt"
    assert weights.download("tofu", force=True, progress=False).read_bytes() == PAYLOAD
    assert weights.verify("tofu").status == "ok"


def test_hand_placed_file_is_recorded_on_first_use(registry: dict, tmp_path: Path) -> None:
    (tmp_path / "tofu.bin").write_bytes(PAYLOAD)
    result = weights.verify("tofu", weights_dir=tmp_path)
    assert result.status == "recorded" and result.actual_sha256 == PAYLOAD_SHA
    assert weights.resolve("tofu", weights_dir=tmp_path) == tmp_path / "tofu.bin"


def test_weights_dir_is_searched_before_the_cache(
    registry: dict, server: Server, tmp_path: Path
) -> None:
    (tmp_path / "tiny.bin").write_bytes(PAYLOAD)
    assert weights.resolve("tiny", weights_dir=tmp_path) == tmp_path / "tiny.bin"
    (tmp_path / "tiny.bin").write_bytes(PAYLOAD[::-1])
    with pytest.raises(WeightsCorrupted):
        weights.resolve("tiny", weights_dir=tmp_path)
    assert server.requests == []


def test_resolve_returns_an_existing_path_as_is(registry: dict, tmp_path: Path) -> None:
    own = tmp_path / "my_prior.pth"
    own.write_bytes(b"anything")
    assert weights.resolve(own) == own
    assert weights.resolve(str(own)) == own
    with pytest.raises(WeightsUnavailable, match="neither an existing file"):
        weights.resolve(tmp_path / "nope.pth")


def test_packaged_file_resolves_in_place(
    registry: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = tmp_path / "estimator.safetensors"
    packaged.write_bytes(PAYLOAD)
    weights.register(_spec("est", str(packaged), PAYLOAD_SHA))
    monkeypatch.setenv("DYNFACE_OFFLINE", "1")
    assert weights.resolve("est") == packaged
    assert weights.download("est") == packaged


def test_size_mismatch_shows_as_corrupt_without_hashing(registry: dict) -> None:
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    (cache / "tiny.bin").write_bytes(PAYLOAD[:10])
    assert weights.local_status(registry["tiny"])[0] == "corrupt"
    assert weights.local_status(registry["tofu"])[0] == "missing"


def test_register_rejects_conflicts_and_bad_sha(registry: dict) -> None:
    with pytest.raises(ValueError, match="already registered"):
        weights.register(_spec("tiny", "http://elsewhere/tiny.bin", None))
    with pytest.raises(ValueError, match="hex"):
        weights.register(_spec("x", "http://h/x.bin", "ABC"))


def test_builtin_registry_names_difface_release_files() -> None:
    prior = weights.get_spec("iddpm_ffhq512_ema500000.pth")
    restorer = weights.get_spec("swinir_restoration512_L1")
    release = "https://github.com/zsyOAOA/DifFace/releases/download/V1.0/"
    assert prior.url == release + prior.filename and prior.architecture == "unet-iddpm-512"
    assert restorer.url == release + restorer.filename and restorer.architecture == "swinir-512"


def test_cache_dir_follows_dynface_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNFACE_HOME", str(tmp_path))
    assert weights.cache_dir() == tmp_path / "weights"
    monkeypatch.delenv("DYNFACE_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "xdg" / "dynface" / "weights"


def test_cli_list_download_path_verify(registry: dict, server: Server) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["weights", "list"])
    assert listed.exit_code == 0, listed.output
    assert "tiny" in listed.output and "missing" in listed.output

    missing = runner.invoke(app, ["weights", "path", "tiny"])
    assert missing.exit_code == 1 and "not available" in missing.output

    fetched = runner.invoke(app, ["weights", "download", "tiny", "tofu"])
    assert fetched.exit_code == 0, fetched.output
    cached = weights.cache_dir() / "tiny.bin"
    assert cached.read_bytes() == PAYLOAD

    shown = runner.invoke(app, ["weights", "path", "tiny"])
    assert shown.exit_code == 0 and shown.stdout.strip() == str(cached)

    checked = runner.invoke(app, ["weights", "verify", "tiny", "tofu"])
    assert checked.exit_code == 0, checked.output
    assert checked.output.count("ok") == 2

    listed = runner.invoke(app, ["weights", "list"])
    assert "present" in listed.output and "recorded" in listed.output

    cached.write_bytes(b"X" + PAYLOAD[1:])
    tampered = runner.invoke(app, ["weights", "verify"])
    assert tampered.exit_code == 1 and "corrupt" in tampered.output

    failed = runner.invoke(app, ["weights", "download", "bad"])
    assert failed.exit_code == 1 and WRONG_SHA in failed.output

    unknown = runner.invoke(app, ["weights", "verify", "nonesuch"])
    assert unknown.exit_code == 2 and "known names" in unknown.output
