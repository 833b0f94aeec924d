"""Split one restore run over independent jobs (`--shard i/n`) and launched processes.

Every job and process computes the same split from the same input list, so together they take
each photo exactly once: photos are weighed by their pixel count (read from the file headers,
which do not change during a run, unlike what earlier runs recorded) and dealt out longest
first, each to the share with the least work so far (ties: the lower share). A share is
`index/count`; under torchrun or `accelerate launch` each process takes share
`shard_index * world_size + rank` of `shard_count * world_size`.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dynface.errors import UsageError
from dynface.io import ImageReadError, image_size


@dataclass(frozen=True)
class Share:
    """One part of a run: `index` of `count` (0-based)."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Share:
        """`"i/n"` as a Share; UsageError when it is not one of n parts."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None or not int(match[1]) < int(match[2]):
            raise UsageError(
                f"{text!r} is not a shard; write i/n with 0 <= i < n, e.g. 0/4 for the first "
                "of four jobs"
            )
        return cls(int(match[1]), int(match[2]))

    def within(self, rank: int, world_size: int) -> Share:
        """The share of process `rank` of `world_size` launched for this share."""
        return Share(self.index * world_size + rank, self.count * world_size)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def photo_cost(path: Path) -> int:
    """Work one photo is expected to take: its pixel count (1 when its header is unreadable)."""
    try:
        width, height = image_size(path)
    except ImageReadError:
        return 1
    return max(1, width * height)


def split(paths: Sequence[Path], share: Share) -> list[int]:
    """Indices (ascending) of the photos `share` takes; all shares together take each once."""
    if share.count == 1:
        return list(range(len(paths)))
    costs = [photo_cost(path) for path in paths]
    loads = [(0, part) for part in range(share.count)]  # (work so far, share), a min-heap
    mine = []
    for k in sorted(range(len(paths)), key=lambda k: (-costs[k], k)):
        work, part = heapq.heappop(loads)
        if part == share.index:
            mine.append(k)
        heapq.heappush(loads, (work + costs[k], part))
    return sorted(mine)
