"""Architectures: official 512 configs give exactly the release's state-dict keys and shapes."""

from __future__ import annotations

import json

import pytest
import torch

from dynface.checkpoints import CheckpointError, load_into, load_state_dict
from dynface.nets import build_swinir, build_unet

from .conftest import SHARED, TEST_DATA

KEYS_FILE = SHARED / "fixtures" / "difface_keys.json"


@pytest.fixture(scope="module", params=["shared", "repo copy"])
def reference_keys(request):
    path = KEYS_FILE if request.param == "shared" else TEST_DATA / "difface_keys.json"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return json.loads(path.read_text())


@pytest.mark.parametrize(("entry", "builder"), [("model", build_unet), ("model_ir", build_swinir)])
def test_official_config_matches_reference_keys(reference_keys, entry, builder):
    reference = reference_keys[entry]
    with torch.device("meta"):
        net = builder(reference["params"])
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert ours == reference["state_dict"]
    assert sum(p.numel() for p in net.parameters()) == reference["num_parameters"]


def tiny_unet():
    return build_unet(
        dict(
            image_size=32,
            in_channels=3,
            model_channels=32,
            out_channels=6,
            attention_resolutions=[16],
            channel_mult=[1, 2],
            num_res_blocks=1,
            num_head_channels=16,
            use_scale_shift_norm=True,
        )
    )


def test_checkpoint_wrappers_are_unwrapped(tmp_path):
    net = tiny_unet()
    wrapped = {"params_ema": {f"module.{k}": v for k, v in net.state_dict().items()}}
    torch.save(wrapped, tmp_path / "wrapped.pth")
    fresh = tiny_unet()
    load_into(fresh, tmp_path / "wrapped.pth")
    for key, value in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)


def test_mismatch_names_missing_and_unexpected_keys(tmp_path):
    state = tiny_unet().state_dict()
    state.pop("out.2.weight")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as err:
        load_into(tiny_unet(), tmp_path / "bad.pth")
    message = str(err.value)
    assert "bad.pth" in message and "out.2.weight" in message and "extra.weight" in message


class Payload:
    """An arbitrary object: `weights_only` loading must refuse to rebuild it."""


def test_pickled_code_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(1), "obj": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refused"):
        load_state_dict(tmp_path / "evil.pth")


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import save_file

    net = tiny_unet()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "w.safetensors")
    fresh = load_into(tiny_unet(), tmp_path / "w.safetensors")
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([10])
    with torch.no_grad():
        assert torch.equal(fresh(x, t), net(x, t))


@pytest.mark.parametrize("dtype", [torch.bfloat16])
def test_reduced_precision_forward_is_close_to_fp32(dtype):
    """Both nets run in bf16 (fp16 is the same code path on a GPU) and stay near fp32."""
    torch.manual_seed(0)
    unet = tiny_unet().eval()
    swinir = build_swinir(
        dict(
            img_size=4,
            embed_dim=24,
            depths=[2],
            num_heads=[2],
            window_size=4,
            mlp_ratio=2,
            sf=8,
            upsampler="nearest+conv",
            unshuffle=True,
            unshuffle_scale=8,
        )
    ).eval()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([10, 900])
    with torch.no_grad():
        reference = unet(x, t)
        reduced = unet.to(dtype)(x, t)
        assert reduced.dtype == x.dtype
        assert (reduced - reference).abs().max() < 0.05 * reference.abs().max()
        ref_ir = swinir(x.clamp(-1, 1) * 0.5 + 0.5)
        low_ir = swinir.to(dtype)((x.clamp(-1, 1) * 0.5 + 0.5).to(dtype)).float()
        assert (low_ir - ref_ir).abs().max() < 0.05 * ref_ir.abs().max()
