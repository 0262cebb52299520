"""Locality of edits on the DCGAN-faces generator: PandA against SeFa and GANSpace.

For several regions (masks from PandA's learned parts, and fixed boxes around the eyes and
the mouth of the aligned 64×64 faces), each method picks its best direction on a selection
set at a matched edit strength (equal mean change inside the region), and ROIR is measured
on a separate evaluation set. Prints the table in the layout of the PandA paper's Table 1.

    python benchmarks/eval_locality.py                       # 500 samples per region
    python benchmarks/eval_locality.py --smoke               # seconds
    python benchmarks/eval_locality.py --markdown docs/results.md --figure docs/images/results
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
from tensorpanda.adapters import load
from tensorpanda.app import figures
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
    args = parser.parse_args(argv)
    setting = Setting()
    n_eval, n_select = args.samples, 100
    part_regions = PART_REGIONS
    if args.smoke:
        setting = Setting(n_directions=2, n_appearances=1, fit_samples=300,
                          ganspace_samples=400)
        n_eval, n_select = 24, 12
        part_regions = {"mouth": LANDMARKS["mouth"]}

    gan = load("dcgan-faces")
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    panda, fit = panda_method(gan, LAYER, setting, args.seed)
    methods = [panda, sefa_method(gan, setting), ganspace_method(gan, setting, args.seed)]
    regions = {
        f"{name} (part {part_near(fit, where)})":
            np.asarray(tp.part_mask(fit, part_near(fit, where), size=(64, 64)))
        for name, where in part_regions.items()
    }
    regions.update({name: box_mask(box) for name, box in
                    (BOXES.items() if not args.smoke else list(BOXES.items())[1:])})
    selection = gan.sample_latents(n_select, seed=args.seed + 1000)
    evaluation = gan.sample_latents(n_eval, seed=args.seed + 2000)
    results = evaluate(methods, regions, selection, evaluation, gan, setting)
    total = time.perf_counter() - started

    lines = table(methods, regions, results, setting, n_eval, n_select, total, argv, args)
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


def table(methods, regions, results, setting, n_eval, n_select, total, argv, args):
    """The results page as Markdown lines: ROIR per method and region, then the chosen edits."""
    by = {(r.method, r.region): r for r in results}
    names = list(regions)
    lines = [
        "# Locality of edits: PandA, SeFa and GANSpace on DCGAN faces",
        "",
        "Command: `" + " ".join(["python", "benchmarks/eval_locality.py",
                                 *(sys.argv[1:] if argv is None else argv)]) + "`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}. "
        f"Generator `dcgan-faces`; PandA fitted at `{LAYER}` (R_C = C, R_S = "
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
