"""dynface: DynFaceRestore blind face restoration with a diffusion prior and dynamic guidance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Restorer", "__version__"]

if TYPE_CHECKING:
    from dynface.api import Restorer


def __getattr__(name: str) -> Any:
    """Import the heavy `Restorer` only when it is asked for, so `dynface --help` stays fast."""
    if name == "Restorer":
        from dynface.api import Restorer

        return Restorer
    raise AttributeError(name)
