"""The spatial smoothness prior on a real generator: parts, their roughness and the error it costs.

Fits PandA (R_C = C, ``--parts`` parts, the default solver) on the DCGAN-faces generator's
16×16 layer (``main.8``, 128 channels) for each ``smoothness`` over ``--seeds`` sets of
``--samples`` generated feature maps, and prints a Markdown table (mean ± std over the seeds):

- the data error √(f_data / Σ‖Z_i‖²), f_data = Σ_i ‖Z_i − Z_i P Pᵀ‖² computed here from P
  (the prior's penalty is not included);
- the roughness pᵀ L p of each unit-norm part (L the grid Laplacian: the summed squared
  differences between 4-neighbours), mean and max over the parts;
- the high-frequency share of each part: its energy in the orthonormal 2-D DCT-II
  coefficients (k_y, k_x) with k_y + k_x ≥ H (the half of the spectrum on the checkerboard's
  side of the anti-diagonal; a smooth blob puts almost none there, a checkerboard all of
  it, white noise about half); a part is *checkerboard-like* when that share exceeds 1/4;
- iterations, passes over the data, and the fit's wall-clock and CPU time.

It also measures how the features' energy splits over the four stride-2 phases
(y mod 2, x mod 2) at ``main.8`` (16×16) and ``main.11`` (32×32), and saves a figure of the
parts without and with one smoothness (``--shown``), each labelled with its roughness.

    python benchmarks/fig_smoothness.py                                  # ~3 min, 2 cores
    python benchmarks/fig_smoothness.py --figure docs/images/smoothness.png
    python benchmarks/fig_smoothness.py --smoke                          # seconds
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from scipy.fft import dctn
from scipy.optimize import linear_sum_assignment

import tensorpanda as tp
from tensorpanda.adapters import load
from tensorpanda.smoothness import laplacian_times

SMOOTHNESS = (0.0, 0.3, 1.0, 3.0)
CHECKERBOARD_SHARE = 0.25
UPSCALE, PAD = 6, 8  # figure: pixels per position; white between the parts (wide enough
# that parts touching the map's edges do not seem to run into their neighbours)


def parse(argv=None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", default="dcgan-faces")
    parser.add_argument("--layer", default="main.8", help="the 128×16×16 layer")
    parser.add_argument("--phase-layers", nargs="+", default=["main.8", "main.11"])
    parser.add_argument("--parts", type=int, default=8, help="R_S (R_C = C)")
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--phase-samples", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--smoothness", type=float, nargs="+", default=list(SMOOTHNESS))
    parser.add_argument("--shown", type=float, default=1.0, help="smoothness in the figure")
    parser.add_argument("--figure", help="write the parts figure (.png) here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.phase_samples, args.seeds = 300, 100, [0]
    return args


def features(gan, n: int, seed: int, layer: str) -> np.ndarray:
    """Feature maps (N, C, H, W) of ``n`` samples drawn with ``seed``, float32."""
    latents = gan.sample_latents(n, seed=seed)
    batches = gan.features(latents, layer, batch_size=250, progress=False)
    return torch.cat(list(batches)).cpu().numpy()


def unit_parts(P: np.ndarray) -> np.ndarray:
    """The columns of P scaled to unit norm."""
    return P / np.maximum(np.linalg.norm(P, axis=0), 1e-300)


def roughness_per_part(P: np.ndarray, shape: tuple) -> np.ndarray:
    """pᵀ L p for each unit-norm column p of P."""
    U = unit_parts(P)
    return np.sum(U * np.asarray(laplacian_times(U, shape)), axis=0)


def high_frequency_share(P: np.ndarray, shape: tuple) -> np.ndarray:
    """Each part's share of energy in the DCT-II coefficients with k_y + k_x ≥ H."""
    H, W = shape
    maps = unit_parts(P).T.reshape(-1, H, W)
    coefficients = dctn(maps, type=2, norm="ortho", axes=(1, 2)) ** 2
    ky, kx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    return coefficients[:, ky + kx >= H].sum(axis=1) / coefficients.sum(axis=(1, 2))


