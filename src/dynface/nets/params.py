"""Check a network's constructor arguments against its signature before building it.

A config's `params` section is passed to `UNetModel`, `SwinIR` or `RRDBNet` as keyword arguments;
a typo, a wrong type or an absurd size should be one sentence naming the key, not a traceback or a
multi-gigabyte allocation. Types come from the constructor's annotations.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

#: Largest integer a size-like constructor argument may take.
MAX_INT = 8192


def _architecture(section: str) -> Callable[..., Any]:
    from dynface.nets.rrdbnet import RRDBNet
    from dynface.nets.swinir import SwinIR
    from dynface.nets.unet import UNetModel

    if section.startswith("background."):
        return RRDBNet
    return SwinIR if section == "restorer" else UNetModel


def check_params(section: str, params: dict[str, Any], error: type[Exception]) -> None:
    """Raise `error` naming `section.params.KEY` for an unknown, missing or mistyped argument."""
    cls = _architecture(section)
    signature = inspect.signature(cls.__init__)
    hints = typing.get_type_hints(cls.__init__)
    declared = {
        name: p
        for name, p in signature.parameters.items()
        if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise error(
            f"unknown {section}.params key(s) {', '.join(unknown)}; known: {', '.join(declared)}"
        )
    missing = [n for n, p in declared.items() if p.default is p.empty and n not in params]
    if missing:
        raise error(f"{section}.params is missing {', '.join(missing)}")
    for name, value in params.items():
        if not _matches(value, hints.get(name, Any)):
            hint = str(hints.get(name, "")).replace("collections.abc.", "")
            raise error(f"{section}.params.{name} must be {hint}, got {value!r}")


def _matches(value: Any, hint: Any) -> bool:
    """True when `value` fits the annotation `hint` (int, float, bool, str, None, Sequence[X])."""
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool) and -1 <= value <= MAX_INT
    if hint is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value) and abs(value) <= MAX_INT
    if hint is str:
        return isinstance(value, str)
    if origin in (Sequence, list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return isinstance(value, list | tuple) and all(_matches(v, item) for v in value)
    return True
