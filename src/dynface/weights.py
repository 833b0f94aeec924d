"""Pretrained weight files: one registry, a local cache, verified and resumable downloads.

Every file dynface loads is named in `REGISTRY` with where to get it, its sha256 when known and the
network architecture it fits. Downloads go to `<home>/weights/`, where `<home>` is `$DYNFACE_HOME`
or the platform's user cache folder (`~/.cache/dynface` on Linux). Upstream publishes no sha256
for DifFace's files, so the first download (or first use of a file put there by hand) records one
in `<home>/weights/checksums.json` and every later load checks it (trust on first use).
`$DYNFACE_WEIGHTS_URL` replaces the folder of every download URL (a mirror, a local folder or a
`file://` URL); `$DYNFACE_OFFLINE=1` forbids any network access.
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
_DIFFACE_RELEASE = "https://github.com/zsyOAOA/DifFace/releases/download/V1.0"
_REALESRGAN_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"


class WeightsUnavailable(ResourceError):
    """A weight file that is neither on disk nor downloadable; the message says where to put it."""


class WeightsCorrupted(ResourceError):
    """A weight file whose sha256 or size differs from the expected one."""


@dataclass(frozen=True)
class WeightSpec:
    """One weight file: where it comes from, how to check it and which network it fits."""

    name: str
    filename: str
    url: str
    sha256: str | None
    size: int | None
    architecture: str
    description: str

    @property
    def is_local(self) -> bool:
        """True when `url` is a file shipped on disk (e.g. inside the package), not a download."""
        return _is_local(self.url)


SHA256 = Literal["registry", "recorded"]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking one weight file against its expected sha256."""

    name: str
    path: Path | None
    status: Literal["ok", "recorded", "missing", "corrupt"]
    expected_sha256: str | None
    actual_sha256: str | None
    expected_from: SHA256 | None
    message: str

    @property
    def ok(self) -> bool:
        """True when the file is present and matches (or was just recorded, trust on first use)."""
        return self.status in ("ok", "recorded")


REGISTRY: dict[str, WeightSpec] = {}


def register(spec: WeightSpec, replace: bool = False) -> WeightSpec:
    """Add a weight file to the registry (later modules add theirs, e.g. a packaged estimator)."""
    if spec.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", spec.sha256):
        raise ValueError(f"{spec.name}: sha256 must be 64 lower-case hex digits: {spec.sha256!r}")
    old = REGISTRY.get(spec.name)
    if old is not None and old != spec and not replace:
        raise ValueError(f"a different weight file is already registered as {spec.name!r}")
    REGISTRY[spec.name] = spec
    return spec


