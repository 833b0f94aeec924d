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

#: Most shares a run may be split into: far more jobs than any cluster runs at once, and small
#: enough that a share count is read and checked at once (a split costs O(photos), not O(n)).
MAX_SHARDS = 1_000_000


@dataclass(frozen=True)
class Share:
    """One part of a run: `index` of `count` (0-based)."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Share:
        """`"i/n"` as a Share; UsageError when it is not one of n parts or n > MAX_SHARDS
        (the text's length is bounded before its numbers are read, so any text is quick)."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text) if len(text) <= 60 else None
        if match is None or not int(match[1]) < int(match[2]):
            raise UsageError(
                f"{text[:40]!r} is not a shard; write i/n with 0 <= i < n, e.g. 0/4 for the "
                "first of four jobs"
            )
        if int(match[2]) > MAX_SHARDS:
            raise UsageError(
                f"{text!r} asks too many shards: at most {MAX_SHARDS:,} (one job each); "
                "use fewer, larger ones"
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
    if share.index >= len(paths):  # more shares than photos: share k takes photo k at most
        return []
    costs = [photo_cost(path) for path in paths]
    # (work so far, share), a min-heap; shares past the photo count would never be dealt one
    loads = [(0, part) for part in range(min(share.count, len(paths)))]
    mine = []
    for k in sorted(range(len(paths)), key=lambda k: (-costs[k], k)):
        work, part = heapq.heappop(loads)
        if part == share.index:
            mine.append(k)
        heapq.heappush(loads, (work + costs[k], part))
    return sorted(mine)
