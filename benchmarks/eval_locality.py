"""Locality of edits on a generator (DCGAN faces by default): PandA against SeFa and GANSpace.

For several regions (masks from PandA's learned parts, and on DCGAN faces fixed boxes around
the eyes and the mouth of the aligned 64×64 faces), each method picks its best direction on
a selection set at a matched edit strength (equal mean change inside the region), and ROIR
is measured on a separate evaluation set. Prints the table in the layout of the PandA
paper's Table 1. Any adapter runs it: on a style-based generator SeFa and GANSpace edit W+
(see tensorpanda.app.locality), and the regions are the masks of PandA's parts.

    python benchmarks/eval_locality.py                       # 500 samples per region
    python benchmarks/eval_locality.py --smoke               # seconds
    python benchmarks/eval_locality.py --markdown docs/results.md --figure docs/images/results
    python benchmarks/eval_locality.py --adapter stylegan2 --checkpoint ffhq.pkl \
        --layer b32.conv1 --adapter-arg truncation=0.7 --sefa-layers 0:4
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import tensorpanda as tp
from tensorpanda.app import figures
from tensorpanda.app.cli import Generator
from tensorpanda.app.demo import LANDMARKS, part_near
from tensorpanda.app.locality import (
    Setting,
    evaluate,
    ganspace_method,
    panda_method,
    sefa_method,
)

LAYER = "main.5"
# Boxes (rows, columns) around the eyes and the mouth of the aligned 64×64 faces.
BOXES = {
    "eyes (box)": (slice(20, 34), slice(12, 52)),
    "mouth (box)": (slice(42, 56), slice(20, 44)),
}
PART_REGIONS = {"eyes": LANDMARKS["eyes"], "mouth": LANDMARKS["mouth"],
                "hair line": (0.08, 0.5), "left cheek": (0.5, 0.2)}


def box_mask(box, size=(64, 64)) -> np.ndarray:
    """A boolean image mask that is True inside ``box`` (rows, columns)."""
    mask = np.zeros(size, dtype=bool)
    mask[box] = True
    return mask


def main(argv=None) -> int:
    """Run the evaluation, print the table, and write it (and the grids) if asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--samples", type=int, default=500, help="evaluation samples")
    parser.add_argument("--markdown", help="write the table to this file")
    parser.add_argument("--figure", help="write the image grids into this folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--adapter", default="dcgan-faces", help="the generator")
    parser.add_argument("--checkpoint", help="its checkpoint file")
    parser.add_argument("--adapter-arg", action="append", metavar="KEY=VALUE",
                        help="an adapter option (as for the tensorpanda command)")
    parser.add_argument("--layer", help=f"PandA's layer (default {LAYER} on DCGAN faces, "
                                         "else the adapter's default)")
    parser.add_argument("--sefa-layers", help="style-based generators: W+ indices SeFa "
                                              "factorises and edits, e.g. 0:4 (default all)")
    args = parser.parse_args(argv)
    setting = Setting()
    n_eval, n_select = args.samples, 100
    part_regions = PART_REGIONS
    if args.smoke:
        setting = Setting(n_directions=2, n_appearances=1, fit_samples=300,
                          ganspace_samples=400)
        n_eval, n_select = 24, 12
        part_regions = {"mouth": LANDMARKS["mouth"]}

    if args.sefa_layers:
        start, _, stop = args.sefa_layers.partition(":")
        setting.sefa_layers = (slice(int(start), int(stop)) if stop else
                               [int(i) for i in start.split(",")])
    faces = args.adapter == "dcgan-faces"
    if args.smoke and not faces:
        setting.batch_size = 8
    generator = Generator(args.adapter, checkpoint=args.checkpoint, pairs=args.adapter_arg)
    gan = generator.adapter
    layer = gan.resolve_layer(args.layer or (LAYER if faces else None))
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    panda, fit = panda_method(gan, layer, setting, args.seed)
    methods = [panda, sefa_method(gan, setting), ganspace_method(gan, setting, args.seed)]
    size = tuple(gan.generate(gan.sample_latents(1)).shape[2:])
    if faces:
        regions = {
            f"{name} (part {part_near(fit, where)})":
                np.asarray(tp.part_mask(fit, part_near(fit, where), size=size))
            for name, where in part_regions.items()
        }
        regions.update({name: box_mask(box) for name, box in
                        (BOXES.items() if not args.smoke else list(BOXES.items())[1:])})
    else:  # no landmarks known: the masks of PandA's first parts
        regions = {f"part {k}": np.asarray(tp.part_mask(fit, k, size=size))
                   for k in range(1 if args.smoke else min(4, fit.rank[1]))}
    selection = generator.sample(n_select, args.seed + 1000)
    evaluation = generator.sample(n_eval, args.seed + 2000)
    results = evaluate(methods, regions, selection, evaluation, gan, setting)
    total = time.perf_counter() - started

    lines = table(methods, regions, results, setting, n_eval, n_select, total, argv,
                  gan.name, layer)
    print("\n".join(lines))
    if args.figure:
        grids = write_figures(Path(args.figure), gan, regions, results, evaluation, setting)
        lines += figure_links(grids, methods, Path(args.markdown or ".").parent)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


