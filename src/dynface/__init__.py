"""dynface: DynFaceRestore blind face restoration with a diffusion prior and dynamic guidance.

Public names (imported on first use, so `dynface --help` stays fast):
    Restorer         build with `Restorer.from_config("default")`; `restore_aligned(faces)`
    RestoreResult    what `restore_aligned` returns: `.images`, `.numpy()`, `.pil()`, `.traces`
    FaceTrace        what the method did to one face (`to_dict()` for JSON)
    RestoreConfig    the typed config tree; `load_restore_config(preset_or_yaml, overrides)`
    DynfaceError, UsageError, ResourceError   the exceptions dynface raises on purpose
    restore_photos   whole photos and folders: `restore_photos(paths, restorer, outdir)`
    RestoreOptions, PhotoResult   its options, and what happened to each input
The data path: docs/architecture.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "Restorer": "dynface.api",
    "RestoreResult": "dynface.results",
    "FaceTrace": "dynface.method.trace",
    "RestoreConfig": "dynface.config",
    "load_restore_config": "dynface.config",
    "DynfaceError": "dynface.errors",
    "UsageError": "dynface.errors",
    "ResourceError": "dynface.errors",
    "restore_photos": "dynface.photos",
    "RestoreOptions": "dynface.photos",
    "PhotoResult": "dynface.photos",
}
__all__ = [
    "DynfaceError",
    "FaceTrace",
    "PhotoResult",
    "ResourceError",
    "RestoreConfig",
    "RestoreOptions",
    "RestoreResult",
    "Restorer",
    "UsageError",
    "__version__",
    "load_restore_config",
    "restore_photos",
]

if TYPE_CHECKING:
    from dynface.api import Restorer
    from dynface.config import RestoreConfig, load_restore_config
    from dynface.errors import DynfaceError, ResourceError, UsageError
    from dynface.method.trace import FaceTrace
    from dynface.photos import PhotoResult, RestoreOptions, restore_photos
    from dynface.results import RestoreResult


def __getattr__(name: str) -> Any:
    """Import a public name's module only when the name is asked for."""
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dynface' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