register(
    WeightSpec(
        name="iddpm_ffhq512_ema500000",
        filename="iddpm_ffhq512_ema500000.pth",
        url=f"{_DIFFACE_RELEASE}/iddpm_ffhq512_ema500000.pth",
        sha256=None,
        size=None,
        architecture="unet-iddpm-512",
        description="DifFace diffusion prior: improved-DDPM UNet on FFHQ 512 (EMA weights).",
    )
)
register(
    WeightSpec(
        name="swinir_restoration512_L1",
        filename="swinir_restoration512_L1.pth",
        url=f"{_DIFFACE_RELEASE}/swinir_restoration512_L1.pth",
        sha256=None,
        size=None,
        architecture="swinir-512",
        description="DifFace restorer: SwinIR trained with L1 loss on synthetic degraded FFHQ 512.",
    )
)
# Real-ESRGAN (BSD-3-Clause) background upsamplers. Upstream publishes no sha256; these values
# and sizes agree across several independent public manifests of the same release assets.
register(
    WeightSpec(
        name="RealESRGAN_x2plus",
        filename="RealESRGAN_x2plus.pth",
        url=f"{_REALESRGAN_RELEASES}/v0.2.1/RealESRGAN_x2plus.pth",
        sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        size=67_061_725,
        architecture="rrdbnet-x2",
        description="Real-ESRGAN x2plus (BSD-3-Clause): background upsampler for --upscale <= 2.",
    )
)
register(
    WeightSpec(
        name="RealESRGAN_x4plus",
        filename="RealESRGAN_x4plus.pth",
        url=f"{_REALESRGAN_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",
        sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        size=67_040_989,
        architecture="rrdbnet-x4",
        description="Real-ESRGAN x4plus (BSD-3-Clause): background upsampler for --upscale > 2.",
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


def get_spec(name: str) -> WeightSpec:
    """Registry entry by name or file name; unknown names raise `WeightsUnavailable`."""
    if name in REGISTRY:
        return REGISTRY[name]
    for spec in REGISTRY.values():
        if spec.filename == name:
            return spec
    known = ", ".join(sorted(REGISTRY)) or "none"
    raise WeightsUnavailable(
        f"{name!r} is neither an existing file nor a known weight name (known names: {known}); "
        "run `dynface weights list` to see them."
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
    expected_size = spec.size or record.get("size")
    if expected_size is not None and path.stat().st_size != expected_size:
        return "corrupt", path
    return "present", path


def verify(name: str, weights_dir: str | os.PathLike[str] | None = None) -> VerifyResult:
    """Hash the file for `name` and compare it with the registry's or the recorded sha256."""
    spec = get_spec(name)
    path = locate(spec, weights_dir)
    expected, origin = expected_sha256(spec)
    if path is None:
        message = _unavailable_message(spec, "not downloaded yet", weights_dir)
        return VerifyResult(spec.name, None, "missing", expected, None, origin, message)
    actual = sha256_file(path)
    if expected is None:
        _record(spec, path, actual, "first use")
        message = f"{path}: sha256 {actual} recorded in {_checksums_path()} (trust on first use)"
        return VerifyResult(spec.name, path, "recorded", actual, actual, "recorded", message)
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
    """Path of a weight file: an existing path as is, else a registry name found or downloaded.

    A registry name is looked up in `weights_dir`, then the cache (or its packaged location), and
    downloaded into the cache when allowed; the file's sha256 is checked before it is returned.
    """
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
    """Fetch `name` into the cache (resuming a partial download) and return its verified path."""
    return _download(get_spec(name), force=force, progress=progress)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _checked(spec: WeightSpec, weights_dir: str | os.PathLike[str] | None) -> Path:
    """The located file for `spec` after its sha256 check; a mismatch raises `WeightsCorrupted`."""
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
        path = Path(_local_path(spec.url))
        if not path.is_file():
            raise WeightsUnavailable(
                f"Weight file {spec.filename} should be installed with dynface at {path} but is "
                "missing; reinstall dynface."
            )
        return _checked(spec, None)
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
        fresh_record = force and spec.sha256 is None
        expected, origin = (None, None) if fresh_record else expected_sha256(spec)
        try:
            digest = _fetch(url, dest, spec, expected, origin, progress)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            reason = f"download from {url} failed: {_describe(err)}"
            raise WeightsUnavailable(_unavailable_message(spec, reason, weights_dir)) from err
        if expected is None:
            _record(spec, dest, digest, "download")
    return dest


def _fetch(
    url: str,
    dest: Path,
    spec: WeightSpec,
    expected: str | None,
    origin: SHA256 | None,
    progress: bool,
) -> str:
    """Stream `url` into `dest.part` (resuming it), check it, rename it to `dest`; return sha256."""
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
        resumed = have > 0 and response.status == 206 and _range_start(response) == have
        total = _total_size(response, resumed, have)
        digest = hashlib.sha256()
        if resumed:
            with open(part, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
        done = have if resumed else 0
        bar = _bar(spec.filename, total, done, progress)
        with open(part, "ab" if resumed else "wb") as fh, bar as step:
            while chunk := response.read(_CHUNK):
                fh.write(chunk)
                digest.update(chunk)
                step(len(chunk))
    got_size = part.stat().st_size
    if total is not None and got_size < total:
        raise http.client.IncompleteRead(b"", total - got_size)
    actual = digest.hexdigest()
    wrong_size = spec.size is not None and got_size != spec.size
    if (expected is not None and actual != expected) or wrong_size:
        part.unlink()
        detail = f"; size {got_size} bytes, expected {spec.size}" if wrong_size else ""
        raise WeightsCorrupted(
            f"Downloaded {spec.filename} from {url} is corrupted and was deleted: sha256 {actual}, "
            f"expected {expected or 'unknown'} ({origin or 'no record'}){detail}; try again or "
            f"download it by hand from {spec.url}."
        )
    os.replace(part, dest)
    return actual


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
def _exclusive(dest: Path) -> Iterator[None]:
    """Hold an OS lock on `<dest>.lock` so two processes never write the same `.part`."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent downloads are the user's call
        yield
        return
    with open(dest.with_name(dest.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
    target = Path(weights_dir).expanduser() if weights_dir else cache_dir()
    # Suggest the download command only when no download was tried (it cannot help otherwise).
    tried = ENV_OFFLINE in reason or reason.startswith("download from")
    command = "" if tried or not spec.url else f"run `dynface weights download {spec.name}`, or "
    return (
        f"Weight file {spec.filename} is not available ({reason}): {command}download it from "
        f"{spec.url} "
        f"and put it at {target / spec.filename} (or in a folder passed as --weights-dir, or "
        f"under $DYNFACE_HOME/weights)."
    )


def _corrupt_message(
    spec: WeightSpec, path: Path, expected: str, actual: str, origin: SHA256 | None
) -> str:
    where = "the registry" if origin == "registry" else f"{_checksums_path()} (first use)"
    return (
        f"{path} does not match {spec.name}: sha256 {actual}, expected {expected} from {where}; "
        f"delete it and run `dynface weights download {spec.name} --force`."
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


def _record(spec: WeightSpec, path: Path, digest: str, how: str) -> None:
    """Remember sha256 and size of a file the registry has no sha256 for (trust on first use)."""
    data = _read_checksums()
    data[spec.filename] = {"sha256": digest, "size": path.stat().st_size, "recorded_on": how}
    try:
        _write_checksums(data)
    except OSError as err:  # a read-only cache must not stop a run; say what is lost
        warnings.warn(
            f"could not record the sha256 of {path} in {_checksums_path()} ({err}); later "
            "changes to this file will not be detected",
            stacklevel=3,
        )
