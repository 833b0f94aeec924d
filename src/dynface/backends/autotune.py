"""`--backend auto` on a CPU: which runtime and precision, decided by measuring them once.

Each usable candidate (eager torch fp32; ONNX Runtime fp32 and OpenVINO fp32 when installed;
OpenVINO bf16 when bf16 is asked for and the CPU has it) is compiled, run once on a seeded
input (the warm-up, and the agreement check against eager fp32), then timed in rounds, all
candidates in turn: MIN_ROUNDS rounds, and one more while they stay under BUDGET_S (at most
MAX_ROUNDS); each candidate's best round counts. A candidate is eligible only when its output
agrees with eager fp32: max |diff| / max(1, max |eager|) at most FP32_TOLERANCE (1e-4) for fp32
runtimes, BF16_TOLERANCE (1e-1) for bf16. The fastest eligible fp32 candidate wins; bf16 wins
only when measured faster than it. The choice is cached in the graph's folder
(`autotune.json`), keyed by the CPU model and flags, the thread count, the library versions and
the precision asked for, so later runs measure nothing (delete that file to measure again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from dynface.backends.cache import library_version, write_atomic

#: Bumped when the rules change, so recorded choices are measured again (2: bf16's tolerance).
RECIPE = 2
RECORD = "autotune.json"
BUDGET_S = 10.0
MIN_ROUNDS = 2
MAX_ROUNDS = 3
FP32_TOLERANCE = 1e-4
#: bf16 rounding alone puts the prior 3-6% of its output's range off eager fp32 at worst (seeded
#: random weights, OpenVINO on an AMD EPYC); a broken runtime is off by the whole range.
BF16_TOLERANCE = 1e-1
EAGER = ("torch", "fp32")
log = logging.getLogger(__name__)

Candidate = tuple[str, str]
Build = Callable[[str, str], nn.Module]


@dataclass(frozen=True)
class Choice:
    """The runtime and precision picked for one net, and why (shown on the run's first line)."""

    backend: str
    precision: str
    reason: str


def cpu_model() -> str:
    """The CPU's model name and a short digest of its feature flags (/proc/cpuinfo)."""
    name, flags = "unknown CPU", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown CPU":
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value.strip()
    except OSError:
        pass
    return f"{name} [{hashlib.sha256(flags.encode()).hexdigest()[:12]}]"


def machine_key(precision: str) -> str:
    """What a measured choice depends on besides the graph: CPU, threads, versions, precision."""
    libs = ",".join(f"{n}={library_version(n)}" for n in ("torch", "onnxruntime", "openvino"))
    threads = torch.get_num_threads()
    return f"recipe={RECIPE};cpu={cpu_model()};threads={threads};{libs};precision={precision}"


def known(precision: str) -> list[Candidate]:
    """Every pair a recorded choice may name when `precision` was asked for."""
    pairs = [EAGER, ("onnxruntime", "fp32"), ("openvino", "fp32")]
    return pairs + [("openvino", "bf16")] if precision == "bf16" else pairs


def time_forward(module: nn.Module, inputs: Sequence[Tensor]) -> float:
    """Seconds of one forward of `module` (tests replace this to make the choice deterministic)."""
    start = time.perf_counter()
    with torch.no_grad():
        module(*inputs)
    return time.perf_counter() - start


def cached_choice(folder: Path, key: str, allowed: Sequence[Candidate]) -> Choice | None:
    """The choice recorded under `key`, when it is one of `allowed`; None otherwise."""
    try:
        entry = json.loads((folder / RECORD).read_text())[key]
        choice = Choice(str(entry["backend"]), str(entry["precision"]), str(entry["reason"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return choice if (choice.backend, choice.precision) in allowed else None


def record_choice(folder: Path, key: str, choice: Choice, times: dict[str, float]) -> None:
    """Add `choice` (and the times it was made from) to the folder's record under `key`."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        entries = json.loads((folder / RECORD).read_text())
        entries = entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        entries = {}
    entries[key] = {**asdict(choice), "times_s": times}
    write_atomic(folder / RECORD, json.dumps(entries, indent=1) + "\n")


def probe_inputs(example_inputs: Sequence[Tensor]) -> list[Tensor]:
    """Seeded uniform [0, 1) images in place of the example images; other inputs as given."""
    gen = torch.Generator().manual_seed(0)
    return [
        torch.rand(x.shape, generator=gen).to(x.device)
        if x.is_floating_point() and x.ndim == 4
        else x
        for x in example_inputs
    ]


def disagreement(out: Tensor, reference: Tensor) -> float:
    """max |out - reference| / max(1, max |reference|): relative for large outputs."""
    scale = max(1.0, reference.abs().max().item())
    return (out.float() - reference).abs().max().item() / scale


def tolerance(precision: str) -> float:
    """How far from eager fp32 a candidate at `precision` may be and still be chosen."""
    return BF16_TOLERANCE if precision == "bf16" else FP32_TOLERANCE


def tuned(
    net: nn.Module,
    example_inputs: Sequence[Tensor],
    precision: str,
    candidates: Callable[[], Sequence[Candidate]],
    build: Build,
    folder: Path,
) -> tuple[nn.Module, Choice]:
    """`net` built on the candidate recorded for this machine, or on the one measured fastest
    among `candidates()` now (and recorded), with the choice. The candidates are only listed
    when measuring: listing them imports every runtime, which a cached run need not pay."""
    key = machine_key(precision)
    cached = cached_choice(folder, key, known(precision))
    if cached is not None:
        try:
            module = build(cached.backend, cached.precision)
        except Exception as exc:  # e.g. a runtime removed since: measure again
            log.warning(
                "auto: the recorded %s %s cannot run (%s)", cached.backend, cached.precision, exc
            )
        else:
            return module, Choice(cached.backend, cached.precision, cached.reason + ", cached")
    module, choice, times = measure(net, example_inputs, candidates(), build)
    record_choice(folder, key, choice, times)
    return module, choice


def measure(
    net: nn.Module, example_inputs: Sequence[Tensor], candidates: Sequence[Candidate], build: Build
) -> tuple[nn.Module, Choice, dict[str, float]]:
    """Build each candidate, keep those that agree with eager fp32, time them in rounds; the
    winner's module, the choice and every eligible candidate's best time."""
    names = ", ".join(" ".join(c) for c in dict.fromkeys([EAGER, *candidates]))
    log.warning(
        "auto: timing %s once for %s (later runs reuse the choice)", names, type(net).__name__
    )
    probe = probe_inputs(example_inputs)
    with torch.no_grad():
        reference = net(*probe)
    eligible = {}
    for candidate in dict.fromkeys([EAGER, *candidates]):
        module = _eligible(candidate, build, probe, reference)
        if module is not None:
            eligible[candidate] = module
    times = _timed_rounds(eligible, probe)
    choice = pick(times)
    return (
        eligible[choice.backend, choice.precision],
        choice,
        {f"{b} {p}": round(t, 4) for (b, p), t in times.items()},
    )


def _eligible(
    candidate: Candidate, build: Build, probe: Sequence[Tensor], reference: Tensor
) -> nn.Module | None:
    """The candidate's module when it builds, runs and agrees with eager fp32; else None."""
    try:
        module = build(*candidate)
        with torch.no_grad():
            out = module(*probe)
    except Exception as exc:  # a runtime that cannot run this net is simply not a candidate
        log.warning("auto: %s %s cannot run this network (%s)", *candidate, exc)
        return None
    error = disagreement(out, reference)
    if error > tolerance(candidate[1]):
        limit = tolerance(candidate[1])
        log.warning(
            "auto: %s %s is off eager fp32 by %.1e (> %.0e): not used", *candidate, error, limit
        )
        return None
    return module


def _timed_rounds(
    eligible: dict[Candidate, nn.Module], probe: Sequence[Tensor]
) -> dict[Candidate, float]:
    """Best time of each candidate over rounds run in turn: MIN_ROUNDS, then more while they
    fit in BUDGET_S."""
    times: dict[Candidate, list[float]] = {candidate: [] for candidate in eligible}
    start = time.perf_counter()
    for rounds in range(1, MAX_ROUNDS + 1):
        for candidate, module in eligible.items():
            times[candidate].append(time_forward(module, probe))
        if (
            rounds >= MIN_ROUNDS
            and (time.perf_counter() - start) * (rounds + 1) / rounds > BUDGET_S
        ):
            break
    return {candidate: min(seconds) for candidate, seconds in times.items()}


def pick(times: dict[Candidate, float]) -> Choice:
    """The fastest fp32 candidate, or the fastest bf16 one where it is faster still; why."""
    fp32 = {c: t for c, t in times.items() if c[1] == "fp32"}
    best = min(fp32, key=fp32.__getitem__)
    bf16 = {c: t for c, t in times.items() if c[1] == "bf16"}
    fastest_bf16 = min(bf16, key=bf16.__getitem__) if bf16 else None
    if fastest_bf16 is not None and bf16[fastest_bf16] < fp32[best]:
        best = fastest_bf16
    runner_up = sorted((t, c) for c, t in times.items() if c != best)
    if best == EAGER:
        versus = f" vs {' '.join(runner_up[0][1])} {runner_up[0][0]:.2f} s" if runner_up else ""
        reason = f"measured fastest: eager {times[best]:.2f} s{versus}"
    else:
        reason = f"measured fastest: {times[best]:.2f} s vs eager {times[EAGER]:.2f} s"
    if fastest_bf16 is not None and best != fastest_bf16:
        reason += f", bf16 {bf16[fastest_bf16]:.2f} s"
    return Choice(best[0], best[1], reason)
