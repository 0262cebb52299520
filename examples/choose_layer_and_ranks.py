"""Choose the layer and the ranks: fit each candidate, compare on held-out samples, look.

For each layer of the DCGAN-faces generator and each number of parts R_S, fits PandA
(R_C = C) and reports the share of held-out feature energy the factors explain (the
estimator's ``score``; higher is better) and the time. More parts always explain more,
so the figure matters as much: parts should be spatially coherent regions, not
checkerboards or single cells.

    python examples/choose_layer_and_ranks.py --samples 1000 --out choose-layer.png
"""

import argparse
import time

import numpy as np
import torch
from _figure import save_grid

import tensorpanda as tp
from tensorpanda.adapters import load


def features(gan, latents, layer) -> np.ndarray:
    return torch.cat(list(gan.features(latents, layer, batch_size=250))).numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1000, help="fit samples")
    parser.add_argument("--held-out", type=int, default=200, help="scoring samples")
    parser.add_argument("--layers", nargs="+", default=["main.2", "main.5", "main.8"])
    parser.add_argument("--parts", type=int, nargs="+", default=[4, 8, 16], help="R_S values")
    parser.add_argument("--shown", type=int, default=8, help="R_S of the parts in the figure")
    parser.add_argument("--out", default="choose-layer.png")
    args = parser.parse_args()
    torch.set_num_threads(2)

    gan = load("dcgan-faces")
    train = gan.sample_latents(args.samples, seed=0)
    test = gan.sample_latents(args.held_out, seed=1)
    print("layer    (C, H, W)     R_S  held-out score  seconds")
    rows, labels = [], []
    for layer in args.layers:
        Z, Z_test = features(gan, train, layer), features(gan, test, layer)
        for R in args.parts:
            if R > Z.shape[2] * Z.shape[3]:
                continue  # no more parts than positions
            start = time.perf_counter()
            est = tp.Tucker2(rank=(None, R), random_state=0).fit(Z)
            seconds = time.perf_counter() - start
            print(f"{layer:8s} {str(Z.shape[1:]):13s} {R:4d}  {est.score(Z_test):14.3f}"
                  f"  {seconds:7.2f}")
            if R == args.shown:
                parts = np.asarray(est.parts_)  # (R, H, W), shown at 64×64, nearest
                parts = parts / np.maximum(parts.max(axis=(1, 2), keepdims=True), 1e-12)
                rows.append(np.kron(parts, np.ones((1, 64 // parts.shape[1],
                                                    64 // parts.shape[2]))))
                labels.append(f"{layer} {Z.shape[1]}x{Z.shape[2]}x{Z.shape[3]}")
    save_grid(np.stack(rows), args.out, rows=labels,
              columns=[f"part {k}" for k in range(args.shown)],
              title=f"PandA parts at each layer, R_S = {args.shown}, R_C = C, "
                    f"{args.samples} samples")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
