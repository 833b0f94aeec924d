"""The method core: the sampler runs the golden-tested DDIM step, typed plans and traces,
per-face noise (a face's result does not depend on its batch), and the DifFace baseline."""

from __future__ import annotations

import json

import pytest
import torch

from dynface import Restorer
from dynface.diffusion import Diffusion
from dynface.diffusion.ddim import StepInfo, per_sample, steps_under_way
from dynface.diffusion.dpm_solver import sample_dpmpp_2m
from dynface.method.trace import FaceTrace


class _Net(torch.nn.Module):
    """A stand-in prior: epsilon = 0.1 x (deterministic, cheap)."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.cat([0.1 * x, x], dim=1)


def test_sample_runs_ddim_step_once_per_step_and_reports_through_one_callback(monkeypatch):
    diffusion = Diffusion(respacing="ddim10")
    calls: list[int] = []
    original = Diffusion.ddim_step

    def spy(self, model, x, index, *args, **kwargs):
        calls.append(index)
        return original(self, model, x, index, *args, **kwargs)

    monkeypatch.setattr(Diffusion, "ddim_step", spy)
    infos: list[StepInfo] = []
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    diffusion.sample(_Net(), x, torch.tensor([5, 2]), eta=0.5, callback=infos.append)
    assert calls == [5, 4, 3, 2, 1, 0]
    assert [info.index for info in infos] == calls
    assert [len(info.rows) for info in infos] == [1, 1, 1, 2, 2, 2]
    assert infos[-1].t == 0 and infos[0].t == int(diffusion.timesteps[5])


def test_x0_hook_sees_only_the_rows_under_way():
    diffusion = Diffusion(respacing="ddim10")
    seen: list[list[int]] = []

    def hook(x0: torch.Tensor, index: int, rows: torch.Tensor) -> torch.Tensor:
        assert len(x0) == len(rows)
        seen.append(rows.tolist())
        return x0

    diffusion.sample(_Net(), torch.zeros(3, 3, 8, 8), torch.tensor([1, 3, 0]), x0_hook=hook)
    assert seen == [[1], [1], [0, 1], [0, 1, 2]]


def test_both_samplers_share_the_start_bookkeeping():
    diffusion = Diffusion(respacing="ddim10")
    starts = diffusion.start_indices(torch.tensor([3, 1]), 2)
    assert starts.dtype == torch.long and starts.tolist() == [3, 1]
    assert diffusion.start_indices(2, 3).tolist() == [2, 2, 2]  # one index for the batch
    steps = [(index, rows.tolist()) for index, rows in steps_under_way(starts)]
    assert steps == [(3, [0]), (2, [0]), (1, [0, 1]), (0, [0, 1])]
    assert per_sample(0.5, 3).tolist() == [0.5, 0.5, 0.5]
    assert per_sample(torch.tensor([[0.25], [1.0]]), 2).tolist() == [0.25, 1.0]
    x = torch.zeros(2, 3, 8, 8)
    for bad in (10, -1, torch.tensor([0, 10])):
        with pytest.raises(ValueError, match=r"start index must lie in \[0, 9\]"):
            diffusion.start_indices(bad, 2)
        with pytest.raises(ValueError, match=r"start index must lie in \[0, 9\]"):
            diffusion.sample(_Net(), x, bad)
        with pytest.raises(ValueError, match=r"start index must lie in \[0, 9\]"):
            sample_dpmpp_2m(diffusion, _Net(), x, bad)


@pytest.fixture(scope="module")
def tiny():
    return Restorer.from_config("tiny-random", device="cpu", overrides={"respacing": "ddim10"})


def _faces() -> torch.Tensor:
    faces = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    faces[1] = torch.nn.functional.avg_pool2d(faces[1:2], 5, 1, 2)[0]
    return faces


def test_a_face_does_not_depend_on_its_batch_or_the_batch_size(tiny):
    faces = _faces()
    together = tiny.restore_aligned(faces, seed=3).images
    one_by_one = tiny.restore_aligned(faces, seed=3, batch_size=1).images
    pairs = tiny.restore_aligned(faces, seed=3, batch_size=2).images
    torch.testing.assert_close(one_by_one, together, atol=1e-4, rtol=0)
    torch.testing.assert_close(pairs, together, atol=1e-4, rtol=0)
    # Per-face seeds (e.g. from a photo path) give the same face whatever else is in the batch.
    alone = tiny.restore_aligned(faces[1:2], seed=[11]).images
    mixed = tiny.restore_aligned(faces[[0, 1]], seed=[5, 11]).images
    torch.testing.assert_close(mixed[1:], alone, atol=1e-4, rtol=0)
    assert not torch.allclose(tiny.restore_aligned(faces, seed=4).images, together)


def test_traces_are_typed_and_json_ready(tiny):
    faces = _faces()
    out = tiny.pipeline.restore(faces, torch.Generator().manual_seed(0))
    assert all(isinstance(trace, FaceTrace) for trace in out.traces)
    data = [trace.to_dict() for trace in out.traces]
    assert json.loads(json.dumps(data)) == data
    assert tiny.restore_aligned(faces, seed=0).traces[0].keys() == data[0].keys()
    assert {"s_star", "s_levels", "t_levels", "start_index", "eta", "nfe"} <= set(data[0])


def test_difface_starts_at_t400_on_any_respacing_with_eta_half():
    for steps, index in [("ddim50", 20), ("ddim250", 100), ("ddim125", 50), ("ddim25", 10)]:
        restorer = Restorer.from_config(
            "tiny-random", device="cpu", overrides={"mode": "difface", "steps": steps}
        )
        plan = restorer.pipeline.plan(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
        assert int(plan.start_index[0]) == index, steps
        assert int(restorer.pipeline.diffusion.timesteps[index]) == 400
        assert float(plan.eta[0]) == 0.5
    override = Restorer.from_config(
        "tiny-random", device="cpu", overrides={"mode": "difface", "method.difface_eta": 0.2}
    )
    plan = override.pipeline.plan(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    assert float(plan.eta[0]) == pytest.approx(0.2)


def test_difface_runs_on_ddim50_end_to_end():
    restorer = Restorer.from_config(
        "tiny-random", device="cpu", overrides={"mode": "difface", "steps": "ddim50"}
    )
    result = restorer.restore_aligned(torch.rand(1, 3, 32, 32), seed=0)
    trace = result.traces[0]
    assert trace["start_t"] == 400 and trace["nfe"] == 20 and trace["eta"] == 0.5
    assert torch.isfinite(result.images).all()


def test_guidance_scale_protocol_declares_what_the_pipeline_reads():
    from dynface.method.dgsa import GuidanceScale, HeuristicDGSA, LearnedDGSA
    from dynface.nets.dgsa import DGSANet

    assert "dynamic" in GuidanceScale.__annotations__
    assert isinstance(HeuristicDGSA(), GuidanceScale) and not HeuristicDGSA().dynamic
    assert isinstance(LearnedDGSA(DGSANet()), GuidanceScale) and LearnedDGSA(DGSANet()).dynamic

    class NoFlag:
        def __call__(self, g0, x0, t):
            return g0

        def modules(self):
            return {}

    assert not isinstance(NoFlag(), GuidanceScale)
