"""Pretrained weight files: one registry, a local cache, verified and resumable downloads.

Every file dynface loads is named in `REGISTRY` with where to get it, its sha256 when known, its
expected size (or size range) and the network architecture it fits. Downloads go to
`<home>/weights/`, where `<home>` is `$DYNFACE_HOME` or the platform's user cache folder
(`~/.cache/dynface` on Linux). Upstream publishes no sha256 for DifFace's files, so the first time
a cached file loads into its network with strict keys, its sha256 is recorded in
`<home>/weights/checksums.json` and every later load checks it (trust on first use). Files in a
`weights_dir` are checked against that record but never added to it. A download is refused when
it is a web page or text, when its size is outside the entry's range (the download stops there),
or when its bytes are no weight-file format. `$DYNFACE_WEIGHTS_URL` replaces the folder of every
download URL (a mirror, a local folder or a `file://` URL); `$DYNFACE_OFFLINE=1` forbids any
network access.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dynface.errors import ResourceError

ENV_HOME = "DYNFACE_HOME"
ENV_MIRROR = "DYNFACE_WEIGHTS_URL"
ENV_OFFLINE = "DYNFACE_OFFLINE"
CHECKSUMS_FILE = "checksums.json"
_CHUNK = 1 << 20
_TIMEOUT_S = 30.0
_MB = 1_000_000
_DIFFACE_RELEASE = "https://github.com/zsyOAOA/DifFace/releases/download/V1.0"
_REALESRGAN_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"
WEB_PAGE = "the server sent a web page, not weights"


class WeightsUnavailable(ResourceError):
    """A weight file that is neither on disk nor downloadable; the message says where to put it."""


class WeightsCorrupted(ResourceError):
    """A weight file with the wrong sha256, size or content; the message says how to replace it."""


@dataclass(frozen=True)
class WeightSpec:
    """One weight file: where it comes from, how to check it and which network it fits.

    `size` is the exact size in bytes when known; otherwise `size_range` (min, max) bounds it,
    e.g. from the network's parameter count. A download stops at the upper bound.
    """

    name: str
    filename: str
    url: str
    sha256: str | None
    size: int | None
    architecture: str
    description: str
    size_range: tuple[int, int] | None = None

    @property
    def is_local(self) -> bool:
        """True when `url` is a file shipped on disk (e.g. inside the package), not a download."""
        return _is_local(self.url)

    @property
    def size_bounds(self) -> tuple[int, int] | None:
        """(min, max) bytes the file may have: `size` exactly, else `size_range`, else None."""
        return (self.size, self.size) if self.size is not None else self.size_range


SHA256 = Literal["registry", "recorded"]
Status = Literal["ok", "unrecorded", "missing", "corrupt"]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking one weight file against its expected sha256, size and content.

    `unrecorded`: present, plausible, but not yet trusted: its sha256 is recorded the first time
    it loads into its network (only for cache files whose sha256 upstream does not publish).
    """

    name: str
    path: Path | None
    status: Status
    expected_sha256: str | None
    actual_sha256: str | None
    expected_from: SHA256 | None
    message: str

    @property
    def ok(self) -> bool:
        """True when the file is present and matches, or is plausible and awaits its first load."""
        return self.status in ("ok", "unrecorded")


REGISTRY: dict[str, WeightSpec] = {}


def register(spec: WeightSpec, replace: bool = False) -> WeightSpec:
    """Add a weight file to the registry (later modules add theirs, e.g. a packaged estimator).

    A downloadable entry must bound its size (`size` or `size_range`): downloads stop there.
    """
    if spec.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", spec.sha256):
        raise ValueError(f"{spec.name}: sha256 must be 64 lower-case hex digits: {spec.sha256!r}")
    bounds = spec.size_bounds
    if bounds is None and not spec.is_local:
        raise ValueError(f"{spec.name}: a downloadable weight file needs size or size_range")
    if bounds is not None and not 0 < bounds[0] <= bounds[1]:
        raise ValueError(f"{spec.name}: size range must be 0 < min <= max, got {bounds}")
    old = REGISTRY.get(spec.name)
    if old is not None and old != spec and not replace:
        raise ValueError(f"a different weight file is already registered as {spec.name!r}")
    REGISTRY[spec.name] = spec
    return spec


