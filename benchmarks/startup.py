"""The fixed cost of a run after the first: how long until the first denoising step can start.

Each measured run is a fresh process (as a CLI run is) that imports dynface and builds the
restorer from the warm cache: the nets (loaded from weight files holding seeded random weights
at the official sizes, or tiny with --quick), the graph key (a digest of the weights), the
graph's digest check, the runtime session or OpenVINO compile (from its cached blob), and
auto's cached choice. A first run fills the cache (export and, for auto, the one-off
measurement: minutes at official sizes) and is reported apart. The pieces are then re-timed
apart in the same process, to say where the time goes. Real registry weights add their own
sha256 check (weights.resolve), which files of one's own do not get.
Writes benchmarks/results/startup-<backend>-cpu.json.

    python benchmarks/startup.py --backend auto [--runs 3]     # the figure (idle machine)
    python benchmarks/startup.py --backend onnxruntime --quick  # checks the script runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = ("import", "nets", "graph_key", "graph_check", "runtime_load", "from_config")


def weight_files(folder: Path, quick: bool) -> dict[str, str]:
    """Seeded random weights of the prior and the RM written to `folder`, as config overrides."""
    import torch

    from dynface.config import load_config
    from dynface.nets import build_swinir, build_unet

    config = load_config("tiny-random" if quick else "default")
    files = {}
    for section, builder, seed in (("prior", build_unet, 0), ("restorer", build_swinir, 1)):
        torch.manual_seed(seed)
        path = folder / f"{section}.pth"
        torch.save(builder(dict(config[section]["params"])).state_dict(), path)
        files[f"{section}.weights"] = str(path)
    return files


def child(backend: str, quick: bool, files: dict[str, str]) -> dict[str, float]:
    """In a fresh process: the time of each phase of building the restorer, in seconds."""
    times = {}
    start = time.perf_counter()
    import torch

    from dynface import api
    from dynface.backends import onnx_export, runtime_onnx, runtime_openvino
    from dynface.backends.cache import graph_dir, seal_problem
    from dynface.config import load_restore_config
    from dynface.nets import build_unet

    times["import"] = time.perf_counter() - start
    config = "tiny-random" if quick else "default"
    start = time.perf_counter()
    api.Restorer.from_config(config, device="cpu", overrides=files, backend=backend)
    times["from_config"] = time.perf_counter() - start
    settings = load_restore_config(config, files)
    start = time.perf_counter()
    unet = api._build(build_unet, settings.prior, Path(files["prior.weights"]), 0).eval()
    times["nets"] = time.perf_counter() - start  # the prior only: the biggest
    size = settings.image_size
    inputs = (torch.zeros(1, 3, size, size), torch.zeros(1))
    start = time.perf_counter()
    folder = graph_dir(unet, inputs)
    times["graph_key"] = time.perf_counter() - start
    graph = folder / onnx_export.GRAPH_FILE
    if graph.is_file():
        start = time.perf_counter()
        seal_problem([graph], folder / onnx_export.DIGEST_FILE)
        times["graph_check"] = time.perf_counter() - start
        runtime = runtime_openvino if backend == "openvino" else runtime_onnx
        start = time.perf_counter()
        runtime.load(graph, "fp32")
        times["runtime_load"] = time.perf_counter() - start
    return {key: round(value, 3) for key, value in times.items()}


def fresh_run(backend: str, quick: bool, files: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Wall time of one fresh process (interpreter start included) and its phase times."""
    command = [sys.executable, __file__, "--child", json.dumps(files), "--backend", backend]
    start = time.perf_counter()
    done = subprocess.run(command + ["--quick"] * quick, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny nets: checks the script runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the weight files, as JSON
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.backend, args.quick, json.loads(args.child))))
        return
    import torch

    from _common import environment, write_result

    with tempfile.TemporaryDirectory() as folder:
        files = weight_files(Path(folder), args.quick)
        first_wall, first = fresh_run(args.backend, args.quick, files)  # fills the cache
        print(f"first run: {first_wall:.1f} s {first}", flush=True)
        runs = [fresh_run(args.backend, args.quick, files) for _ in range(args.runs)]
    for wall, phases in runs:
        print(f"cached run: {wall:.2f} s {phases}", flush=True)
    median = {p: statistics.median(r[1][p] for r in runs) for p in PHASES if p in runs[0][1]}
    payload = {
        "benchmark": "startup",
        "backend": args.backend,
        "config": "tiny-random" if args.quick else "default sizes, random weights from files",
        "environment": environment(torch.device("cpu")),
        "first_run": {"process_s": round(first_wall, 2), "phases_s": first},
        "cached_runs_process_s": [round(wall, 2) for wall, _ in runs],
        "cached_median_phases_s": {p: round(v, 3) for p, v in median.items()},
        "note": "fixed cost = import + from_config; the other phases re-time pieces of it apart",
    }
    suffix = "-quick" if args.quick else ""
    name = f"startup-{args.backend}{suffix}-cpu.json"
    out = args.out or Path(__file__).parent / "results" / name
    print("written to", write_result("startup", payload, out))


if __name__ == "__main__":
    main()
