"""Golden vectors from DifFace's reference implementation: nets, schedule, DDIM step and chain."""

from __future__ import annotations

import json

import pytest
import torch

from dynface.checkpoints import load_into
from dynface.diffusion import Diffusion
from dynface.nets import build_swinir, build_unet

from .conftest import shared_path


@pytest.fixture(scope="module")
def golden():
    from safetensors import safe_open

    path = shared_path("fixtures", "difface_tiny_a.safetensors")
    with safe_open(str(path), "pt") as handle:
        config = json.loads(handle.metadata()["config"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    unet = build_unet(config["unet_config"]).eval()
    load_into(unet, {k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
    swinir = build_swinir(config["swinir_config"]).eval()
    load_into(swinir, {k[7:]: v for k, v in tensors.items() if k.startswith("swinir.")})
    diffusion = Diffusion(
        1000, config["diffusion"]["noise_schedule"], config["diffusion"]["timestep_respacing"]
    )
    return config, tensors, unet, swinir, diffusion


def test_unet_output(golden):
    _, io, unet, _, _ = golden
    with torch.no_grad():
        out = unet(io["io.unet_x"], io["io.unet_t"])
    assert out.shape == io["io.unet_out"].shape
    torch.testing.assert_close(out, io["io.unet_out"], atol=1e-4, rtol=0)


def test_swinir_output(golden):
    _, io, _, swinir, _ = golden
    with torch.no_grad():
        out = swinir(io["io.lq"])
    torch.testing.assert_close(out, io["io.swinir_out"], atol=1e-4, rtol=0)


def test_respaced_schedule(golden):
    _, io, _, _, diffusion = golden
    assert torch.equal(diffusion.timesteps, io["io.spaced_timesteps"])
    torch.testing.assert_close(
        diffusion.alphas_cumprod, io["io.spaced_alphas_cumprod"], atol=1e-12, rtol=0
    )


def test_ddim_step_with_eta(golden):
    config, io, unet, _, diffusion = golden
    with torch.no_grad():
        x_prev, x0 = diffusion.ddim_step(
            unet,
            io["io.chain_xt"],
            config["start_index"],
            eta=config["eta_step"],
            noise=io["io.step_noise"],
        )
    torch.testing.assert_close(x0, io["io.step_pred_xstart"], atol=1e-4, rtol=0)
    torch.testing.assert_close(x_prev, io["io.step_out"], atol=1e-4, rtol=0)


def test_restoration_chain(golden):
    """DifFace: noise the clamped restorer output to index 100, then DDIM eta=0 from index 99."""
    config, io, unet, swinir, diffusion = golden
    start = config["start_index"]
    with torch.no_grad():
        guide = swinir(io["io.lq"]).clamp(0, 1) * 2 - 1
        x_t = diffusion.q_sample(guide, start, io["io.chain_noise"])
        torch.testing.assert_close(x_t, io["io.chain_xt"], atol=1e-4, rtol=0)
        out = diffusion.sample(unet, x_t, start - 1, eta=0.0)
    torch.testing.assert_close(out, io["io.chain_out"], atol=1e-3, rtol=0)


def test_sample_with_staggered_starts_equals_separate_runs(golden):
    """A batch whose samples start at different steps equals running each sample alone."""
    _, io, unet, _, diffusion = golden
    x = io["io.chain_xt"]
    with torch.no_grad():
        together = diffusion.sample(unet, x, torch.tensor([30, 12]), eta=0.0)
        first = diffusion.sample(unet, x[:1], 30, eta=0.0)
        second = diffusion.sample(unet, x[1:], 12, eta=0.0)
    torch.testing.assert_close(together, torch.cat([first, second]), atol=1e-5, rtol=0)
