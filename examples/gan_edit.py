"""A GAN from its checkpoint to a local edit: load, stream features, fit, save, edit.

The DCGAN-faces generator's weights come with the gan-face-generate package; any other
generator loads the same way from its checkpoint file, e.g.
``load("stylegan2", checkpoint="stylegan2-ffhq-256x256.pkl")`` (see docs/generators.md).

    python examples/gan_edit.py --samples 2000 --out gan-edit.png
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from _figure import save_grid

import tensorpanda as tp
from tensorpanda.adapters import load


def part_nearest(fit, row: float, col: float) -> int:
    """The part whose mass centre is nearest (row, col), both in [0, 1]."""
    maps = np.asarray(fit.parts, dtype=np.float64)
    H, W = maps.shape[1:]
    mass = maps.sum(axis=(1, 2))
    r = maps.sum(axis=2) @ ((np.arange(H) + 0.5) / H) / mass
    c = maps.sum(axis=1) @ ((np.arange(W) + 0.5) / W) / mass
    return int(np.argmin((r - row) ** 2 + (c - col) ** 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--layer", default="main.5", help="256×8×8; see choose_layer_and_ranks.py")
    parser.add_argument("--out", default="gan-edit.png")
    args = parser.parse_args()
    torch.set_num_threads(2)

    # 1. the generator, and its feature maps at one layer streamed in batches
    gan = load("dcgan-faces")
    latents = gan.sample_latents(args.samples, seed=0)
    stream = gan.features(latents, args.layer, batch_size=250)

    # 2. fit PandA: every channel an appearance (R_C = C), 8 parts; save the factors
    fit = tp.tucker2(stream, rank=(None, 8), random_state=0)
    factors_file = Path(args.out).with_suffix(".safetensors")
    fit.save(factors_file, overwrite=True)
    fit = tp.load(factors_file)  # what `tensorpanda edit` would read
    print(f"fitted {args.layer} on {args.samples} samples: relative error "
          f"{fit.relative_error:.3f}, saved to {factors_file}")

    # 3. the part over the eyes, and the appearance most present there in new samples
    shown = gan.sample_latents(4, seed=1)
    Z = torch.cat(list(gan.features(shown, args.layer))).numpy()
    k = part_nearest(fit, 0.42, 0.5)
    scores = tp.region_scores(fit, Z, np.asarray(tp.part_map(fit, k)) >= 0.5)
    j = int(np.argmax(np.abs(scores)))
    sign = float(np.sign(scores[j]))  # eigenvector signs are arbitrary: add more of it

    # 4. paint it into the part: alpha in units of the layer's typical feature norm
    unit = torch.as_tensor(np.asarray(tp.edit_direction(fit, j, k, alpha=sign,
                                                        units="feature_norm"))).float()
    alphas = [-1.5, -0.75, 0.0, 0.75, 1.5]
    frames = [gan.generate(shown, args.layer, edit=a * unit) for a in alphas]
    mask = np.asarray(tp.part_mask(fit, k, size=tuple(frames[0].shape[2:])))
    roir = tp.roir(frames[2], frames[-1], mask)
    print(f"appearance {j} into part {k} (nearest the eyes): ROIR at alpha 1.5 = "
          f"{np.mean(roir):.2f} ± {np.std(roir):.2f} (lower is more local)")

    images = torch.stack(frames, dim=1).numpy()  # (samples, alphas, 3, H, W)
    save_grid(images, args.out, rows=[f"seed 1, #{i}" for i in range(len(images))],
              columns=[f"alpha {a:+g}" for a in alphas],
              title=f"PandA: appearance {j} into part {k} (nearest the eyes), "
                    f"dcgan-faces {args.layer}, alpha in units of the typical feature norm")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
