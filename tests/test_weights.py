"""Weight registry: downloads from a local HTTP server, resume, sha256 checks, offline, CLI.

The payload is a real safetensors file that loads into `nn.Linear(40, 64)`: trust on first use
is earned by loading a file into its network with strict keys.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import pickle
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save as safetensors_bytes
from torch import nn
from typer.testing import CliRunner

from dynface import weights
from dynface.checkpoints import CheckpointError, load_weights
from dynface.cli import app
from dynface.errors import ResourceError
from dynface.weights import WeightsCorrupted, WeightSpec, WeightsUnavailable

from .conftest import REPO

PAYLOAD = safetensors_bytes(
    {"weight": torch.arange(64 * 40, dtype=torch.float32).reshape(64, 40), "bias": torch.ones(64)}
)
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
    endless: set[str] = field(default_factory=set)  # paths streamed forever, no Content-Length


def _handler(state: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            range_header = self.headers.get("Range")
            state.requests.append((self.path, range_header))
            if self.path in state.endless:
                self._stream_forever()
                return
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

        def _stream_forever(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.close_connection = True
            chunk = PAYLOAD[:4096]
            try:
                for _ in range(100_000):  # 400 MB at most, should the client never stop
                    self.wfile.write(chunk)
            except OSError:  # the client hung up: what a capped download does
                pass

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


RANGE = (len(PAYLOAD) // 2, len(PAYLOAD) * 2)


def _spec(name: str, url: str, sha256: str | None, size: int | None = None) -> WeightSpec:
    """A test entry: exact `size` when given, else a size range around the payload's."""
    return WeightSpec(
        name, f"{name}.bin", url, sha256, size, "test-arch", f"test file {name}", RANGE
    )


def _net() -> nn.Module:
    """The network the payload fits (strict keys: weight, bias)."""
    return nn.Linear(40, 64)


def _records() -> dict:
    path = weights.cache_dir() / "checksums.json"
    return json.loads(path.read_text()) if path.is_file() else {}


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
    assert _records() == {}  # downloaded is not trusted: nothing loaded it yet
    assert weights.verify("tofu").status == "unrecorded"
    load_weights(_net(), "tofu")
    record = _records()["tofu.bin"]
    assert record["sha256"] == PAYLOAD_SHA and record["size"] == len(PAYLOAD)
    assert weights.expected_sha256(registry["tofu"]) == (PAYLOAD_SHA, "recorded")
    assert weights.resolve("tofu") == path
    path.write_bytes(PAYLOAD[:-1] + b"X")  # same size, different content
    with pytest.raises(WeightsCorrupted, match=PAYLOAD_SHA):
        weights.resolve("tofu")
    assert weights.verify("tofu").status == "corrupt"
    assert weights.download("tofu", force=True, progress=False).read_bytes() == PAYLOAD
    assert _records() == {}  # the forced copy is trusted afresh once it loads
    load_weights(_net(), "tofu")
    assert weights.verify("tofu").status == "ok"


def test_file_that_does_not_load_is_never_recorded(registry: dict) -> None:
    """A file refused by its network (wrong keys) must not become the trusted sha256."""
    weights.download("tofu", progress=False)
    with pytest.raises(CheckpointError, match="does not fit") as info:
        load_weights(nn.Linear(3, 3), "tofu")
    assert "dynface weights download tofu --force" in str(info.value)
    assert _records() == {}


def test_weights_dir_files_are_never_recorded(
    registry: dict, server: Server, tmp_path: Path
) -> None:
    """A --weights-dir copy (refused or not) stays out of the record; the genuine one is kept."""
    (tmp_path / "tofu.bin").write_bytes(PAYLOAD)
    load_weights(_net(), "tofu", weights_dir=tmp_path)
    assert weights.verify("tofu", weights_dir=tmp_path).status == "unrecorded"
    assert _records() == {}
    wrong = safetensors_bytes({"weight": torch.zeros(64, 40), "other": torch.ones(64)})
    (tmp_path / "tofu.bin").write_bytes(wrong)
    with pytest.raises(CheckpointError):
        load_weights(_net(), "tofu", weights_dir=tmp_path)
    assert _records() == {}
    path = weights.download("tofu", progress=False)
    load_weights(_net(), "tofu")
    assert _records()["tofu.bin"]["sha256"] == PAYLOAD_SHA
    assert weights.resolve("tofu") == path and path.read_bytes() == PAYLOAD


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


