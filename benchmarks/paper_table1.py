"""The PandA paper's Table 1 protocol on your generator: ROIR of local edits in your regions.

Give a StyleGAN2 FFHQ checkpoint (any adapter works) and one mask per region (a .npy boolean
array or a black-and-white image, at the generator's image size). PandA is fitted at
``--layer``; for each region PandA paints its appearances into its part most inside the
region, and the baselines edit the same samples: random directions, the top principal
direction of the region's features and the mean feature difference, painted into the same
part at the same feature-space norm, and SeFa and GANSpace in the latent (W+ on style-based
generators). Each method keeps its lowest-ROIR direction on ``--select`` samples and is
measured on ``--samples`` others (10,000 in the paper). The table is printed in the paper's
form: a row per method, a column per region, mean ROIR (± std over the samples, or over the
fits with ``--seeds`` > 1). StyleSpace, ReSeFa and LowRankGAN, also in the paper's table,
are not implemented here.

    python benchmarks/paper_table1.py --adapter stylegan2 --checkpoint ffhq.pkl \\
        --layer b32.conv1 --adapter-arg truncation=0.7 --device cuda --batch-size 16 \\
        --mask eyes=eyes.png --mask nose=nose.png --mask mouth=mouth.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from tensorpanda.app import eval_report as report
from tensorpanda.app.cli import Generator
from tensorpanda.app.eval_protocol import EvalSetting, Region, run_seed


def read_mask(path: str, size: tuple[int, int]) -> np.ndarray:
    """A boolean (H, W) mask from a .npy array or an image (pixels brighter than half)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"mask file not found: {file}")
    if file.suffix == ".npy":
        mask = np.load(file, allow_pickle=False)
    else:
        from PIL import Image

        mask = np.asarray(Image.open(file).convert("L"), dtype=np.float64) / 255 > 0.5
    mask = np.asarray(mask).astype(bool)
    if mask.shape != tuple(size):
        shape = "×".join(map(str, mask.shape))
        raise ValueError(f"the mask {file} is {shape} but the generator's images are "
                         f"{size[0]}×{size[1]}: resize the mask to the image size")
    if not mask.any() or mask.all():
        raise ValueError(f"the mask {file} must be True somewhere but not everywhere")
    return mask


def parse_masks(pairs: list[str], size) -> list[Region]:
    """``NAME=PATH`` pairs as regions."""
    regions = []
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--mask takes NAME=PATH (e.g. eyes=eyes.png), got {pair!r}")
        regions.append(Region(name, read_mask(path, size)))
    return regions


def table(rows, regions, seeds: int) -> list[str]:
    """The paper's Table 1 layout: a row per method, mean ROIR per region."""
    order = [("PandA part", "panda", "PandA"),
             ("PandA part", "random", "random direction in PandA's part"),
             ("PandA part", "pca", "top PC of the region's features in PandA's part"),
             ("PandA part", "mean difference", "mean feature difference in PandA's part"),
             ("the region", "panda", "PandA appearance in the mask itself"),
             ("the region", "random", "random direction in the mask itself"),
             ("latent", "GANSpace", "GANSpace"), ("latent", "SeFa", "SeFa")]
    spread = "fits" if seeds > 1 else "samples"
    lines = ["| Method | " + " | ".join(regions) + " |", "|---" * (len(regions) + 1) + "|"]
    for paint, method, name in order:
        cells = []
        for region in regions:
            found = [r for r in rows if (r.region, r.paint, r.method) == (region, paint, method)]
            if not found:
                break
            values = np.array([r.roir for r in found])
            std = values.std(ddof=1) if seeds > 1 else found[0].roir_std
            cells.append(f"{values.mean():.2f} ± {std:.2f}")
        if len(cells) == len(regions):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"ROIR, lower is more local: mean ± std over the {spread}."]
    return lines


def parser() -> argparse.ArgumentParser:
    """The command's flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--adapter", default="stylegan2")
    p.add_argument("--checkpoint", help="the generator's checkpoint file")
    p.add_argument("--adapter-arg", action="append", metavar="KEY=VALUE",
                   help="an adapter option, e.g. truncation=0.7")
    p.add_argument("--device", help="e.g. cuda")
    p.add_argument("--layer", help="PandA's layer (default: the adapter's)")
    p.add_argument("--mask", action="append", required=True, metavar="NAME=PATH",
                   help="a region: a .npy boolean array or an image, at the image size")
    p.add_argument("--samples", type=int, default=10000, help="evaluation samples")
    p.add_argument("--select", type=int, default=100, help="selection samples")
    p.add_argument("--fit-samples", type=int, default=5000)
    p.add_argument("--parts", type=int, default=8, help="R_S")
    p.add_argument("--rank-c", type=int, help="R_C (default: every channel)")
    p.add_argument("--candidates", type=int, default=8,
                   help="appearances and random directions tried per region")
    p.add_argument("--directions", type=int, default=10, help="SeFa/GANSpace directions")
    p.add_argument("--ganspace-samples", type=int, default=10000)
    p.add_argument("--sefa-layers", help="W+ indices SeFa factorises and edits, e.g. 0:4")
    p.add_argument("--seeds", type=int, default=1, help="fits, each on its own samples")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-images", type=int, default=256, help="images held at once")
    p.add_argument("--paint-region", action="store_true",
                   help="also paint the masked edits into the masks themselves")
    p.add_argument("--markdown", help="also write the table to this file")
    return p


def main(argv=None) -> int:
    """Run the protocol and print the table."""
    args = parser().parse_args(argv)
    generator = Generator(args.adapter, args.device, args.checkpoint, args.adapter_arg)
    gan = generator.adapter
    size = tuple(gan.generate(generator.sample(1, 0), batch_size=1).shape[2:])
    regions = parse_masks(args.mask, size)
    sefa_layers = None
    if args.sefa_layers:
        start, _, stop = args.sefa_layers.partition(":")
        sefa_layers = (slice(int(start), int(stop)) if stop else
                       [int(i) for i in start.split(",")])
    setting = EvalSetting(
        layer=gan.resolve_layer(args.layer), n_parts=args.parts, rank_c=args.rank_c,
        n_fit=args.fit_samples, n_probe=min(500, args.fit_samples), n_select=args.select,
        n_eval=args.samples, n_candidates=args.candidates, n_directions=args.directions,
        ganspace_samples=args.ganspace_samples, sefa_layers=sefa_layers,
        batch_size=args.batch_size, max_images=args.max_images,
        paints=("PandA part", "the region") if args.paint_region else ("PandA part",))
    started, rows = time.perf_counter(), []
    for seed in range(args.seeds):
        rows += run_seed(gan, setting, regions, {}, seed, generator.sample).rows
    lines = [f"Table 1 protocol on `{args.adapter}` at `{setting.layer}`: {args.samples} "
             f"samples, {args.seeds} fit(s), {time.perf_counter() - started:.0f} s.", "",
             *table(rows, [r.name for r in regions], args.seeds), "",
             "Uniform share and consistency of the same edits:", "",
             *report.measure_table(rows, [r.name for r in regions], "uniform"), "",
             *report.measure_table(rows, [r.name for r in regions], "consistency")]
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
