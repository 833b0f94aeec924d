"""The web UI's upload folder is bounded in size and age (issue 23)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from dynface.ui.uploads import UploadGuard, sweep


def _file(path: Path, size: int, age: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_sweep_removes_old_files_and_their_empty_folders(tmp_path: Path) -> None:
    old = _file(tmp_path / "a1" / "old.png", 100, age=4000)
    new = _file(tmp_path / "b2" / "new.png", 50, age=10)
    assert sweep(tmp_path, max_age=1800) == 50
    assert not old.exists() and not old.parent.exists() and new.exists()


def _post_upload(guard: UploadGuard, size: int) -> tuple[int, list[bytes]]:
    """Send one upload of `size` bytes through the guard; (status, body parts)."""
    sent: list[dict] = []
    passed: list[str] = []

    async def app(scope, receive, send) -> None:
        passed.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    guard.app = app
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/gradio_api/upload",
        "headers": [(b"content-length", str(size).encode())],
    }
    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], [m.get("body", b"") for m in sent[1:]]


def test_an_upload_past_the_folder_limit_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    guard = UploadGuard(None, tmp_path, max_bytes=1000, max_age=1800)
    _file(tmp_path / "h1" / "one.png", 600)
    assert _post_upload(guard, 300)[0] == 200
    status, body = _post_upload(guard, 600)
    assert status == 507 and b"MB of uploads" in body[0] and b"try again in a few" in body[0]
    assert capsys.readouterr().err.count("\n") == 1
    _file(tmp_path / "h1" / "one.png", 600, age=4000)  # once old, it is swept: room again
    assert _post_upload(guard, 600)[0] == 200
    assert not (tmp_path / "h1").exists()
