"""Video clips: face tracks restored consistently, sound and timing kept (see docs/video.md).

Names are imported on first use, so `dynface --help` does not load torch for them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "VideoOptions": "dynface.video.clip",
    "VideoResult": "dynface.video.clip",
    "restore_video": "dynface.video.clip",
    "ConsistencySettings": "dynface.video.consistency",
    "VIDEO_SUFFIXES": "dynface.video.io",
    "VideoReadError": "dynface.video.io",
    "is_video": "dynface.video.io",
    "probe": "dynface.video.io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dynface.video' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
