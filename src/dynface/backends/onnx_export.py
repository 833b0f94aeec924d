"""Export a network once to ONNX (fp32, dynamic batch axis) into its cache folder.

Both the ONNX Runtime and the OpenVINO backend read this one file. The write is atomic (a
temporary file renamed into place), so an interrupted export never leaves a half graph behind,
and its sha256 is recorded beside it (`model.onnx.sha256.json`): a cached graph whose bytes no
longer match (tampered, truncated) is exported again with a warning, never loaded.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from dynface.backends.cache import graph_dir, seal, seal_problem

GRAPH_FILE = "model.onnx"
DIGEST_FILE = "model.onnx.sha256.json"
OPSET = 17
log = logging.getLogger(__name__)


def available() -> bool:
    """True when the `onnx` package, which torch's exporter needs, is installed (found, not
    imported: importing it costs a run's start time, and happens only when it is used)."""
    return importlib.util.find_spec("onnx") is not None


def input_names(count: int) -> list[str]:
    """Names of the graph inputs: in0, in1, ..."""
    return [f"in{i}" for i in range(count)]


def exported_graph(
    net: nn.Module,
    example_inputs: Sequence[Tensor],
    fresh: bool = False,
    folder: Path | None = None,
) -> Path:
    """Path of `net`'s ONNX graph, exporting it first when the cache has none for these weights,
    when the cached one fails its digest check, or when `fresh` (a cached one did not load)."""
    folder = folder or graph_dir(net, example_inputs)
    path = folder / GRAPH_FILE
    if path.is_file() and not fresh:
        problem = seal_problem([path], folder / DIGEST_FILE)
        if problem is None:
            return path
        log.warning("cached graph %s failed its check (%s); exporting it again", path, problem)
    elif not fresh:
        folder.mkdir(parents=True, exist_ok=True)
        # A warning so that it shows without logging set up: the first export takes minutes.
        log.warning("exporting %s to ONNX once (later runs reuse %s)", type(net).__name__, folder)
    export_onnx(net, example_inputs, path)
    seal([path], folder / DIGEST_FILE)
    return path


def export_onnx(net: nn.Module, example_inputs: Sequence[Tensor], path: Path) -> None:
    """Trace `net` on `example_inputs` (fp32, CPU) and write the graph with a dynamic batch axis."""
    names = input_names(len(example_inputs))
    axes = {name: {0: "batch"} for name in [*names, "out"]}
    inputs = tuple(x.detach().to("cpu", torch.float32) for x in example_inputs)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.part", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(
                net,
                inputs,
                tmp,
                dynamo=False,
                input_names=names,
                output_names=["out"],
                dynamic_axes=axes,
                opset_version=OPSET,
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
