"""What PandA's edits add on DCGAN faces: masked baselines, fixed regions, spread over fits.

For each of ``--seeds`` seeds, PandA is fitted on its own samples and every method edits the
same regions of the same samples (see tensorpanda.app.eval_protocol):

- regions no method chose: boxes fixed once from the mean image (`REGIONS`), and,
  reported apart and labelled as such, PandA's parts nearest two landmarks;
- masked feature edits at one feature-space norm: PandA's appearances, random directions,
  the top principal direction of the region's features, the mean feature difference; each
  painted into PandA's part most inside the region and into the region itself;
- SeFa and GANSpace, latent edits at the median whole-image change of the masked edits;
- each method keeps its direction with the lowest ROIR on selection samples and is measured
  on other samples: ROIR, change inside, uniform (tint) share, consistency; plus part
  stability across seeds, and the removal and saliency checks of tensorpanda.app.eval_removal.

``--search`` adds a small one-factor-at-a-time search over PandA's choices (layer, R_S,
R_C, refinement, the smoothness prior when tucker2 has it): PandA's appearance against a
random direction in the same part.

    python benchmarks/eval_locality.py --smoke                 # about a minute
    python benchmarks/eval_locality.py --search --markdown docs/results.md \
        --figure docs/images/results                           # the page (about 15 min)
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import tensorpanda as tp
from tensorpanda.adapters import load
from tensorpanda.app import eval_report as report
from tensorpanda.app import figures
from tensorpanda.app.eval_measures import matched_congruence
from tensorpanda.app.eval_protocol import (
    EvalSetting,
    Region,
    congruence_between_fits,
    run_seed,
)
from tensorpanda.app.eval_removal import removal_and_saliency

# Boxes (rows, columns; half-open) fixed once from the mean of 1,000 faces (seed 12345,
# docs/images/results/regions.png): where the mean face has its eyes, nose and mouth.
REGIONS = {
    "eye band": (slice(22, 34), slice(14, 50)),
    "nose": (slice(34, 46), slice(26, 38)),
    "mouth": (slice(47, 57), slice(22, 42)),
}
# PandA's parts reported apart: the part whose mass centre is nearest (row, column) in [0, 1]
PART_TARGETS = {"PandA part nearest the eyes": (0.44, 0.5),
                "PandA part nearest the mouth": (0.8, 0.5)}
SEARCH = {  # name -> changes to the setting
    "default: main.5, R_S = 8, R_C = C": {},
    "R_S = 4": {"n_parts": 4},
    "R_S = 16": {"n_parts": 16},
    "R_C = 32 < C": {"rank_c": 32},
    "layer main.8 (128×16×16)": {"layer": "main.8"},
    "parts refined per sample": {"refine": True},
}
MACHINE = "x86_64, 2 shared CPU cores"


def box_mask(box, size=(64, 64)) -> np.ndarray:
    """A boolean image mask that is True inside ``box`` (rows, columns)."""
    mask = np.zeros(size, dtype=bool)
    mask[box] = True
    return mask


def fixed_regions(names=None) -> list[Region]:
    """The regions no method chose (all, or those named)."""
    return [Region(n, box_mask(b)) for n, b in REGIONS.items() if names is None or n in names]


def evaluate(gan, setting: EvalSetting, seeds, part_targets=PART_TARGETS, names=None,
             checks: bool = True):
    """Every seed's rows, fits, and removal/saliency checks."""
    def sample(n, seed):
        return gan.sample_latents(n, seed=seed)

    rows, fits, checked, runs = [], [], {}, []
    for seed in seeds:
        run = run_seed(gan, setting, fixed_regions(names), part_targets, seed, sample)
        rows += run.rows
        fits.append(run.fit)
        runs.append(run)
        if checks:
            for name, value in removal_and_saliency(gan, setting.layer, run.fit, run).items():
                checked.setdefault(name, []).append(value)
    return rows, fits, checked, runs


def random_congruence(shape, pairs: int, seed: int = 0) -> list[float]:
    """Matched congruence of pairs of uniform random non-negative parts: the chance level."""
    rng = np.random.default_rng(seed)
    return [matched_congruence(rng.random(shape), rng.random(shape)) for _ in range(pairs)]