def data_error(Z: np.ndarray, P: np.ndarray) -> float:
    """√(Σ_i ‖Z_i − Z_i P Pᵀ‖² / Σ_i ‖Z_i‖²) with R_C = C (A Aᵀ = I), in float64."""
    N, C = Z.shape[:2]
    Z = Z.reshape(N * C, -1).astype(np.float64)
    residual = Z - (Z @ P) @ P.T
    return float(np.sqrt(np.sum(residual**2) / np.sum(Z**2)))


def fit_one(Z: np.ndarray, parts: int, smoothness: float, seed: int) -> dict:
    """One fit and its measurements."""
    start, cpu = time.perf_counter(), time.process_time()
    fit = tp.tucker2(Z, (None, parts), smoothness=smoothness, random_state=seed)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    P = np.asarray(fit.P, dtype=np.float64)
    shape = tuple(fit.spatial_shape)
    rough = roughness_per_part(P, shape)
    share = high_frequency_share(P, shape)
    error = data_error(Z, P)
    if smoothness:  # the solver's own split of its objective agrees with the direct one
        sq_norm = float(np.sum(Z.astype(np.float64) ** 2))
        reported = np.sqrt(fit.info["data_objective"] / sq_norm)
        assert abs(reported - error) < 1e-3, (reported, error)
    return {"P": P, "shape": shape, "error": error, "rough": rough, "share": share,
            "iterations": fit.info["n_iter"], "passes": fit.info["n_passes"],
            "seconds": seconds, "cpu": cpu}


def phase_shares(Z: np.ndarray) -> np.ndarray:
    """The share of Σ‖Z‖² at each stride-2 phase (y mod 2, x mod 2): a 2×2 array."""
    energy = np.sum(Z.astype(np.float64) ** 2, axis=(0, 1))
    shares = np.array([[energy[a::2, b::2].sum() for b in (0, 1)] for a in (0, 1)])
    return shares / shares.sum()


def neighbour_correlation(Z: np.ndarray, offset: tuple) -> float:
    """Mean correlation K_S[s, t] / √(K_S[s, s] K_S[t, t]) of the spatial Gram
    K_S = Σ_i Z_iᵀ Z_i over the position pairs t = s + (dy, dx) and t = s + (dx, dy)."""
    H, W = Z.shape[2:]
    Z = Z.astype(np.float64)
    values = []
    for dy, dx in (offset, offset[::-1]):  # along x, then the same along y
        first = Z[:, :, : H - dy, : W - dx]
        second = Z[:, :, dy:, dx:]
        cross = np.einsum("nchw,nchw->hw", first, second)
        norms = np.sqrt(np.einsum("nchw,nchw->hw", first, first)
                        * np.einsum("nchw,nchw->hw", second, second))
        values.append(np.mean(cross / np.maximum(norms, 1e-300)))
    return float(np.mean(values))


