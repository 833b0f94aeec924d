"""What a run's summary says about identity, for photos and clips alike."""

from __future__ import annotations

from typing import Any


def identity_lines(results: list[Any]) -> list[str]:
    """What the summary says of identity: the faces not confirmed, by name, and those not
    measured, with the reason."""
    unconfirmed, unmeasured, reasons = [], [], set()
    for result in results:
        for face in getattr(result, "identity", []):
            name = f"{result.path.name} {face['name']}"
            if face["verdict"] == "not confirmed":
                unconfirmed.append(f"{name} ({face['distance']:.2f})")
            elif face["verdict"] == "not measured":
                unmeasured.append(name)
                reasons.add(face["reason"])
    lines = []
    if unconfirmed:
        lines.append(
            f"identity not confirmed for {len(unconfirmed)} face(s): {', '.join(unconfirmed)} "
            "(try --identity-guard or a higher --fidelity)"
        )
    if unmeasured:
        lines.append(
            f"identity not measured for {len(unmeasured)} face(s): {'; '.join(sorted(reasons))}"
        )
    return lines