def search(gan, base: EvalSetting, seeds, only: str | None = None) -> list[str]:
    """The one-factor-at-a-time search, as Markdown lines (only the choices whose name
    contains ``only``, if given)."""
    configs = dict(SEARCH)
    if "smoothness" in inspect.signature(tp.tucker2).parameters:
        configs["smoothness prior (smoothness=1.0)"] = {"smoothness": 1.0}
        configs["layer main.8 with the smoothness prior (smoothness=1.0)"] = {
            "layer": "main.8", "smoothness": 1.0}
    configs = {k: v for k, v in configs.items() if only is None or only in k}
    lines = ["| choice | ROIR: PandA | ROIR: random | consistency: PandA | "
             "consistency: random | uniform share: PandA | uniform share: random | "
             "part congruence across fits |", "|---" * 8 + "|"]
    for name, change in configs.items():
        setting = replace(base, latent=False, families=("panda", "random"),
                          paints=("PandA part",), n_select=min(base.n_select, 16),
                          n_eval=min(base.n_eval, 32), **change)
        rows, fits, _, _ = evaluate(gan, setting, seeds, part_targets={},
                                    names=("eye band", "mouth"), checks=False)
        stats = per_seed_means(rows)
        congruence = congruence_between_fits(fits)
        cells = [stats[(m, v)] for v in ("roir", "consistency", "uniform")
                 for m in ("panda", "random")]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {spread(congruence)} |")
        print(lines[-1], flush=True)
    return lines


def per_seed_means(rows) -> dict:
    """{(method, measure): 'mean ± std'} of each seed's mean over regions."""
    out = {}
    for method in {r.method for r in rows}:
        for measure in ("roir", "consistency", "uniform"):
            by_seed: dict = {}
            for r in rows:
                if r.method == method:
                    by_seed.setdefault(r.seed, []).append(getattr(r, measure))
            out[(method, measure)] = spread([np.mean(v) for v in by_seed.values()])
    return out


def spread(values) -> str:
    """``mean ± std`` (ddof 1) of a list."""
    x = np.asarray(values, dtype=np.float64)
    return f"{x.mean():.2f} ± {x.std(ddof=1):.2f}" if len(x) > 1 else f"{x.mean():.2f}"


