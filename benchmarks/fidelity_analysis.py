"""How much of the prior's x0 each guidance setting keeps, per frequency band, and over a chain.

    python benchmarks/fidelity_analysis.py [--faces ../shared/data/manifest.csv] [--count 12]

Three parts, written to benchmarks/results/fidelity_analysis.json and
docs/images/fidelity_guidance_bands.png:

1. One guidance step, exact. With consistent targets g_j = k(s_j) * r the closed form is a
   per-frequency filter: x0' - r = mu / (D + mu) (x0 - r), D(f) = sum_j w_j |K_j(f)|^2, and after
   the DGSA blend the share of the x0-vs-r difference kept at f is `1 - A D / (D + mu)`. The
   paper's gradient step `x0 - lam * sum_j w_j 2 k_j * (k_j * x0 - g_j)` keeps `1 - 2 lam A D`.
   D uses the exact DFT of the discrete kernels at 512 px, ring-averaged into 64 radial bins;
   band values are averages weighted by the mean face power spectrum (the shipped DSST table's).
2. The same step measured on real faces (skipped without ../shared): `closed_form_guidance` with
   x0 = one clean face, r = another, per-band ratio of windowed difference spectra; checks part 1
   against the implementation (reflect padding included).
3. The whole sampling chain in a linear-Gaussian model: the prior is replaced by the posterior
   mean of a stationary Gaussian with the face power spectrum P(f), so every step (predict x0,
   guide, DDIM with eta) is a per-frequency linear map and the output is `alpha(f) r + n(f)` with
   n independent of r. Reported: alpha (the gain on r) and the prior's share of the output power
   `var(n) / (alpha^2 P + var(n))`. The model cannot show what a real prior does (detail that
   depends on the image, clipping, the spatial variation of the DGSA map, an r that no face
   could be); it shows how the levers trade r against fresh detail, band by band.
"""

from __future__ import annotations

import argparse
import json
import math
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from dynface.diffusion import Diffusion  # noqa: E402
from dynface.method.blur import gaussian_transfer  # noqa: E402
from dynface.method.dblm import guidance_images, guidance_levels  # noqa: E402
from dynface.method.dsst import DSSTable, face_paths, to_respaced_index  # noqa: E402
from dynface.method.eta import dynamic_eta  # noqa: E402
from dynface.method.fidelity import FidelityLevers, fidelity_levers  # noqa: E402
from dynface.method.guidance import LAM, MU, closed_form_guidance  # noqa: E402
from dynface.method.spectra import bin_frequencies, power_spectrum2d, radial_average  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "fidelity_analysis.json"
FIGURE = REPO / "docs" / "images" / "fidelity_guidance_bands.png"
SIZE = 512
BINS = 64
#: Octave bands in cycles/px at 512 (x512 = cycles across the face crop).
BANDS = [
    (0.0, 1 / 64),
    (1 / 64, 1 / 32),
    (1 / 32, 1 / 16),
    (1 / 16, 1 / 8),
    (1 / 8, 1 / 4),
    (1 / 4, 0.5),
]
S_STARS = [1.2, 2.0, 3.0, 5.4, 8.0, 12.0]
MUS = [0.001, 0.01, 0.1, 1.0]
A_LEVELS = [0.25, 1.0]
FIDELITIES = [0.0, 0.25, 0.5, 0.75, 1.0]


def band_names() -> list[str]:
    return [f"{lo * SIZE:g}-{hi * SIZE:g} c/face" for lo, hi in BANDS]


@lru_cache(maxsize=64)
def _ring_transfer_power(s_levels: tuple[float, ...]) -> torch.Tensor:
    k = gaussian_transfer(torch.tensor(s_levels, dtype=torch.float64), SIZE, SIZE)
    return radial_average(k.square(), SIZE, BINS)


def ring_transfer_power(s_levels: list[float]) -> torch.Tensor:
    """|K_j|^2 of the exact discrete kernels, ring-averaged into BINS radial bins: (J, BINS)."""
    return _ring_transfer_power(tuple(float(v) for v in s_levels))


def band_average(values: torch.Tensor, weight: torch.Tensor) -> list[float]:
    """Weighted average of (..., BINS) values over each band -> list per band (last axis)."""
    freqs = bin_frequencies(BINS)
    out = []
    for lo, hi in BANDS:
        sel = (freqs >= lo) & (freqs < hi)
        w = weight[sel]
        out.append(float((values[..., sel] * w).sum(-1) / w.sum()))
    return out


def bin_weights(power: torch.Tensor) -> torch.Tensor:
    """Weight of each radial bin: face power times the ring's circumference (its 2-D share)."""
    return power * bin_frequencies(BINS)