def test_published_entry_is_named_after_its_file_under_the_release_folder() -> None:
    spec = weights.published("https://h/rel/v1", "net_x2.pth", "arch", "a net", size=5)
    assert spec == WeightSpec("net_x2", "net_x2.pth", "https://h/rel/v1/net_x2.pth", None, 5,
                              "arch", "a net")  # fmt: skip
    ranged = weights.published("https://h", "n.pth", "a", "d", name="other", size_range=(1, 9))
    assert (ranged.name, ranged.size, ranged.size_bounds) == ("other", None, (1, 9))


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
    assert "ok tiny" in checked.output and "unrecorded tofu" in checked.output

    load_weights(_net(), "tofu")
    listed = runner.invoke(app, ["weights", "list"])
    assert "present" in listed.output and "recorded" in listed.output

    cached.write_bytes(b"X" + PAYLOAD[1:])
    tampered = runner.invoke(app, ["weights", "verify"])
    assert tampered.exit_code == 1 and "corrupt" in tampered.output

    failed = runner.invoke(app, ["weights", "download", "bad"])
    assert failed.exit_code == 1 and WRONG_SHA in failed.output

    unknown = runner.invoke(app, ["weights", "verify", "nonesuch"])
    assert unknown.exit_code == 2 and "known names" in unknown.output


HTML = b"<!DOCTYPE html>\n<html><head><title>429</title></head><body>rate limited</body></html>"


def _no_leftovers() -> list[str]:
    """Files in the cache besides checksums.json: a refused download must leave none."""
    cache = weights.cache_dir()
    return (
        sorted(p.name for p in cache.iterdir() if p.name != "checksums.json")
        if cache.exists()
        else []
    )


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (HTML * 100, "the server sent a web page, not weights"),
        (b"rate limit exceeded, retry later\n" * 300, "the server sent text, not weights"),
        (bytes(range(1, 256)) * 40, "neither a PyTorch (.pth) nor a safetensors file"),
        (HTML, "the server sent a web page, not weights"),
    ],
    ids=["html", "text", "random-bytes", "small-html"],
)
def test_download_that_is_no_weight_file_is_refused(
    registry: dict, server: Server, body: bytes, why: str
) -> None:
    server.files["/rel/tofu.bin"] = body
    with pytest.raises(WeightsCorrupted) as info:
        weights.download("tofu", progress=False)
    assert why in str(info.value)
    assert "weights_only" not in str(info.value)
    assert _no_leftovers() == [] and _records() == {}


def test_download_outside_the_size_range_is_refused(registry: dict, server: Server) -> None:
    """A tiny pickle of tensors is a valid weight format, but far too small for the entry."""
    small = safetensors_bytes({"weight": torch.zeros(2)})
    server.files["/rel/tofu.bin"] = small
    with pytest.raises(WeightsCorrupted, match=f"its size is {len(small)} bytes, expected"):
        weights.download("tofu", progress=False)
    assert _no_leftovers() == []


def test_hand_placed_web_page_is_named_as_such(registry: dict) -> None:
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    (cache / "tofu.bin").write_bytes(HTML * 100)
    result = weights.verify("tofu")
    assert result.status == "corrupt" and "web page (HTML)" in result.message
    assert "dynface weights download tofu --force" in result.message
    with pytest.raises(WeightsCorrupted, match="web page"):
        weights.resolve("tofu")
    assert _records() == {}


def test_endless_download_without_length_stops_at_the_expected_size(
    registry: dict, server: Server
) -> None:
    server.endless.add("/rel/tofu.bin")
    with pytest.raises(WeightsCorrupted, match=f"more than {RANGE[1]} bytes"):
        weights.download("tofu", progress=False)
    assert _no_leftovers() == []


def test_announced_oversized_download_is_refused_before_reading(
    registry: dict, server: Server
) -> None:
    server.files["/rel/tofu.bin"] = PAYLOAD * 3
    with pytest.raises(WeightsCorrupted, match=f"offers {len(PAYLOAD) * 3} bytes"):
        weights.download("tofu", progress=False)
    assert _no_leftovers() == []


