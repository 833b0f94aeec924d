"""The aligned-face pipeline end to end: config path, traces, DifFace mode vs the golden chain."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from dynface import Restorer
from dynface.config import ConfigError, load_config
from dynface.method.dsst import DSSTable

from .conftest import shared_path


@pytest.fixture(scope="module")
def tiny():
    return Restorer.from_config("tiny-random", device="cpu")


def test_tiny_random_end_to_end_trace(tiny):
    generator = torch.Generator().manual_seed(3)
    faces = torch.rand(2, 3, 80, 80, generator=generator)
    # One sharp-ish face and one heavily blurred face: their blur levels and start steps differ.
    faces[1] = torch.nn.functional.avg_pool2d(faces[1:2], 9, 1, 4)[0]
    steps = []
    result = tiny.restore_aligned(faces, seed=0, progress=steps.append)
    assert result.images.shape == faces.shape
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert (result.images - faces).abs().mean() > 0.01
    table = DSSTable.default()
    low, high = table.start_step(0.0), table.start_step(16.0)
    timesteps = tiny.pipeline.diffusion.timesteps
    for trace in result.traces:
        assert low <= trace["start_t"] <= high
        assert trace["start_t"] == int(timesteps[trace["start_index"]])
        assert trace["start_t"] <= trace["t_levels"][0]
        assert trace["nfe"] == trace["start_index"] + 1
        assert trace["t_levels"] == sorted(trace["t_levels"], reverse=True)
        assert trace["eta"] == pytest.approx(min(trace["s_star"] / 10, 1), abs=1e-3)
        assert 0 <= trace["dgsa_mean"] <= 1
        thumb = torch.tensor(trace["dgsa_thumbnail"])
        assert thumb.shape == (16, 16) and thumb.min() >= 0 and thumb.max() <= 1
        assert set(trace["timing"]) >= {"rm_s", "estimate_s", "sampling_s"}
    assert sum(steps) == sum(t["nfe"] for t in result.traces)
    json.dumps(result.traces)


def test_seed_makes_results_reproducible(tiny):
    faces = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    first = tiny.restore_aligned(faces, seed=7).images
    again = tiny.restore_aligned(faces, seed=7).images
    other = tiny.restore_aligned(faces, seed=8).images
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_overrides_and_bad_configs(tmp_path):
    config = load_config("tiny-random", {"respacing": "ddim10", "method.mu": 0.1})
    assert config["diffusion"]["respacing"] == "ddim10" and config["method"]["mu"] == 0.1
    with pytest.raises(ConfigError, match="method.guidance"):
        load_config("tiny-random", {"guidance": "magic"})
    with pytest.raises(ConfigError, match="dgsa_weights"):
        load_config("tiny-random", {"dgsa": "learned"})
    with pytest.raises(ConfigError, match="neither a preset"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="unknown config key.*method.muu"):
        Restorer.from_config("tiny-random", device="cpu", overrides={"method.muu": 0.1})
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        Restorer.from_config("tiny-random", device="cpu", precision="fp16")


def test_difface_mode_reproduces_the_golden_chain(tmp_path):
    """The DifFace baseline, run through a user config file, equals the reference chain."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    fixture = shared_path("fixtures", "difface_tiny_a.safetensors")
    with safe_open(str(fixture), "pt") as handle:
        meta = json.loads(handle.metadata()["config"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    for prefix in ("unet", "swinir"):
        part = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        save_file(part, tmp_path / f"{prefix}.safetensors")
    config = {
        "image_size": 32,
        "prior": {"weights": str(tmp_path / "unet.safetensors"), "params": meta["unet_config"]},
        "restorer": {
            "weights": str(tmp_path / "swinir.safetensors"),
            "params": meta["swinir_config"],
        },
        "diffusion": {"steps": 1000, "schedule": "linear", "respacing": "ddim250"},
        "method": {
            "mode": "difface",
            "difface_start_index": meta["start_index"],
            "difface_eta": 0.0,
        },
    }
    (tmp_path / "difface.yaml").write_text(yaml.safe_dump(config))
    restorer = Restorer.from_config(tmp_path / "difface.yaml", device="cpu")
    out = restorer.pipeline.restore(tensors["io.lq"], initial_noise=tensors["io.chain_noise"])
    expected = ((tensors["io.chain_out"] + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(out.images, expected, atol=1e-3, rtol=0)
    assert out.traces[0].nfe == meta["start_index"]


@pytest.mark.parametrize("mode", ["dynface", "difface"])
def test_on_plan_announces_each_batch_before_its_steps(mode):
    overrides = {"respacing": "ddim4", "method.mode": mode, "method.difface_start_index": 3}
    restorer = Restorer.from_config("tiny-random", device="cpu", overrides=overrides)
    faces = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    faces[1] = torch.nn.functional.avg_pool2d(faces[1:2], 9, 1, 4)[0]
    events: list[tuple[str, int]] = []
    result = restorer.restore_aligned(
        faces,
        seed=0,
        batch_size=1,
        progress=lambda n: events.append(("step", n)),
        on_plan=lambda n: events.append(("plan", n)),
    )
    plans = [i for i, (kind, _) in enumerate(events) if kind == "plan"]
    assert len(plans) == 2 and plans[0] == 0  # one plan per batch, before its first step
    nfe = [trace["nfe"] for trace in result.traces]
    assert events[plans[0]][1] == nfe[0] and events[plans[1]][1] == nfe[1]
    assert sum(n for kind, n in events[: plans[1]] if kind == "step") == nfe[0]
    assert sum(n for kind, n in events if kind == "step") == sum(nfe)


def test_learned_estimator_reads_more_blur_on_a_blurrier_face():
    from dynface.io import read_image, to_tensor
    from dynface.method.blur import gaussian_blur

    from .conftest import TEST_DATA

    restorer = Restorer.from_config(
        "tiny-random", device="cpu", overrides={"estimator": "learned", "respacing": "ddim5"}
    )
    face = to_tensor(read_image(TEST_DATA / "astronaut_face.png").pixels)
    faces = torch.cat([face, gaussian_blur(face, 4.0)])
    s_star = restorer.pipeline.estimator(faces, faces)
    assert 0 <= s_star[0] < s_star[1] <= 16
    traces = restorer.restore_aligned(faces, seed=0).traces
    assert traces[0]["s_star"] < traces[1]["s_star"]
    assert traces[0]["estimator"] == "learned"


def test_missing_weights_are_all_named_before_any_network_is_built(monkeypatch):
    from dynface.weights import WeightsUnavailable

    monkeypatch.setenv("DYNFACE_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable) as err:
        Restorer.from_config("default", device="cpu")
    message = str(err.value)
    assert "iddpm_ffhq512_ema500000.pth" in message
    assert "swinir_restoration512_L1.pth" in message
    assert "--weights-dir" in message


def test_learned_dgsa_runs_inside_the_sampler(tmp_path):
    from safetensors.torch import save_file

    from dynface.method.dgsa import LearnedDGSA
    from dynface.nets.dgsa import DGSANet

    torch.manual_seed(0)
    save_file(DGSANet().state_dict(), tmp_path / "dgsa.safetensors")
    restorer = Restorer.from_config(
        "tiny-random",
        device="cpu",
        overrides={
            "dgsa": "learned",
            "method.dgsa_weights": str(tmp_path / "dgsa.safetensors"),
            "respacing": "ddim10",
        },
    )
    faces = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    result = restorer.restore_aligned(faces, seed=0)
    assert isinstance(restorer.pipeline.dgsa, LearnedDGSA)
    for trace in result.traces:
        assert trace["dgsa"] == "learned"
        assert 0 < trace["dgsa_mean"] < 1  # a sigmoid map, evaluated at every guided step
        assert trace["dgsa_thumbnail"] is None  # only the static heuristic map has one
    # The map really scales the guidance: with the same noise, a network that outputs ~0 (no
    # guidance) gives another result than the saved one.
    silent = DGSANet()
    for param in silent.parameters():
        torch.nn.init.zeros_(param)
    final_bias = [m for m in silent.modules() if isinstance(m, torch.nn.Conv2d)][-1].bias
    torch.nn.init.constant_(final_bias, -20.0)
    restorer.pipeline.dgsa = LearnedDGSA(silent)
    unguided = restorer.restore_aligned(faces, seed=0)
    assert not torch.allclose(unguided.images, result.images)


def test_bf16_restore_runs_end_to_end():
    restorer = Restorer.from_config(
        "tiny-random", device="cpu", precision="bf16", overrides={"respacing": "ddim10"}
    )
    faces = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    result = restorer.restore_aligned(faces, seed=0)
    assert result.images.dtype == torch.float32 and result.images.shape == faces.shape
    assert torch.isfinite(result.images).all()
