"""One exception family, so callers (the CLI, scripts) can act on the kind of failure.

- `UsageError`: what the caller asked for cannot work (a bad option, config or argument). The CLI
  exits with 2; it is also a `ValueError`, so plain Python callers can catch it as one.
- `ResourceError`: something outside the request failed (a missing, corrupt or untrusted weight
  file, an unreadable image, no space). The CLI exits with 1; it is also a `RuntimeError`.
"""

from __future__ import annotations


class DynfaceError(Exception):
    """Base of every error dynface raises on purpose; its message is one sentence for users."""

    exit_code = 1


class UsageError(DynfaceError, ValueError):
    """The request itself is wrong: fix the option, config or argument it names."""

    exit_code = 2


class ResourceError(DynfaceError, RuntimeError):
    """A file, network or device the request needs is missing, broken or untrusted."""

    exit_code = 1