def _pm(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    return f"{values.mean():.3g} ± {values.std():.2g}"


def table(runs: dict, smoothness: list) -> str:
    """The Markdown table, one row per smoothness (mean ± std over the seeds)."""
    lines = [
        "| smoothness | data rel. error | roughness, mean | roughness, max | "
        f"checkerboard-like parts (HF share > {CHECKERBOARD_SHARE:g}) | iterations | passes "
        "| wall time (s) | CPU time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in smoothness:
        rs = runs[s]
        lines.append(
            f"| {s:g} | {_pm([r['error'] for r in rs])} "
            f"| {_pm([r['rough'].mean() for r in rs])} | {_pm([r['rough'].max() for r in rs])} "
            f"| {_pm([np.sum(r['share'] > CHECKERBOARD_SHARE) for r in rs])} "
            f"| {_pm([r['iterations'] for r in rs])} | {_pm([r['passes'] for r in rs])} "
            f"| {_pm([r['seconds'] for r in rs])} | {_pm([r['cpu'] for r in rs])} |"
        )
    return "\n".join(lines)


def matched(reference: np.ndarray, P: np.ndarray) -> np.ndarray:
    """The columns of P reordered to match ``reference`` (largest total cosine)."""
    M = unit_parts(reference).T @ unit_parts(P)
    _, order = linear_sum_assignment(-M)
    return P[:, order]


def figure(without: dict, with_prior: dict, shown: float, path: str) -> None:
    """Parts without (top) and with (bottom) the prior, each with its roughness above it."""
    from tensorpanda.app import figures

    H, W = without["shape"]
    P_with = matched(without["P"], with_prior["P"])
    rows = []
    for name, P in (("smoothness 0", without["P"]), (f"smoothness {shown:g}", P_with)):
        maps = unit_parts(P).T.reshape(-1, H, W)
        maps = maps / np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-300)
        rough = roughness_per_part(P, (H, W))
        tiles = figures.colorize(maps).repeat(UPSCALE, axis=1).repeat(UPSCALE, axis=2)
        rows.append(figures.annotate(
            figures.grid(tiles, columns=maps.shape[0], pad=PAD), (H * UPSCALE, W * UPSCALE),
            pad=PAD, columns=[f"{r:.2f}" for r in rough], rows=[name]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    title = (f"DCGAN-faces main.8 (16×16), {P.shape[1]} parts; "
             "label: roughness pᵀLp of the unit-norm part")
    image = figures.annotate(np.concatenate(rows), (0, 0), title=title)
    figures.save_png(image, path, overwrite=True, text={
        "Title": title, "Rows": f"smoothness 0 | smoothness {shown:g}"})


def main(argv=None) -> None:
    args = parse(argv)
    torch.set_num_threads(1)
    clock = time.perf_counter()
    gan = load(args.adapter)
    runs = {s: [] for s in args.smoothness}
    for seed in args.seeds:
        Z = features(gan, args.samples, seed, args.layer)
        for s in args.smoothness:
            runs[s].append(fit_one(Z, args.parts, s, seed))
    print(f"{args.adapter} {args.layer}, R_C = C, R_S = {args.parts}, N = {args.samples} "
          f"per seed, seeds {args.seeds}, default solver\n")
    print(table(runs, args.smoothness))
    print("\nEnergy share per stride-2 phase (y mod 2, x mod 2), "
          f"{args.phase_samples} samples × {len(args.seeds)} seeds:\n")
    print("| layer | (0,0) | (0,1) | (1,0) | (1,1) | largest deviation from 25% | "
          "Gram correlation at offset 1 / 2 / diagonal |")
    print("|---|---|---|---|---|---|---|")
    for layer in args.phase_layers:
        maps = [features(gan, args.phase_samples, 100 + seed, layer) for seed in args.seeds]
        shares = np.array([phase_shares(Z) for Z in maps])
        cells = " | ".join(f"{100 * shares[:, a, b].mean():.1f}% ± "
                           f"{100 * shares[:, a, b].std():.1f}" for a in (0, 1) for b in (0, 1))
        deviation = 100 * np.abs(shares.mean(axis=0) - 0.25).max()
        correlation = " / ".join(
            f"{np.mean([neighbour_correlation(Z, offset) for Z in maps]):.3f}"
            for offset in ((0, 1), (0, 2), (1, 1)))
        print(f"| {layer} {gan.layers[layer]} | {cells} | {deviation:.1f} points "
              f"| {correlation} |")
    if args.figure and args.shown in runs:
        figure(runs[0.0][0], runs[args.shown][0], args.shown, args.figure)
        print(f"\nfigure: {args.figure} (seed {args.seeds[0]})")
    print(f"\n{platform.machine()}, {torch.get_num_threads()} torch thread; "
          f"total {time.perf_counter() - clock:.0f} s")


if __name__ == "__main__":
    main()