def data_weight(s_star: float, active: int = 3) -> torch.Tensor:
    """D(f) = sum_j w_j |K_j|^2 over the first `active` targets (equal weights): (BINS,)."""
    s_levels = guidance_levels(torch.tensor([s_star]))[0, :active].tolist()
    return ring_transfer_power(s_levels).mean(0)


def one_step_tables(power: torch.Tensor) -> dict:
    """Part 1: kept share of the x0-vs-r difference per band, closed form and gradient."""
    weight = bin_weights(power)
    rows = []
    for s_star in S_STARS:
        for active in (1, 3):
            d = data_weight(s_star, active)
            for a in A_LEVELS:
                for mu in MUS:
                    kept = 1 - a * d / (d + mu)
                    rows.append(
                        {
                            "s_star": s_star,
                            "active_targets": active,
                            "A": a,
                            "form": "closed",
                            "mu": mu,
                            "kept": band_average(kept, weight),
                        }
                    )
                kept = 1 - 2 * LAM * a * d
                rows.append(
                    {
                        "s_star": s_star,
                        "active_targets": active,
                        "A": a,
                        "form": "gradient",
                        "lam": LAM,
                        "kept": band_average(kept, weight),
                    }
                )
    return {"bands": band_names(), "rows": rows}


def measured_one_step(faces: list[Path], power: torch.Tensor) -> dict | None:
    """Part 2: kept share measured with the implementation on pairs of real clean faces."""
    if len(faces) < 2:
        return None
    from dynface.io import read_image, to_tensor
    from dynface.resize import resize

    imgs = torch.cat([resize(to_tensor(read_image(p).pixels), SIZE).clamp(0, 1) for p in faces])
    imgs = imgs.double() * 2 - 1
    x0, r = imgs[0::2], imgs[1::2]
    n = min(len(x0), len(r))
    x0, r = x0[:n], r[:n]
    weight = bin_weights(power)
    out = []
    for s_star in (1.2, 3.0, 5.4, 12.0):
        s = guidance_levels(torch.full((n,), s_star, dtype=torch.float64))
        g = guidance_images(r, s)
        guided = closed_form_guidance(x0, g, s, torch.ones_like(s, dtype=torch.bool), mu=MU)
        before = radial_average(power_spectrum2d(x0 - r), SIZE, BINS).mean(1)
        after = radial_average(power_spectrum2d(guided - r), SIZE, BINS).mean(1)
        measured = (after / before).mean(0).sqrt()
        theory = 1 - data_weight(s_star) / (data_weight(s_star) + MU)
        out.append(
            {
                "s_star": s_star,
                "mu": MU,
                "A": 1.0,
                "measured_rms_kept": band_average(measured, weight),
                "formula_kept": band_average(theory.abs(), weight),
            }
        )
    return {"pairs": n, "faces": [str(p) for p in faces], "rows": out}


@lru_cache(maxsize=1)
def _dsst() -> DSSTable:
    return DSSTable.default()


@lru_cache(maxsize=1)
def _diffusion() -> Diffusion:
    return Diffusion(1000, "linear", "ddim250")


def chain(power, s_star, levers, mu=MU, a=1.0, form="closed", guided=True) -> dict:
    """Part 3: gain alpha(f) on r and the prior's share of the output after the whole DDIM chain
    (ddim250, the default respacing), per radial bin."""
    dsst, diffusion = _dsst(), _diffusion()
    s_eff = levers.blur_level(torch.tensor([s_star], dtype=torch.float64))
    s_levels = guidance_levels(s_eff)
    t_levels = dsst.start_step(s_levels)[0]
    start = int(to_respaced_index(int(t_levels[0]), diffusion.timesteps))
    eta = float(dynamic_eta(s_eff)[0])
    k2 = ring_transfer_power(s_levels[0].tolist())  # (J, BINS)
    mu_eff, lam_eff = levers.mu(mu), levers.lam(LAM)
    a_eff = float(levers.dgsa(torch.tensor(a)))
    p = power
    ac, acp = diffusion.alphas_cumprod, diffusion.alphas_cumprod_prev
    a0 = float(ac[start])
    alpha = math.sqrt(a0) * k2[0].sqrt()
    beta = torch.full_like(p, 1 - a0)
    for i in range(start, -1, -1):
        at, ap = float(ac[i]), float(acp[i])
        h = math.sqrt(at) * p / (at * p + 1 - at)
        e = (1 - math.sqrt(at) * h) / math.sqrt(1 - at)
        active = (int(diffusion.timesteps[i]) <= t_levels).double()
        d = (active[:, None] * k2).sum(0) / active.sum().clamp_min(1)
        if not guided or active.sum() == 0:
            gamma = torch.zeros_like(p)
        elif form == "closed":
            gamma = a_eff * d / (d + mu_eff)
        else:
            gamma = a_eff * 2 * lam_eff * d
        sigma2 = eta**2 * (1 - ap) / (1 - at) * (1 - at / ap)
        m = math.sqrt(ap) * (1 - gamma) * h + math.sqrt(max(1 - ap - sigma2, 0.0)) * e
        alpha = m * alpha + math.sqrt(ap) * gamma
        beta = m.square() * beta + sigma2
    share = beta / (alpha.square() * p + beta)
    return {
        "alpha": alpha,
        "prior_share": share,
        "start_t": int(diffusion.timesteps[start]),
        "eta": eta,
        "mu": mu_eff,
        "A": a_eff,
    }