def figure_links(grids: dict, methods, page_folder: Path) -> list[str]:
    """Markdown image links to the grids, relative to the page that shows them."""
    order = ", ".join(["the region"] + [m.name for m in methods])
    lines = ["", f"Each grid shows, row by row: {order}, on the same 6 evaluation samples.", ""]
    for name, path in grids.items():
        lines += [f"### {name}", "", f"![{name}]({os.path.relpath(path, page_folder)})", ""]
    return lines


def table(methods, regions, results, setting, n_eval, n_select, total, argv, name, layer):
    """The results page as Markdown lines: ROIR per method and region, then the chosen edits."""
    by = {(r.method, r.region): r for r in results}
    names = list(regions)
    title = "DCGAN faces" if name == "dcgan-faces" else name
    lines = [
        f"# Locality of edits: PandA, SeFa and GANSpace on {title}",
        "",
        "Command: `" + " ".join(["python", "benchmarks/eval_locality.py",
                                 *(sys.argv[1:] if argv is None else argv)]) + "`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}. "
        f"Generator `{name}`; PandA fitted at `{layer}` (R_C = C, R_S = "
        f"{setting.n_parts}, {setting.fit_samples} samples). Every method picks its best "
        f"direction per region on {n_select} selection samples, at a matched strength (RMS "
        f"pixel change {setting.target_change} inside the region); ROIR (lower is more local) "
        f"is measured on {n_eval} other samples. Whole run: {total:.0f} s.",
        "",
        "| method | " + " | ".join(names) + " | time to find directions (s) |",
        "|---" * (len(names) + 2) + "|",
    ]
    for method in methods:
        cells = []
        for name in names:
            mean, std = tp.summarize(by[(method.name, name)].roir)
            cells.append(f"{mean:.2f} ± {std:.2f}")
        lines.append(f"| {method.name} | " + " | ".join(cells) + f" | {method.seconds:.2f} |")
    # A change spread evenly over the image scores sqrt(outside area / inside area): the
    # ROIR of an edit that ignores the region altogether.
    uniform = [f"{np.sqrt((~m).sum() / m.sum()):.2f}" for m in regions.values()]
    lines.append("| uniform change (reference) | " + " | ".join(uniform) + " | |")
    lines += ["", "The edit each method chose:", "",
              "| region | method | edit | strength α | inside change |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.region} | {r.method} | {r.label} | {r.alpha:.3g} | "
                     f"{r.inside_change:.3f} |")
    return lines


def write_figures(folder: Path, gan, regions, results, evaluation, setting) -> dict:
    """One grid per region (the region, then each method's edit on 6 samples); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    shown = evaluation[:6]
    images = gan.generate(shown)
    for name, region in regions.items():
        rows = [figures.overlay(images, region.astype(float), strength=0.5)]
        for r in (r for r in results if r.region == name):
            rows.append(figures.images_hwc(r.edit(shown, r.alpha)))
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        paths[name] = folder / f"{slug}.png"
        figures.save_png(figures.grid(np.concatenate(rows), 6, upscale=2), paths[name],
                         overwrite=True)
    return paths


if __name__ == "__main__":
    sys.exit(main())
