"""Bound the web UI's upload folder: its total size and the age of what it holds.

Gradio stores every upload (and the files it serves back) under one folder, whether or not a
job ever uses it, and only caps each file. `UploadGuard` sits in front of Gradio's upload route:
before each upload it removes files older than `max_age` seconds, and refuses the upload (HTTP
507, one line in the server log) when the folder would grow past `max_bytes`. So a client that
uploads and never restores can fill at most `max_bytes`, for at most `max_age` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

#: Files in the upload folder older than this are removed (seconds): long enough for a job
#: that waited in a full queue to still find its upload, short enough not to pile up.
MAX_UPLOAD_AGE = 1800

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def sweep(folder: Path, max_age: float, now: float | None = None) -> int:
    """Remove files older than `max_age` seconds (and the folders they leave empty); returns
    the bytes left in `folder`."""
    now = time.time() if now is None else now
    total = 0
    for path in sorted(folder.rglob("*"), reverse=True):  # files before their folders
        try:
            if path.is_dir():
                if not any(path.iterdir()):
                    path.rmdir()
                continue
            stat = path.stat()
            if now - stat.st_mtime > max_age:
                path.unlink()
            else:
                total += stat.st_size
        except OSError:  # removed meanwhile (by Gradio's own cleanup) or in use
            continue
    return total


class UploadGuard:
    """ASGI middleware: keep the upload folder under `max_bytes` and `max_age` seconds."""

    def __init__(self, app: Any, folder: Path, max_bytes: int, max_age: float) -> None:
        self.app = app
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check uploads; pass everything else (and accepted uploads) to Gradio."""
        if scope["type"] == "http" and _is_upload(scope):
            refusal = self.refusal(_content_length(scope))
            if refusal:
                print(f"dynface ui: upload refused: {refusal}", file=sys.stderr, flush=True)
                await _discard_body(receive)  # so the client reads the answer, not a reset
                await _send_refusal(send, refusal)
                return
        await self.app(scope, receive, send)

    def refusal(self, incoming: int) -> str | None:
        """Why an upload of `incoming` bytes is refused now (None: accepted)."""
        held = sweep(self.folder, self.max_age) if self.folder.exists() else 0
        if held + incoming <= self.max_bytes:
            return None
        return (
            f"this server holds {held / 1e6:.0f} MB of uploads, its limit is "
            f"{self.max_bytes / 1e6:.0f} MB; try again in a few minutes"
        )


def _is_upload(scope: Scope) -> bool:
    """A POST to Gradio's upload route."""
    return bool(scope.get("method") == "POST" and str(scope.get("path", "")).endswith("/upload"))


def _content_length(scope: Scope) -> int:
    """The request's declared size in bytes (0 when not declared)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def _discard_body(receive: Receive) -> None:
    """Read the request's body to its end without keeping any of it."""
    while True:
        message = await receive()
        if message.get("type") != "http.request" or not message.get("more_body"):
            return


async def _send_refusal(send: Send, message: str) -> None:
    """HTTP 507 with the message as Gradio's clients read an error (`detail`)."""
    import json

    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 507, "headers": headers})
    await send({"type": "http.response.body", "body": body})