def chain_tables(power: torch.Tensor) -> dict:
    """Part 3 per band: defaults, no guidance, gradient form, and the fidelity grid."""
    weight = bin_weights(power)
    neutral = fidelity_levers(0.5)
    rows = []
    for s_star in S_STARS:
        for label, kwargs in (
            ("closed mu=0.01 A=1", {}),
            ("closed mu=0.01 A=0.25", {"a": 0.25}),
            ("closed mu=0.1 A=1", {"mu": 0.1}),
            ("gradient lam=0.5 A=1", {"form": "gradient"}),
            ("no guidance", {"guided": False}),
        ):
            res = chain(power, s_star, neutral, **kwargs)
            rows.append(_chain_row(s_star, label, 0.5, res, weight))
        for f in FIDELITIES:
            for a in A_LEVELS:
                res = chain(power, s_star, fidelity_levers(f), a=a)
                rows.append(_chain_row(s_star, f"fidelity {f} A={a}", f, res, weight))
    return {"bands": band_names(), "rows": rows}


def crossover(share: torch.Tensor) -> float | None:
    """Frequency (cycles/face) where the prior's share first reaches 1/2, interpolated on a log
    axis; None when r keeps every frequency up to Nyquist."""
    cycles = bin_frequencies(BINS) * SIZE
    above = (share >= 0.5).nonzero()
    if len(above) == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(cycles[0])
    s0, s1 = float(share[i - 1]), float(share[i])
    x0, x1 = math.log(cycles[i - 1]), math.log(cycles[i])
    return round(math.exp(x0 + (0.5 - s0) / (s1 - s0) * (x1 - x0)), 1)


def lever_alone(fidelity: float, lever: str) -> FidelityLevers:
    """The levers of `fidelity` with every lever but `lever` ("blur", "mu", "dgsa") left neutral."""
    full = fidelity_levers(fidelity)
    keep = {"blur": ("blur_scale",), "mu": ("mu_scale",), "dgsa": ("dgsa_floor", "dgsa_gain")}
    neutral = {
        "blur_scale": 1.0,
        "mu_scale": 1.0,
        "lam_scale": 1.0,
        "dgsa_floor": 0.0,
        "dgsa_gain": 1.0,
    }
    moved = {name: getattr(full, name) for name in keep[lever]}
    return FidelityLevers(fidelity=fidelity, **{**neutral, **moved})


def crossover_tables(power: torch.Tensor) -> dict:
    """Where r gives way to the prior (cycles/face) per s*: each lever alone, then all of them."""
    rows = []
    for s_star in S_STARS:
        for a in A_LEVELS:
            row = {"s_star": s_star, "A": a, "fidelity": {}, "lever_alone": {}}
            for f in FIDELITIES:
                row["fidelity"][str(f)] = crossover(
                    chain(power, s_star, fidelity_levers(f), a=a)["prior_share"]
                )
            for lever in ("blur", "mu", "dgsa"):
                for f in (0.0, 1.0):
                    res = chain(power, s_star, lever_alone(f, lever), a=a)
                    row["lever_alone"][f"{lever}@{f:g}"] = crossover(res["prior_share"])
            rows.append(row)
    return {"unit": "cycles across the 512 px face; null = r up to Nyquist", "rows": rows}


def _chain_row(s_star, label, fidelity, res, weight) -> dict:
    return {
        "s_star": s_star,
        "setting": label,
        "fidelity": fidelity,
        "start_t": res["start_t"],
        "eta": round(res["eta"], 4),
        "mu": res["mu"],
        "A": round(res["A"], 4),
        "gain_on_r": band_average(res["alpha"], weight),
        "prior_share": band_average(res["prior_share"], weight),
    }