def published(
    folder_url: str,
    filename: str,
    architecture: str,
    description: str,
    *,
    name: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    size_range: tuple[int, int] | None = None,
) -> WeightSpec:
    """The entry of `filename` as published under `folder_url`, named after the file's stem
    unless `name` is given; `sha256` and `size` when the publisher gives them, else a range."""
    return WeightSpec(
        name=name or Path(filename).stem,
        filename=filename,
        url=f"{folder_url}/{filename}",
        sha256=sha256,
        size=size,
        architecture=architecture,
        description=description,
        size_range=size_range,
    )


# Upstream publishes neither sha256 nor size: the ranges span the networks' parameters stored as
# float16 up to float32 plus buffers and wrappers (prior: 160 M parameters, 639 MB as float32;
# restorer: 15.8 M parameters, 90 MB as float32 with its attention buffers).
register(
    published(
        _DIFFACE_RELEASE,
        "iddpm_ffhq512_ema500000.pth",
        "unet-iddpm-512",
        "DifFace diffusion prior: improved-DDPM UNet on FFHQ 512 (EMA weights).",
        size_range=(300 * _MB, 720 * _MB),
    )
)
register(
    published(
        _DIFFACE_RELEASE,
        "swinir_restoration512_L1.pth",
        "swinir-512",
        "DifFace restorer: SwinIR trained with L1 loss on synthetic degraded FFHQ 512.",
        size_range=(30 * _MB, 110 * _MB),
    )
)
# Real-ESRGAN (BSD-3-Clause) background upsamplers. Upstream publishes no sha256; these values
# and sizes agree across several independent public manifests of the same release assets.
register(
    published(
        f"{_REALESRGAN_RELEASES}/v0.2.1",
        "RealESRGAN_x2plus.pth",
        "rrdbnet-x2",
        "Real-ESRGAN x2plus (BSD-3-Clause): background upsampler for --upscale <= 2.",
        sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        size=67_061_725,
    )
)
register(
    published(
        f"{_REALESRGAN_RELEASES}/v0.1.0",
        "RealESRGAN_x4plus.pth",
        "rrdbnet-x4",
        "Real-ESRGAN x4plus (BSD-3-Clause): background upsampler for --upscale > 2.",
        sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        size=67_040_989,
    )
)


def home_dir() -> Path:
    """dynface's cache root: `$DYNFACE_HOME`, else the platform's user cache folder + `dynface`."""
    env = os.environ.get(ENV_HOME, "").strip()
    if env:
        return Path(env).expanduser()
    if os.environ.get("XDG_CACHE_HOME", "").strip():
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "dynface"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "dynface"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "dynface"
    return Path.home() / ".cache" / "dynface"


def cache_dir() -> Path:
    """Folder that holds downloaded weight files and `checksums.json`: `<home>/weights`."""
    return home_dir() / "weights"


def offline() -> bool:
    """True when `$DYNFACE_OFFLINE` asks dynface never to touch the network."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


def find_spec(name: str) -> WeightSpec | None:
    """Registry entry by name or file name, or None."""
    if name in REGISTRY:
        return REGISTRY[name]
    return next((spec for spec in REGISTRY.values() if spec.filename == name), None)


def get_spec(name: str) -> WeightSpec:
    """Registry entry by name or file name; unknown names raise `WeightsUnavailable`."""
    spec = find_spec(name)
    if spec is not None:
        return spec
    known = ", ".join(sorted(REGISTRY)) or "none"
    raise WeightsUnavailable(
        f"{name!r} is neither an existing file nor a known weight name (known names: {known}); "
        "run `dynface weights list` (Python: `dynface.weights.REGISTRY`) to see them."
    )


def source_url(spec: WeightSpec) -> str:
    """Where `spec` is fetched from: its URL, or the same file name under `$DYNFACE_WEIGHTS_URL`."""
    mirror = os.environ.get(ENV_MIRROR, "").strip()
    if mirror and not spec.is_local:
        if _is_local(mirror):
            return str(Path(_local_path(mirror)) / spec.filename)
        return mirror.rstrip("/") + "/" + urllib.parse.quote(spec.filename)
    return spec.url


def locate(spec: WeightSpec, weights_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The file on disk for `spec` (in `weights_dir`, the cache, or packaged), or None."""
    candidates = [Path(weights_dir).expanduser() / spec.filename] if weights_dir else []
    candidates.append(cache_dir() / spec.filename)
    if spec.is_local:
        candidates.append(Path(_local_path(spec.url)))
    return next((path for path in candidates if path.is_file()), None)


