"""Every network follows `Pipeline.to`, and no float64 tensor is ever made off the CPU.

This machine has no accelerator, so the pipeline is moved to PyTorch's `meta` device (tensors
with shapes and dtypes but no data) and a dispatch mode records every op whose output is float64
on a device other than the CPU. MPS has no float64 at all, so such an op is a crash there.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from dynface import Restorer
from dynface.method.guidance import closed_form_guidance, gradient_guidance
from dynface.nets.dgsa import DGSANet

META = torch.device("meta")


class Float64Watch(TorchDispatchMode):
    """Records ops that make float64 tensors off the CPU, and counts ops run off the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.offenders: list[str] = []
        self.device_ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "cpu":
                self.device_ops += 1
                if t.dtype == torch.float64:
                    self.offenders.append(str(func))
        return out


@pytest.fixture
def restorer(tmp_path):
    """A fresh tiny pipeline with every kind of network (a move to meta discards weights)."""
    path = tmp_path / "dgsa.safetensors"
    torch.manual_seed(0)
    save_file(DGSANet().state_dict(), path)
    overrides = {"respacing": "ddim10", "dgsa": "learned", "method.dgsa_weights": str(path)}
    return Restorer.from_config("tiny-random", device="cpu", overrides=overrides)


def _all_modules(obj: object, seen: set[int] | None = None, depth: int = 0) -> list[nn.Module]:
    """Every nn.Module reachable through an object's attributes (not inside other modules)."""
    seen = seen if seen is not None else set()
    if id(obj) in seen or depth > 3:
        return []
    seen.add(id(obj))
    if isinstance(obj, nn.Module):
        return [obj]
    found: list[nn.Module] = []
    for value in getattr(obj, "__dict__", {}).values():
        found.extend(_all_modules(value, seen, depth + 1))
    return found


def test_to_moves_every_network_the_pipeline_holds(restorer):
    pipeline = restorer.pipeline
    held = _all_modules(pipeline)
    named = pipeline.modules()
    assert {"prior", "rm", "dgsa"} <= set(named) and ({"sde"} <= set(named))
    assert {id(m) for m in held} <= {id(m) for m in named.values()}
    assert all(p.device.type == "cpu" for m in named.values() for p in m.parameters())
    pipeline.to(META, torch.bfloat16)
    for name, module in named.items():
        for param in module.parameters():
            assert param.device == META, name
            big = name in ("prior", "rm")
            assert param.dtype == (torch.bfloat16 if big else torch.float32), name
    assert pipeline.device == META


def test_no_float64_tensor_reaches_a_device(restorer):
    pipeline = restorer.pipeline
    faces = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    faces[1] = torch.nn.functional.avg_pool2d(faces[1:2], 5, 1, 2)[0]
    s_star = torch.tensor([2.0, 9.0])  # guided steps for both faces on ddim10
    pipeline.to(META)
    watch = Float64Watch()
    with watch:
        work, r = pipeline.run_rm(faces)
        pipeline.estimator.sde(work)
        plan = pipeline.plan(work, r, s_star)
        x = pipeline.sample(plan, generator=None)
    assert x.device == META and x.dtype == torch.float32
    assert watch.device_ops > 100  # the networks and the guidance really ran on the device
    assert watch.offenders == []


def test_guidance_functions_keep_float64_on_the_cpu():
    x0 = torch.zeros(2, 3, 32, 32, device=META)
    g = torch.zeros(2, 2, 3, 32, 32, device=META)
    s = torch.tensor([[2.0, 1.0], [3.0, 2.0]])
    active = torch.ones(2, 2, dtype=torch.bool)
    watch = Float64Watch()
    with watch:
        closed_form_guidance(x0, g, s, active)
        gradient_guidance(x0, g, s, active)
    assert watch.device_ops > 0 and watch.offenders == []


def test_restorer_to_moves_the_whole_pipeline(restorer):
    restorer.to(META, "bf16")
    assert restorer.device == META and restorer.precision == "bf16"
    assert next(restorer.pipeline.prior.parameters()).dtype == torch.bfloat16
    assert all(
        p.device == META for m in restorer.pipeline.modules().values() for p in m.parameters()
    )
