"""What happened to one input (a photo or a clip): the fields every result type shares."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Literal, get_args

#: "ok": restored and written; "failed": nothing written, `message` says why; "skipped": the
#: outputs exist and overwriting was not asked for.
Status = Literal["ok", "failed", "skipped"]
STATUSES: tuple[str, ...] = get_args(Status)


@dataclass
class Outcome:
    """The outcome for one input: its status, a message, time taken and files written.

    The fields after `message` (here and in subclasses) are keyword-only, so a result built
    positionally cannot put a count in the wrong field.
    """

    path: Path
    status: Status
    message: str = ""
    _: KW_ONLY
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")

    @property
    def failed(self) -> bool:
        """True when this input did not give a restored result."""
        return self.status == "failed"