def expected_sha256(spec: WeightSpec) -> tuple[str | None, SHA256 | None]:
    """The sha256 `spec` must have and its origin (the registry, or recorded on first use)."""
    if spec.sha256:
        return spec.sha256, "registry"
    record = _read_checksums().get(spec.filename)
    if record:
        return record["sha256"], "recorded"
    return None, None


def local_status(
    spec: WeightSpec, weights_dir: str | os.PathLike[str] | None = None
) -> tuple[Literal["present", "missing", "partial", "corrupt"], Path | None]:
    """Status without hashing: present, missing, partial (a `.part` left) or corrupt (size)."""
    path = locate(spec, weights_dir)
    if path is None:
        part = _part_path(cache_dir() / spec.filename)
        return ("partial", part) if part.is_file() else ("missing", None)
    record = _read_checksums().get(spec.filename) or {}
    size = path.stat().st_size
    if record.get("size") is not None and size != record["size"]:
        return "corrupt", path
    if _size_problem(spec, size) or describe_kind(file_kind(path)):
        return "corrupt", path
    return "present", path


def verify(name: str, weights_dir: str | os.PathLike[str] | None = None) -> VerifyResult:
    """Check the file for `name`: content and size first, then sha256 against the expected one.

    Never records anything: a sha256 is recorded only once the file loads (`record_loaded`).
    """
    spec = get_spec(name)
    path = locate(spec, weights_dir)
    expected, origin = expected_sha256(spec)
    if path is None:
        message = _unavailable_message(spec, "not downloaded yet", weights_dir)
        return VerifyResult(spec.name, None, "missing", expected, None, origin, message)
    problem = describe_kind(file_kind(path)) or _size_problem(spec, path.stat().st_size)
    if problem:
        known = f" (expected sha256 {expected})" if expected else ""
        hint = replace_hint(spec, path)
        message = f"{path} is not usable as {spec.name}: {problem}{known}; {hint}"
        return VerifyResult(spec.name, path, "corrupt", expected, None, origin, message)
    actual = sha256_file(path)
    if expected is None:
        message = (
            f"{path}: sha256 {actual}, not yet trusted; it is recorded in {_checksums_path()} "
            "the first time the file loads into its network"
        )
        if not _in_cache(path):
            message = f"{path}: sha256 {actual}; files outside the cache are never recorded"
        return VerifyResult(spec.name, path, "unrecorded", None, actual, None, message)
    if actual != expected:
        message = _corrupt_message(spec, path, expected, actual, origin)
        return VerifyResult(spec.name, path, "corrupt", expected, actual, origin, message)
    message = f"{path}: sha256 matches the {origin} value"
    return VerifyResult(spec.name, path, "ok", expected, actual, origin, message)


