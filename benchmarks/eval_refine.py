"""Does refinement generalise? Held-out-channel error of tp.refine against its tie and iterations.

PandA's per-sample refinement fits P_i ≥ 0 on one sample Z_i with A fixed. With every channel
kept as an appearance (R_C = C, so A Aᵀ = I) the objective is a sum over channels,
Σ_c ‖z_c − z_c P_i P_iᵀ‖², so the channels split cleanly: P_i is fitted on a random half of
the channels and its error is measured on the other half. A P_i that only fits the sample's
noise lowers the first error and not the second. For each setting the table gives the
relative error ‖Z_h − Z_h P_i P_iᵀ‖ / ‖Z_h‖ on the fitted and the held-out channels and the
correlation of each refined part with its shared part (mean over parts; and the worst part).

Fits PandA on ``--samples`` generated feature maps per seed (the demo's layer and ranks),
then refines ``--refined`` other samples at each tie strength (the iteration cap fixed) and
at each iteration cap (no tie). Mean ± std over the refined samples (all seeds pooled) and
over the seeds (of each seed's mean).

    python benchmarks/eval_refine.py                         # 3 seeds, 2000 + 100 samples
    python benchmarks/eval_refine.py --smoke                 # seconds
    python benchmarks/eval_refine.py --markdown table.md --figure docs/images/refinement
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
import torch

import tensorpanda as tp
from tensorpanda.adapters import load

TIES = (0.0, 0.01, 0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 10.0, math.inf)
ITERS = (1, 3, 10, 30)


def parse(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", default="dcgan-faces")
    parser.add_argument("--layer", default="main.5", help="the demo's 256×8×8 layer")
    parser.add_argument("--parts", type=int, default=8, help="R_S (R_C = C)")
    parser.add_argument("--samples", type=int, default=2000, help="samples the fit sees")
    parser.add_argument("--refined", type=int, default=100, help="other samples refined")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--solver", default="hals")
    parser.add_argument("--ties", type=float, nargs="+", default=list(TIES))
    parser.add_argument("--iters", type=int, nargs="+", default=list(ITERS))
    parser.add_argument("--max-iter", type=int, default=200, help="cap for the tie sweep")
    parser.add_argument("--markdown", help="write the tables to this file")
    parser.add_argument("--figure", help="folder for the parts of one refined sample")
    parser.add_argument("--save", help="write every per-sample measurement to this .npz")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.refined, args.seeds = 300, 5, [0]
        args.ties, args.iters = [0.0, 1.0, math.inf], [1, 3]
    return args


def features(gan, latents, layer: str) -> np.ndarray:
    """The feature maps (N, C, H, W) at ``layer`` for ``latents``, in float64."""
    batches = gan.features(latents, layer, batch_size=250, progress=False)
    return torch.cat(list(batches)).cpu().numpy().astype(np.float64)


def measure(fit: tp.Factorization, Z: np.ndarray, seen, unseen, **options) -> dict:
    """Per-sample errors (fitted and held-out channels) and part correlations of the P_i that
    tp.refine fits on channels ``seen`` of ``Z`` with ``options``."""
    half = tp.Factorization(A=np.eye(len(seen)), P=fit.P, spatial_shape=fit.spatial_shape)
    N = Z.shape[0]
    Z = Z.reshape(N, Z.shape[1], -1)
    refined = np.asarray(tp.refine(half, Z[:, seen], **options))
    P = np.asarray(fit.P)
    rows = {"seen": [], "held out": [], "corr": [], "worst corr": []}
    for Z_i, P_i in zip(Z, refined, strict=True):
        M = P_i @ P_i.T
        for name, rows_c in (("seen", seen), ("held out", unseen)):
            z = Z_i[rows_c]
            rows[name].append(np.linalg.norm(z - z @ M) / np.linalg.norm(z))
        corr = [_correlation(P_i[:, k], P[:, k]) for k in range(P.shape[1])]
        rows["corr"].append(np.mean(corr))
        rows["worst corr"].append(np.min(corr))
    return {name: np.asarray(values) for name, values in rows.items()}


def _correlation(x, y) -> float:
    """Pearson correlation (1 for two constant columns)."""
    x, y = x - x.mean(), y - y.mean()
    den = np.linalg.norm(x) * np.linalg.norm(y)
    return float(x @ y / den) if den > 0 else 1.0


def run(args) -> dict:
    """{(sweep, value): list over seeds of measure()} for the tie and the iteration sweeps."""
    gan = load(args.adapter)
    results = {}
    for seed in args.seeds:
        start = time.perf_counter()
        Z_fit = features(gan, gan.sample_latents(args.samples, seed=seed), args.layer)
        fit = tp.tucker2(Z_fit, (None, args.parts), solver=args.solver, random_state=seed)
        latents = gan.sample_latents(args.refined, seed=10_000 + seed)  # never seen by the fit
        Z = features(gan, latents, args.layer)
        C = Z.shape[1]
        order = np.random.default_rng(seed).permutation(C)
        seen, unseen = np.sort(order[: C // 2]), np.sort(order[C // 2 :])
        print(f"seed {seed}: fit relative error {fit.relative_error:.4f} "
              f"({fit.info['n_iter']} iterations)", flush=True)
        for tie in args.ties:
            m = measure(fit, Z, seen, unseen, solver=args.solver, tie=tie, max_iter=args.max_iter)
            results.setdefault(("tie", tie), []).append(m)
        for n_iter in args.iters:
            m = measure(fit, Z, seen, unseen, solver=args.solver, tie=0.0, max_iter=n_iter)
            results.setdefault(("max_iter", n_iter), []).append(m)
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
        if args.figure and seed == args.seeds[0]:
            figure(args, gan, fit, latents, Z, seen, results[("tie", 0.0)][-1]["corr"])
    return results


def figure(args, gan, fit, latents, Z, seen, corr) -> None:
    """Parts of the refined sample with the median untied correlation: shared, untied and
    tied with the default, each over the sample's image (``--figure`` folder)."""
    from tensorpanda.app import figures

    j = int(np.argsort(corr)[len(corr) // 2])
    image = gan.generate(latents[j : j + 1])
    half = tp.Factorization(A=np.eye(len(seen)), P=fit.P, spatial_shape=fit.spatial_shape)
    z = Z[j : j + 1, seen]
    shown = {"shared": fit.P,
             "untied": tp.refine(half, z, solver=args.solver, tie=0.0, max_iter=args.max_iter)[0],
             "tied": tp.refine(half, z, solver=args.solver, max_iter=args.max_iter)[0]}
    os.makedirs(args.figure, exist_ok=True)
    for name, P in shown.items():
        maps = np.asarray(P).T.reshape(args.parts, *fit.spatial_shape)
        title = f"{name} parts (refined sample {j}, seed {args.seeds[0]})"
        figures.parts_figure(maps, image, os.path.join(args.figure, f"parts-{name}.png"),
                             title=title, overwrite=True)


def _cell(per_seed: list, name: str) -> str:
    """'mean ± std over samples (± std over seeds)'."""
    pooled = np.concatenate([m[name] for m in per_seed])
    seed_means = [m[name].mean() for m in per_seed]
    spread = f" ({np.std(seed_means):.4f})" if len(per_seed) > 1 else ""
    return f"{pooled.mean():.4f} ± {pooled.std():.4f}{spread}"


def _best(results: dict) -> tuple:
    """The setting with the lowest mean held-out error (all seeds pooled)."""
    return min(results, key=lambda key: np.mean([m["held out"].mean() for m in results[key]]))


def _paired(per_seed: list, reference: list) -> str:
    """Held-out error minus the reference's, sample by sample: mean ± standard error."""
    delta = np.concatenate([m["held out"] - r["held out"] for m, r in zip(per_seed, reference,
                                                                           strict=True)])
    return f"{delta.mean():+.4f} ± {delta.std(ddof=1) / np.sqrt(len(delta)):.4f}"


def table(results: dict, sweep: str, label: str) -> list[str]:
    """One markdown table for ``sweep`` ("tie" or "max_iter")."""
    names = ("seen", "held out", "corr", "worst corr")
    best = _best(results)
    lines = [f"| {label} | error, fitted channels | error, held-out channels "
             f"| held-out error − best ({best[0]} = {best[1]:g}) "
             "| correlation with shared parts | worst part's correlation |",
             "|---|---|---|---|---|---|"]
    for (kind, value), per_seed in results.items():
        if kind == sweep:
            shown = "∞ (shared P)" if value == math.inf else f"{value:g}"
            cells = [_cell(per_seed, n) for n in names]
            cells.insert(2, _paired(per_seed, results[best]))
            lines.append(f"| {shown} | " + " | ".join(cells) + " |")
    return lines


def save(path: str, results: dict) -> None:
    """Every per-sample measurement, as ``{sweep}={value}/seed{k}/{name}`` arrays (npz)."""
    arrays = {f"{kind}={value:g}/seed{k}/{name}": values
              for (kind, value), per_seed in results.items()
              for k, m in enumerate(per_seed) for name, values in m.items()}
    np.savez_compressed(path, **arrays)


def report(args, results: dict, seconds: float) -> str:
    """The tables, with the command and the machine."""
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}"
    return "\n".join([
        f"Generator `{args.adapter}`, layer `{args.layer}`, R_S = {args.parts}, R_C = C, "
        f"fit on {args.samples} samples per seed, {args.refined} other samples refined "
        f"(solver `{args.solver}`), seeds {args.seeds}; {machine}; {seconds:.0f} s.",
        "Cells: mean ± std over the refined samples of all seeds (std over the seeds' means); "
        "the difference to the best setting is paired, sample by sample: mean ± standard "
        "error.",
        "",
        f"Tie strength (max_iter = {args.max_iter}):",
        "",
        *table(results, "tie", "tie"),
        "",
        "Iteration cap (tie = 0):",
        "",
        *table(results, "max_iter", "max_iter"),
        "",
    ])


def main(argv=None) -> int:
    """Run both sweeps, print the tables and write them if asked."""
    args = parse(argv)
    torch.manual_seed(0)
    start = time.perf_counter()
    results = run(args)
    text = report(args, results, time.perf_counter() - start)
    print(text)
    if args.save:
        save(args.save, results)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