def test_registry_name_never_resolves_to_the_working_folder(
    registry: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for planted in ("tiny", "tiny.bin"):
        (tmp_path / planted).write_bytes(b"planted by someone else")
    path = weights.resolve("tiny")
    assert path == weights.cache_dir() / "tiny.bin" and path.read_bytes() == PAYLOAD
    assert weights.resolve("tiny.bin") == path


def test_unavailable_message_speaks_to_python_and_cli_users(
    registry: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNFACE_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable) as info:
        weights.resolve("tiny", download=False)
    message = str(info.value)
    assert "weights_dir=" in message and "--weights-dir" in message
    assert "dynface.weights.download('tiny')" in message


def test_failed_download_leaves_no_lock_files(registry: dict, server: Server) -> None:
    del server.files["/rel/tiny.bin"]
    with pytest.raises(WeightsUnavailable, match="HTTP 404"):
        weights.download("tiny", progress=False)
    server.files["/rel/tiny.bin"] = PAYLOAD
    weights.download("tiny", progress=False)
    load_weights(_net(), "tofu")
    assert [p.name for p in weights.cache_dir().glob("*.lock")] == []


def test_concurrent_records_are_all_kept(
    registry: dict, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two first-use records at once: each reads, then writes, the record file under its lock."""
    names = [f"t{i}" for i in range(4)]
    for name in names:
        server.files[f"/rel/{name}.bin"] = PAYLOAD
        weights.register(_spec(name, f"{server.base}/rel/{name}.bin", None))
        weights.download(name, progress=False)
    read = weights._read_checksums

    def slow_read() -> dict:
        data = read()
        time.sleep(0.1)  # widen the read-modify-write window
        return data

    monkeypatch.setattr(weights, "_read_checksums", slow_read)
    threads = [threading.Thread(target=load_weights, args=(_net(), n)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(_records()) == sorted(f"{n}.bin" for n in names)


def test_pyproject_requires_a_torch_without_known_load_flaws() -> None:
    """CVE-2025-32434 (fixed in 2.6) and CVE-2026-24747 (fixed in 2.10): weights_only loading."""
    from packaging.requirements import Requirement

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    line = re.search(r'"(torch[<>=!~ ].*?)"', text).group(1)
    allowed = Requirement(line).specifier
    assert "2.9.1" not in allowed and "2.5.1" not in allowed and "2.10.0" in allowed
    assert torch.__version__.split("+")[0] in allowed


def _dynface(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m dynface ARGS` as a user runs it, with this checkout's sources."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **env}
    full_env.pop("DYNFACE_OFFLINE", None)
    command = [sys.executable, "-m", "dynface", *args]
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=300)


def test_cli_download_of_a_web_page_fails_and_verify_reports_missing(server: Server) -> None:
    """A mirror answering with a rate-limit page: exit 1, said plainly, nothing kept or trusted."""
    name = "swinir_restoration512_L1"
    server.files[f"/m/{name}.pth"] = HTML * 100
    done = _dynface("weights", "download", name, DYNFACE_WEIGHTS_URL=f"{server.base}/m/")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the server sent a web page, not weights" in " ".join(done.stderr.split())
    assert "ok" not in done.stdout and _no_leftovers() == [] and _records() == {}
    checked = _dynface("weights", "verify")
    assert checked.returncode == 1 and f"missing {name}" in checked.stdout


BROKEN = {
    "html": (HTML, "web page (HTML)"),
    "random": (bytes(range(1, 256)) * 8, "neither a PyTorch (.pth) nor a safetensors file"),
    "code": (pickle.dumps({"w": Path("x")}, protocol=2), "holds Python objects besides tensors"),
    "truncated": (b"PK\x03\x04" + bytes(100), "damaged or truncated PyTorch file"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_weight_file_is_a_resource_error_saying_what_it_is(
    tmp_path: Path, case: str
) -> None:
    content, what = BROKEN[case]
    broken = tmp_path / "prior.pth"
    broken.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_weights(_net(), broken)
    message = str(info.value)
    assert isinstance(info.value, ResourceError) and not isinstance(info.value, ValueError)
    assert what in message and str(broken) in message and "replace it" in message
    assert "weights_only" not in message


def test_cli_restore_with_a_broken_weight_file_is_a_resource_failure(tmp_path: Path) -> None:
    """Exit 1 and a sentence saying what the file is, not a --config usage error or torch advice."""
    config = yaml.safe_load((REPO / "src/dynface/configs/tiny-random.yaml").read_text())
    broken = tmp_path / "prior.pth"
    config["prior"]["weights"] = str(broken)
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(config))
    broken.write_bytes(BROKEN["code"][0])
    face = str(REPO / "tests/data/astronaut_face.png")
    args = ["restore", face, "--aligned", "-o", str(tmp_path / "o"), "--device", "cpu"]
    done = _dynface(*args, "--config", str(tmp_path / "broken.yaml"))
    said = " ".join(done.stderr.split()) + " ".join(done.stdout.split())
    assert done.returncode == 1, said
    assert BROKEN["code"][1] in said and str(broken) in said and "replace it" in said
    assert "weights_only" not in said and "--config" not in said and "Traceback" not in said
    assert not (tmp_path / "o" / "final").exists()