def resolve(
    name_or_path: str | os.PathLike[str],
    weights_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Path:
    """Path of a weight file: a registry name found or downloaded, else an existing path as is.

    A registry name (or registry file name) is looked up in `weights_dir`, then the cache (or its
    packaged location), never in the working folder, and downloaded into the cache when allowed;
    the file is checked (content, size, sha256) before it is returned.
    """
    spec = find_spec(str(name_or_path))
    if spec is None:
        given = Path(name_or_path).expanduser()
        if given.is_file():
            return given
        spec = get_spec(str(name_or_path))
    if locate(spec, weights_dir) is not None:
        return _checked(spec, weights_dir)
    if not download:
        raise WeightsUnavailable(_unavailable_message(spec, "not downloaded yet", weights_dir))
    return _download(spec, force=False, weights_dir=weights_dir)


def download(name: str, force: bool = False, progress: bool = True) -> Path:
    """Fetch `name` into the cache (resuming a partial download) and return its checked path."""
    return _download(get_spec(name), force=force, progress=progress)


def record_loaded(name: str, path: str | os.PathLike[str]) -> bool:
    """Trust on first use: record the sha256 of `path` once it has loaded into its network.

    Only for registry files without a published sha256 that sit in the cache (a `weights_dir`
    file or a file of your own is never recorded); an existing record is kept. Returns True
    when a record was written.
    """
    spec = find_spec(str(name))
    path = Path(path)
    if spec is None or spec.sha256 is not None or not _in_cache(path):
        return False
    with _exclusive(_checksums_path()):
        data = _read_checksums()
        if spec.filename in data:
            return False
        digest = sha256_file(path)
        data[spec.filename] = {"sha256": digest, "size": path.stat().st_size}
        try:
            _write_checksums(data)
        except OSError as err:  # a read-only cache must not stop a run; say what is lost
            warnings.warn(
                f"could not record the sha256 of {path} in {_checksums_path()} ({err}); later "
                "changes to this file will not be detected",
                stacklevel=2,
            )
            return False
    return True


def replace_hint(spec: WeightSpec, path: Path) -> str:
    """How to replace a bad copy of `spec` at `path`, for command-line and Python users alike."""
    return (
        f"delete {path} and run `dynface weights download {spec.name} --force` (Python: "
        f"`dynface.weights.download({spec.name!r}, force=True)`), or download it from {spec.url}"
    )


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


FileKind = Literal["pytorch-zip", "pickle", "safetensors", "html", "text", "empty", "unknown"]


def file_kind(path: str | os.PathLike[str]) -> FileKind:
    """What a file holds, from its first bytes: a weight-file format, a web page, text, or else."""
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "pytorch-zip"
    if len(head) > 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 32:
        return "safetensors"  # an 8-byte header length, then the JSON header
    if head[0] == 0x80:  # pickle protocol >= 2 (PyTorch's legacy format)
        return "pickle"
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in lowered:
        return "html"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:  # a character cut at the end of the 1024 bytes is fine
        if len(head) < 1024 or err.start < len(head) - 3:
            return "unknown"
        text = head[: err.start].decode("utf-8")
    return "text" if all(ch.isprintable() or ch in "\t\r\n" for ch in text) else "unknown"


def describe_kind(kind: FileKind) -> str | None:
    """A plain sentence for a file that is no weight file, or None for a weight-file format."""
    return {
        "html": "it is a web page (HTML), not weights",
        "text": "it is a text file, not weights",
        "empty": "it is empty",
        "unknown": "its bytes are neither a PyTorch (.pth) nor a safetensors file",
    }.get(kind)


def _size_problem(spec: WeightSpec, size: int) -> str | None:
    """Why `size` cannot be `spec`'s file, or None when it fits the expected size (range)."""
    bounds = spec.size_bounds
    if bounds is None or bounds[0] <= size <= bounds[1]:
        return None
    expected = f"{bounds[0]} bytes" if bounds[0] == bounds[1] else f"{bounds[0]}-{bounds[1]} bytes"
    return f"its size is {size} bytes, expected {expected}"


def _in_cache(path: Path) -> bool:
    return path.resolve().parent == cache_dir().resolve()


def _checked(spec: WeightSpec, weights_dir: str | os.PathLike[str] | None) -> Path:
    """The located file for `spec` after its checks; a bad file raises `WeightsCorrupted`."""
    result = verify(spec.name, weights_dir)
    if result.status == "corrupt":
        raise WeightsCorrupted(result.message)
    if result.path is None:
        raise WeightsUnavailable(result.message)
    return result.path


def _download(
    spec: WeightSpec,
    force: bool,
    weights_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Path:
    """Fetch `spec` into the cache under a lock (a packaged file is only checked in place)."""
    if spec.is_local:
        return _packaged(spec)
    dest = cache_dir() / spec.filename
    url = source_url(spec)
    if offline() and not _is_local(url):
        raise WeightsUnavailable(
            _unavailable_message(spec, f"offline mode, {ENV_OFFLINE}=1", weights_dir)
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
        if dest.is_file() and not force:
            return _checked(spec, None)
        if force:  # start afresh; the old file stays until the new one is complete and checked
            _part_path(dest).unlink(missing_ok=True)
        fresh = force and spec.sha256 is None  # the new copy is trusted afresh once it loads
        expected, origin = (None, None) if fresh else expected_sha256(spec)
        try:
            _fetch(url, dest, spec, expected, origin, progress)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            reason = f"download from {url} failed: {_describe(err)}"
            raise WeightsUnavailable(_unavailable_message(spec, reason, weights_dir)) from err
        if fresh:
            _forget(spec)
    return dest


def _packaged(spec: WeightSpec) -> Path:
    """A file installed with dynface, checked in place."""
    path = Path(_local_path(spec.url))
    if not path.is_file():
        raise WeightsUnavailable(
            f"Weight file {spec.filename} should be installed with dynface at {path} but is "
            "missing; reinstall dynface."
        )
    return _checked(spec, None)


def _fetch(
    url: str,
    dest: Path,
    spec: WeightSpec,
    expected: str | None,
    origin: SHA256 | None,
    progress: bool,
) -> None:
    """Stream `url` into `dest.part` (resuming it), check it, rename it to `dest`."""
    part = _part_path(dest)
    have = part.stat().st_size if part.is_file() else 0
    if _is_local(url):
        url = Path(_local_path(url)).resolve().as_uri()
    request = urllib.request.Request(url, headers={"User-Agent": "dynface"})
    if have and url.startswith(("http://", "https://")):
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not have:
            raise
        part.unlink()
        return _fetch(url, dest, spec, expected, origin, progress)
    with response:
        digest = _stream(response, part, spec, url, have, progress)
    _check_download(part, spec, url, digest, expected, origin)
    os.replace(part, dest)
    return None


def _stream(
    response: http.client.HTTPResponse,
    part: Path,
    spec: WeightSpec,
    url: str,
    have: int,
    progress: bool,
) -> str:
    """Write the response into `part` (appending when resumed), never past the expected size."""
    resumed = have > 0 and response.status == 206 and _range_start(response) == have
    total = _total_size(response, resumed, have)
    limit = spec.size_bounds[1] if spec.size_bounds else None
    if limit is not None and total is not None and total > limit:
        part.unlink(missing_ok=True)
        raise _too_big(spec, url, f"the server offers {total} bytes", limit)
    digest = _hash_prefix(part) if resumed else hashlib.sha256()
    done = have if resumed else 0
    bar = _bar(spec.filename, total, done, progress)
    with open(part, "ab" if resumed else "wb") as fh, bar as step:
        while chunk := response.read(_CHUNK):
            done += len(chunk)
            if limit is not None and done > limit:
                fh.close()
                part.unlink()
                raise _too_big(spec, url, f"the server sent more than {limit} bytes", limit)
            fh.write(chunk)
            digest.update(chunk)
            step(len(chunk))
    if total is not None and done < total:
        raise http.client.IncompleteRead(b"", total - done)
    return digest.hexdigest()


def _check_download(
    part: Path, spec: WeightSpec, url: str, digest: str, expected: str | None, origin: SHA256 | None
) -> None:
    """Refuse a finished download that is a web page, text, the wrong size or the wrong sha256."""
    kind = file_kind(part)
    problems = []
    if kind in ("html", "text"):
        problems.append(WEB_PAGE if kind == "html" else "the server sent text, not weights")
    elif describe_kind(kind):
        problems.append(describe_kind(kind))
    size_problem = _size_problem(spec, part.stat().st_size)
    if size_problem:
        problems.append(size_problem)
    if expected is not None and digest != expected:
        problems.append(f"sha256 {digest}, expected {expected} ({origin})")
    if problems:
        part.unlink()
        raise WeightsCorrupted(
            f"Downloaded {spec.filename} from {url} was refused and deleted: "
            f"{'; '.join(problems)}; try again later or download it by hand from {spec.url}."
        )


def _too_big(spec: WeightSpec, url: str, what: str, limit: int) -> WeightsCorrupted:
    return WeightsCorrupted(
        f"Download of {spec.filename} from {url} was stopped and deleted: {what}, but the file "
        f"has at most {limit} bytes; check the URL or mirror, or download it by hand from "
        f"{spec.url}."
    )


def _hash_prefix(part: Path) -> hashlib._Hash:
    """A sha256 object fed with the bytes already in `part` (to resume a download)."""
    digest = hashlib.sha256()
    with open(part, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest


@contextlib.contextmanager
def _bar(
    label: str, total: int | None, done: int, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields a function that advances it by n bytes."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total, completed=done)
        yield lambda n: bar.advance(task, n)


@contextlib.contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """Hold an OS lock on `<target>.lock` (two processes never write `target` at once).

    The lock file is removed on release. A waiter that wakes on a lock file already removed
    (its inode no longer at the path) starts over, so removal never lets two holders in.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent downloads are the user's call
        yield
        return
    lock = target.with_name(target.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(lock, "a")  # noqa: SIM115 (closed below, after the lock is released)
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            same = os.fstat(fh.fileno()).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _range_start(response: http.client.HTTPResponse) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _total_size(response: http.client.HTTPResponse, resumed: bool, have: int) -> int | None:
    """Full size of the remote file from Content-Range or Content-Length, when the server says."""
    if resumed:
        match = re.search(r"/(\d+)$", response.headers.get("Content-Range", ""))
        if match:
            return int(match.group(1))
    length = response.headers.get("Content-Length")
    if length is None or not length.isdigit():
        return None
    return int(length) + (have if resumed else 0)


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    if isinstance(err, http.client.IncompleteRead):
        return "the connection closed early (run again to resume)"
    return str(err) or type(err).__name__


def _unavailable_message(
    spec: WeightSpec, reason: str, weights_dir: str | os.PathLike[str] | None
) -> str:
    """One sentence: why the file is missing and what to do, in the shell and in Python."""
    target = Path(weights_dir).expanduser() if weights_dir else cache_dir()
    # Suggest the download command only when no download was tried (it cannot help otherwise).
    tried = ENV_OFFLINE in reason or reason.startswith("download from")
    command = (
        ""
        if tried or not spec.url
        else f"run `dynface weights download {spec.name}` (Python: "
        f"`dynface.weights.download({spec.name!r})`), or "
    )
    return (
        f"Weight file {spec.filename} is not available ({reason}): {command}download it from "
        f"{spec.url} and put it at {target / spec.filename} (or in a folder given as "
        f"--weights-dir on the command line or weights_dir= in Python, or under "
        f"$DYNFACE_HOME/weights)."
    )


def _corrupt_message(
    spec: WeightSpec, path: Path, expected: str, actual: str, origin: SHA256 | None
) -> str:
    where = "the registry" if origin == "registry" else f"{_checksums_path()} (first use)"
    return (
        f"{path} does not match {spec.name}: sha256 {actual}, expected {expected} from {where}; "
        f"{replace_hint(spec, path)}."
    )


def _is_local(url: str) -> bool:
    scheme = urllib.parse.urlsplit(url).scheme
    return scheme in ("", "file") or len(scheme) == 1  # len 1: a Windows drive letter


def _local_path(url: str) -> str:
    if urllib.parse.urlsplit(url).scheme == "file":
        return urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    return os.path.expanduser(url)


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _checksums_path() -> Path:
    return cache_dir() / CHECKSUMS_FILE


def _read_checksums() -> dict[str, dict]:
    path = _checksums_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise WeightsCorrupted(
            f"{path} cannot be read ({err}); delete it to record the checksums afresh."
        ) from err
    if not isinstance(data, dict):
        raise WeightsCorrupted(f"{path} is not a JSON object; delete it to record them afresh.")
    return data


def _write_checksums(data: dict[str, dict]) -> None:
    path = _checksums_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=".checksums.", delete=False
    ) as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(fh.name, path)


def _forget(spec: WeightSpec) -> None:
    """Drop the first-use record of `spec` (a forced download is trusted afresh once it loads)."""
    if spec.sha256 is not None:
        return
    with _exclusive(_checksums_path()):
        data = _read_checksums()
        if data.pop(spec.filename, None) is not None:
            _write_checksums(data)
