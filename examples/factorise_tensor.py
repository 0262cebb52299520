"""Factorise a tensor of your own: N samples of C channels over an H × W grid.

Without --data it makes one with 4 planted parts (blobs on a 12 × 12 grid, each sample
mixing random appearances into them) and checks that PandA finds them again.

    python examples/factorise_tensor.py                      # planted parts
    python examples/factorise_tensor.py --data Z.npy --parts 8   # your (N, C, H, W) array
"""

import argparse
from pathlib import Path

import numpy as np
from _figure import save_grid

import tensorpanda as tp


def planted(n: int, channels: int = 16, size: int = 12, seed: int = 0):
    """Z_i = B_i P0ᵀ + noise: 4 non-negative blob parts P0, random appearances B_i."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size] / (size - 1)
    centres = [(0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)]
    parts = np.stack([np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 0.02) for r, c in centres])
    B = rng.standard_normal((n, channels, len(parts)))
    Z = np.einsum("ncr,rhw->nchw", B, parts) + 0.05 * rng.standard_normal((n, channels, size, size))
    return Z, parts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="an .npy file of shape (N, C, H, W)")
    parser.add_argument("--samples", type=int, default=500, help="planted data: N")
    parser.add_argument("--parts", type=int, default=4, help="R_S")
    parser.add_argument("--out", default="factorise-tensor.png")
    args = parser.parse_args()

    if args.data:
        Z, truth = np.load(args.data, mmap_mode="r"), None  # read in batches, never all at once
    else:
        Z, truth = planted(args.samples)

    # R_C = None keeps every channel as an appearance; R_S parts, non-negative
    fit = tp.tucker2(Z, rank=(None, args.parts), random_state=0)
    print(f"data {Z.shape}: {fit.info['n_iter']} iterations, "
          f"relative error {fit.relative_error:.3f}")
    fit.save(Path(args.out).with_suffix(".safetensors"), overwrite=True)

    found = np.asarray(fit.parts)  # (R_S, H, W), each part scaled to a peak of 1 below
    found = found / np.maximum(found.max(axis=(1, 2), keepdims=True), 1e-12)
    rows, names = [found], ["found"]
    if truth is not None:
        # each planted part against the found part it best matches (cosine similarity)
        flat_t, flat_f = truth.reshape(len(truth), -1), found.reshape(len(found), -1)
        cosine = (flat_t @ flat_f.T) / np.outer(np.linalg.norm(flat_t, axis=1),
                                                np.linalg.norm(flat_f, axis=1))
        match = cosine.argmax(axis=1)
        print("planted part -> found part (cosine):",
              ", ".join(f"{k}->{m} ({cosine[k, m]:.3f})" for k, m in enumerate(match)))
        rows, names = [truth, found[match]], ["planted", "found"]
    save_grid(np.stack(rows), args.out, scale=6, rows=names,
              columns=[f"part {k}" for k in range(len(rows[0]))],
              title=f"PandA parts of a {'x'.join(map(str, Z.shape))} tensor, "
                    f"relative error {fit.relative_error:.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
