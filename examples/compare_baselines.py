"""PandA's local edit beside SeFa's and GANSpace's global latent directions.

All three edit the DCGAN-faces generator so as to change the mouth region. For SeFa
(eigenvectors of the first layer's weight) and GANSpace (PCA of early activations carried
back to z) the direction of the first ``--directions`` that is most local is kept, to give
them their best chance. Locality is ROIR (lower is more local) on held-out samples.

    python examples/compare_baselines.py --samples 2000 --out compare-baselines.png
"""

import argparse

import numpy as np
import torch
from _figure import save_grid
from gan_edit import part_nearest

import tensorpanda as tp
from tensorpanda.adapters import Latents, load


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2000, help="fit and GANSpace samples")
    parser.add_argument("--directions", type=int, default=10)
    parser.add_argument("--held-out", type=int, default=32)
    parser.add_argument("--out", default="compare-baselines.png")
    args = parser.parse_args()
    torch.set_num_threads(2)

    gan, layer = load("dcgan-faces"), "main.5"
    latents = gan.sample_latents(args.samples, seed=0)
    fit = tp.tucker2(gan.features(latents, layer, batch_size=250), (None, 8), random_state=0)

    held_out = gan.sample_latents(args.held_out, seed=1)
    original = gan.generate(held_out)
    k = part_nearest(fit, 0.75, 0.5)  # the part over the mouth
    mask = np.asarray(tp.part_mask(fit, k, size=tuple(original.shape[2:])))

    def roir(edited):
        return tp.roir(original, edited, mask)

    # PandA: the appearance most present in the part, painted into it
    Z = torch.cat(list(gan.features(held_out, layer))).numpy()
    scores = tp.region_scores(fit, Z, np.asarray(tp.part_map(fit, k)) >= 0.5)
    j = int(np.argmax(np.abs(scores)))
    delta = tp.edit_direction(fit, j, k, alpha=1.5 * np.sign(scores[j]), units="feature_norm")
    edits = {"PandA": gan.generate(held_out, layer,
                                   edit=torch.as_tensor(np.asarray(delta)).float())}

    # SeFa and GANSpace: directions u in z; an edit is z + 3 u (z ~ N(0, I))
    sefa = tp.sefa(gan.latent_projection().detach().numpy(), args.directions)
    early = torch.cat([b.reshape(len(b), -1) for b in gan.features(latents, "main.2",
                                                                      batch_size=250)])
    ganspace = tp.ganspace(latents.z.reshape(len(latents), -1).numpy(), early.numpy(),
                           args.directions)
    for name, directions in (("SeFa", sefa), ("GANSpace", ganspace)):
        best = None
        for u in torch.as_tensor(np.asarray(directions.U)).float():
            for sign in (1, -1):
                edited = gan.generate(Latents(held_out.z + 3.0 * sign * u))
                score = float(np.nanmean(roir(edited)))
                if best is None or score < best[0]:
                    best = (score, edited)
        edits[name] = best[1]

    print(f"ROIR on {args.held_out} held-out faces, mouth part {k} (lower is more local):")
    for name, edited in edits.items():
        mean, std = tp.summarize(roir(edited))
        print(f"  {name:9s} {mean:.2f} ± {std:.2f}")
    shown = 5
    rows = [original[:shown]] + [edited[:shown] for edited in edits.values()]
    labels = ["original"] + [f"{n} ({tp.summarize(roir(e))[0]:.2f})" for n, e in edits.items()]
    save_grid(torch.stack(rows).numpy(), args.out, rows=labels,
              columns=[f"face {i}" for i in range(shown)],
              title="Editing the mouth: PandA (local) against the most local SeFa and "
                    "GANSpace directions (ROIR)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
