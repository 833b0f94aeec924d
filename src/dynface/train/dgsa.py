"""DGSA trainer: learn the per-pixel guidance strength A_t with the diffusion prior frozen.

One training sample (docs/training.md#dgsa): a clean face x, a blur level s ~ U(s_range) and its
guidance image g0 = k(s) * x; a respaced step whose t lies at or below the DSST start t(s) (so
guidance would be active there); x_t = q_sample(x, t); the prior predicts x0; the closed-form
guidance gives x0'; x0 <- x0 + A (x0' - x0) with A = DGSA(g0, x0, t); one DDIM step (eta 0) to t-1;
the prior predicts x0 again there, and the loss compares that prediction with x: weighted L1 over
stationary-wavelet sub-bands plus `dists_weight` x DISTS. The guidance comes from the clean face
(ours: the restorer is left out of training, so A learns where the prior should override exact
data).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from dynface.checkpoints import load_weights
from dynface.diffusion import Diffusion
from dynface.method.blur import gaussian_blur
from dynface.method.dsst import DSSTable
from dynface.method.guidance import blend, closed_form_guidance
from dynface.nets import build_unet
from dynface.nets.dgsa import DGSANet
from dynface.train.config import TrainConfig
from dynface.train.losses import DISTS, SWTLoss
from dynface.train.tasks import VAL_SEED, Task, exact
from dynface.units import MU


def build_prior(args: dict[str, Any]) -> tuple[nn.Module, Diffusion]:
    """The frozen UNet prior and its diffusion from a Restorer config (preset name or YAML)."""
    from dynface.config import load_restore_config

    config = load_restore_config(args.get("prior_config", "default"))
    section = config.prior
    source = args.get("prior_weights") or section.weights
    if source == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.random_weights_seed)
            prior = build_unet(dict(section.params))
    else:
        prior = load_weights(build_unet(dict(section.params)), str(source))
    prior.requires_grad_(False).eval()
    d = config.diffusion
    diffusion = Diffusion(d.steps, d.schedule, d.respacing)
    return prior, diffusion


class DGSATask(Task):
    """Train `dynface.nets.dgsa.DGSANet` against a frozen prior (see module doc)."""

    name = "dgsa"

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        self.prior, self.diffusion = build_prior(self.args)
        self.dsst = DSSTable.default()
        self.s_range = tuple(self.args.get("s_range", (1.0, 12.0)))
        self.swt = SWTLoss(int(self.args.get("swt_levels", 2)), self.args.get("swt_weights"))
        self.dists_weight = float(self.args.get("dists_weight", 1.0))
        self.dists: DISTS | None = None
        vgg = self.args.get("vgg_weights")
        if vgg:
            self.dists = DISTS(vgg)
        else:
            print(
                "DGSA: no VGG16 weights given (--vgg-weights or task_args.vgg_weights): "
                "training with the stationary-wavelet L1 term alone, without DISTS",
                flush=True,
            )

    def build_model(self) -> nn.Module:
        return DGSANet(**self.config.model)

    def _to(self, device: torch.device) -> None:
        self.prior.to(device)
        if self.dists is not None:
            self.dists.to(device)

    def _sample(self, x: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor, int, Tensor, Tensor]:
        """(clean in [-1,1], g0, respaced index, noise, s) for one batch."""
        b = x.shape[0]
        lo, hi = self.s_range
        s = (lo + (hi - lo) * torch.rand(b, generator=g)).to(x.device)
        clean = x * 2 - 1
        g0 = gaussian_blur(clean, s * self.config.pixel_scale)
        t_start = int(torch.as_tensor(self.dsst.start_step(s.cpu())).min())
        allowed = (self.diffusion.timesteps <= t_start).nonzero().flatten()
        index = int(allowed[torch.randint(len(allowed), (1,), generator=g)])
        noise = torch.randn(x.shape, generator=g).to(x.device)
        return clean, g0, index, noise, s

    def _unroll(self, a_fn, clean, g0, index, noise, s) -> Tensor:
        """x0 predicted at the step after one guided DDIM step from `index`, scaled A by a_fn."""
        d = self.diffusion
        x_t = d.q_sample(clean, index, noise)
        with torch.no_grad():
            eps, x0 = d.predict(self.prior, x_t, index)
        ones = torch.ones(len(s), 1, dtype=torch.bool, device=s.device)
        guided = closed_form_guidance(
            x0, g0[:, None], (s * self.config.pixel_scale)[:, None], ones, mu=MU
        )
        t = int(d.timesteps[index])
        x0_new = blend(x0, guided, a_fn(g0, x0, t))
        x_prev = d.ddim_update(x0_new, eps, index, 0.0, None)
        if index == 0:
            return x_prev.clamp(-1, 1)
        return d.predict(self.prior, x_prev, index - 1)[1]

    def _loss(self, pred: Tensor, clean: Tensor) -> tuple[Tensor, dict]:
        swt = self.swt(pred, clean)
        metrics = {"swt_l1": swt.item()}
        loss = swt
        if self.dists is not None:
            dists = self.dists((pred + 1) / 2, (clean + 1) / 2)
            loss = loss + self.dists_weight * dists
            metrics["dists"] = dists.item()
        return loss, metrics

    def loss(self, model, x, g):
        self._to(x.device)
        with exact(x):
            batch = self._sample(x, g)
        pred = self._unroll(model, *batch)
        return self._loss(pred.float(), x.float() * 2 - 1)

    @torch.no_grad()
    def validate(self, model, x):
        self._to(x.device)
        g = torch.Generator().manual_seed(VAL_SEED)
        learned, full = [], []
        for i in range(0, x.shape[0], self.config.batch_size):
            with exact(x):
                batch = self._sample(x[i : i + self.config.batch_size], g)
            learned.append(self.swt(self._unroll(model, *batch), batch[0]).item())
            full.append(self.swt(self._unroll(_full_guidance, *batch), batch[0]).item())
        return {
            "val_swt_l1": sum(learned) / len(learned),
            "val_swt_l1_full_guidance": sum(full) / len(full),
        }


def _full_guidance(g0: Tensor, x0: Tensor, t: int) -> Tensor:
    """A = 1 everywhere: the baseline DGSA must beat."""
    return torch.ones_like(x0[:, :1])