FIDELITY_COLORS = ["#2166ac", "#67a9cf", "#333333", "#ef8a62", "#b2182b"]


def _plot_one_step(ax, ax_mu) -> None:
    """Top row: one guidance step per frequency, by s* (closed vs gradient) and by mu."""
    colors = plt.get_cmap("viridis")
    shown = [1.2, 3.0, 5.4, 12.0]
    for i, s_star in enumerate(shown):
        d, c = data_weight(s_star), colors(i / (len(shown) - 1))
        ax.plot(cycles(), 1 - d / (d + MU), color=c, label=f"s* = {s_star:g}, closed, mu = {MU}")
        ax.plot(cycles(), 1 - 2 * LAM * d, color=c, ls="--", label=f"s* = {s_star:g}, gradient")
    ax.set_title(
        "One step, all 3 targets active, A = 1: share of x0 - r kept\n"
        f"(closed form mu = {MU} solid, gradient lam = {LAM} dashed)"
    )
    d = data_weight(5.4)
    for i, mu in enumerate(MUS):
        c = colors(i / (len(MUS) - 1))
        ax_mu.plot(cycles(), 1 - d / (d + mu), color=c, label=f"closed form mu = {mu:g}")
    ax_mu.plot(cycles(), 1 - 2 * LAM * d, color="k", ls="--", label=f"gradient lam = {LAM}")
    ax_mu.set_title("One step at s* = 5.4, A = 1 (a map A < 1 keeps 1 - A (1 - kept))")


def _plot_chain(power: torch.Tensor, ax, ax_fid) -> None:
    """Bottom row: the prior's share of the output after the whole chain (linear model)."""
    colors = plt.get_cmap("viridis")
    shown = [1.2, 3.0, 5.4, 12.0]
    neutral = fidelity_levers(0.5)
    for i, s_star in enumerate(shown):
        c = colors(i / (len(shown) - 1))
        for a, ls in ((1.0, "-"), (0.25, ":")):
            share = chain(power, s_star, neutral, a=a)["prior_share"]
            ax.plot(cycles(), share, color=c, ls=ls, label=f"s* = {s_star:g}, A = {a:g}")
        share = chain(power, s_star, neutral, guided=False)["prior_share"]
        ax.plot(cycles(), share, color=c, ls="--", alpha=0.5, label=f"s* = {s_star:g}, unguided")
    ax.set_title(
        "Whole chain (linear-Gaussian prior) at the defaults:\n"
        "prior's share of the output power (0 = all from r)"
    )
    for f, c in zip(FIDELITIES, FIDELITY_COLORS, strict=True):
        for s_star, ls in ((5.4, "-"), (12.0, "--")):
            share = chain(power, s_star, fidelity_levers(f), a=0.25)["prior_share"]
            ax_fid.plot(cycles(), share, color=c, ls=ls, label=f"fidelity {f:g}, s* = {s_star:g}")
    ax_fid.set_title(
        "Whole chain, DGSA map at its low end (A = 0.25):\n"
        "prior's share by fidelity (s* = 5.4 solid, 12 dashed)"
    )


def cycles() -> torch.Tensor:
    """Centre of each radial bin in cycles across the 512 px face."""
    return bin_frequencies(BINS) * SIZE


def plot(power: torch.Tensor, path: Path) -> None:
    """The four panels of docs/images/fidelity_guidance_bands.png."""
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5), sharex=True)
    _plot_one_step(axes[0, 0], axes[0, 1])
    _plot_chain(power, axes[1, 0], axes[1, 1])
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if len(ax.lines) > 6 else 1, loc="center left")
    for ax in axes[1]:
        ax.set_xlabel("frequency (cycles across the 512 px face)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=str(REPO.parent / "shared" / "data" / "manifest.csv"))
    parser.add_argument("--count", type=int, default=12, help="real faces for part 2 (pairs)")
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args()
    power = _dsst().power
    faces = face_paths([args.faces])[: args.count] if Path(args.faces).exists() else []
    payload = {
        "benchmark": "fidelity_analysis",
        "spectrum": "mean face power spectrum of the shipped DSST table (218 clean faces)",
        "band_weighting": "face power x ring circumference",
        "one_step": one_step_tables(power),
        "measured_one_step": measured_one_step(faces, power),
        "chain_model": chain_tables(power),
        "crossover": crossover_tables(power),
    }
    if payload["measured_one_step"] is None:
        print(f"part 2 skipped: no clean faces at {args.faces}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    plot(power, args.figure)
    print("written to", args.out, "and", args.figure)


if __name__ == "__main__":
    main()