def main(argv=None) -> int:
    """Run the evaluation, print the page, and write it (and the grids) if asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (about a minute)")
    parser.add_argument("--seeds", type=int, default=5, help="fits, each on its own samples")
    parser.add_argument("--search", action="store_true", help="also search PandA's choices")
    parser.add_argument("--markdown", help="write the page to this file")
    parser.add_argument("--figure", help="write the image grids into this folder")
    parser.add_argument("--search-only", action="store_true",
                        help="only the search, printed (e.g. after tucker2 gains an option)")
    parser.add_argument("--only", help="with --search-only: the choices whose name has this")
    args = parser.parse_args(argv)
    setting, seeds = EvalSetting(), list(range(args.seeds))
    if args.smoke:
        setting = EvalSetting(n_fit=200, n_probe=40, n_select=6, n_eval=6, n_candidates=2,
                              n_directions=1, ganspace_samples=200)
        seeds = list(range(min(args.seeds, 2)))
    started = time.perf_counter()
    gan = load("dcgan-faces")
    if args.search_only:
        lines = search(gan, setting, seeds, args.only)
        print("\n".join(lines))
        print(f"whole run: {(time.perf_counter() - started) / 60:.1f} min")
        return 0
    rows, fits, checked, runs = evaluate(gan, setting, seeds)
    searched = search(gan, setting, seeds) if args.search else []
    total = time.perf_counter() - started
    lines = page(rows, fits, checked, searched, setting, seeds, total, argv)
    if args.figure:
        lines += write_figures(Path(args.figure), gan, rows, runs[0],
                               Path(args.markdown or ".").parent)
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


def page(rows, fits, checked, searched, setting, seeds, total, argv) -> list[str]:
    """The results page as Markdown lines (tables only; the reading is in results_notes)."""
    regions = list(dict.fromkeys(r.region for r in rows))
    command = " ".join(["python", "benchmarks/eval_locality.py",
                        *(sys.argv[1:] if argv is None else argv)])
    reference = [f"{np.sqrt((~m).sum() / m.sum()):.2f}"
                 for m in (box_mask(REGIONS[n]) for n in regions if n in REGIONS)]
    reference += ["—"] * (len(regions) - len(reference))
    lines = [
        "# What PandA's edits add: masked baselines, fixed regions, spread over fits",
        "",
        f"Command: `{command}` (under `nice`). Machine: {MACHINE}; generator `dcgan-faces` "
        f"(the demo's); whole run: {total / 60:.1f} min.",
        "",
        f"Every number is a mean ± std over {len(seeds)} fits (seeds {seeds[0]}–{seeds[-1]}), "
        f"each fit on its own {setting.n_fit} samples at `{setting.layer}` (R_S = "
        f"{setting.n_parts}, R_C = {setting.rank_c or 'C'}), each measured on its own "
        f"{setting.n_eval} evaluation samples after choosing directions on {setting.n_select} "
        "other selection samples. Masked edits add $t s \\, d \\hat p^\\top$ at the layer "
        f"(d a unit direction, s the mean norm of a channel fibre, t = {setting.strength}): "
        "within a column and paint map every masked method has the same feature-space norm. "
        f"PandA and the random direction each try {setting.n_candidates} directions, the top "
        "PC both signs, the mean difference one; SeFa and GANSpace try their "
        f"{setting.n_directions} leading directions × 2 signs, each scaled to the median "
        "whole-image change of the masked edits. Each keeps its lowest-ROIR direction on the "
        "selection samples.",
        "",
        "Regions no method chose (rows, columns of the 64×64 image, half-open), fixed once "
        "from the mean of 1,000 faces: " + "; ".join(
            f"{n} {b[0].start}:{b[0].stop}, {b[1].start}:{b[1].stop}"
            for n, b in REGIONS.items()) + ". The last columns are PandA's own parts (its "
        "mask p̂ ≥ ¼ upsampled), the footprint of the very map PandA paints: they favour "
        "masked edits and are reported apart.",
        "",
    ]
    for measure, title in report.MEASURES.items():
        lines += [f"## {title}", ""]
        lines += report.measure_table(rows, regions, measure,
                                      reference if measure == "roir" else None)
        lines.append("")
    lines += ["## PandA's appearance against the masked baselines (counted automatically)",
              "", *report.verdicts(rows, regions), ""]
    congruence = congruence_between_fits(fits)
    chance = random_congruence(np.asarray(fits[0].to_numpy().P).shape, len(congruence))
    lines += ["## Part stability across fits", "",
              *report.dict_table({
                  "matched congruence of parts, every pair of fits": congruence,
                  "the same for uniform random non-negative parts (chance)": chance}), ""]
    if checked:
        lines += ["## Removal and saliency checks", "", *report.dict_table(checked), ""]
    if searched:
        lines += ["## Search over PandA's choices", "",
                  "Eye band and mouth, painted in PandA's part; 16 selection and 32 evaluation "
                  "samples per fit; each fit's mean over the two regions, then mean ± std over "
                  "fits.",
                  "", *searched, ""]
    notes = Path(__file__).with_name("results_notes.md")
    if notes.exists():
        lines += notes.read_text(encoding="utf-8").splitlines()
    return lines


def write_figures(folder: Path, gan, rows, run, page_folder: Path) -> list[str]:
    """The regions on the mean face, and one grid per fixed region (seed 0); Markdown links."""
    folder.mkdir(parents=True, exist_ok=True)
    mean = gan.generate(gan.sample_latents(1000, seed=12345), batch_size=250).mean(0)
    maps = np.stack([box_mask(b).astype(float) for b in REGIONS.values()])
    tiles = figures.overlay(mean[None].repeat(len(maps), 1, 1, 1), maps, strength=0.5)
    figures.save_png(figures.grid(tiles, len(maps), upscale=4), folder / "regions.png",
                     overwrite=True)
    shown = run.evaluation[:6]
    images = gan.generate(shown)
    lines = ["## The edits, seed 0", "", f"![the fixed regions]"
             f"({os.path.relpath(folder / 'regions.png', page_folder)})", ""]
    for name, box in REGIONS.items():
        chosen = [r for r in rows if r.seed == 0 and r.region == name]
        tiles = [figures.overlay(images, box_mask(box).astype(float), strength=0.5)]
        tiles += [figures.images_hwc(r.edit(shown, r.alpha)) for r in chosen]
        path = folder / f"{name.replace(' ', '-')}.png"
        figures.save_png(figures.grid(np.concatenate(tiles), 6, upscale=2), path,
                         overwrite=True)
        order = "; ".join(report.label(r.paint, r.method) for r in chosen)
        lines += [f"### {name}", "", f"Rows: the region; {order}.", "",
                  f"![{name}]({os.path.relpath(path, page_folder)})", ""]
    return lines


if __name__ == "__main__":
    sys.exit(main())
