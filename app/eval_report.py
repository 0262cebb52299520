"""Markdown tables of an evaluation over seeds (rows of `tensorpanda.app.eval_protocol`)."""

from __future__ import annotations

import numpy as np

from .eval_protocol import summarize_rows

METHOD_NAMES = {
    "panda": "PandA appearance",
    "random": "random direction",
    "pca": "top PC of the region's features",
    "mean difference": "mean feature difference (channel-wise)",
}
PAINTS = ("PandA part", "the region")
MEASURES = {
    "roir": "ROIR (lower: more of the change inside the region)",
    "inside": "RMS pixel change inside the region (pixels in [0, 1])",
    "uniform": "uniform share: the part of the change inside that is one colour added to "
               "the whole region (1: a pure tint or brightness shift; 0: structure only)",
    "consistency": "consistency: mean cosine between a sample's structural change and the "
                   "others' average (1: every face changes alike; 0: unrelated changes)",
}


def cell(stat) -> str:
    """``mean ± std`` of a (mean, std, n) triple."""
    mean, std, n = stat
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f}"


def row_keys(rows) -> list[tuple[str, str]]:
    """(paint, method) in display order: masked methods per paint, then latent ones."""
    families = list(dict.fromkeys(r.method for r in rows if r.paint != "latent"))
    latent = list(dict.fromkeys(r.method for r in rows if r.paint == "latent"))
    return [(p, f) for p in PAINTS for f in families] + [("latent", m) for m in latent]


def label(paint: str, method: str) -> str:
    """A table row's name."""
    if paint == "latent":
        return f"{method} (latent edit, whole image)"
    where = "in PandA's part" if paint == "PandA part" else "in the region itself"
    return f"{METHOD_NAMES.get(method, method)}, {where}"


def measure_table(rows, regions, measure: str, reference=None) -> list[str]:
    """One Markdown table: a row per (paint, method), a column per region."""
    stats = summarize_rows(rows)
    lines = ["| method | " + " | ".join(regions) + " |", "|---" * (len(regions) + 1) + "|"]
    for paint, method in row_keys(rows):
        cells = []
        for region in regions:
            stat = stats.get((region, paint, method))
            if stat is None:
                cells.append("(as above)" if paint == "the region" else "—")
            else:
                cells.append(cell(stat[measure]))
        lines.append(f"| {label(paint, method)} | " + " | ".join(cells) + " |")
    if reference is not None:
        lines.append("| uniform change (reference) | " + " | ".join(reference) + " |")
    return lines


def verdicts(rows, regions) -> list[str]:
    """Where PandA's appearance beats each masked baseline, painted in the same map: the
    count of (region, paint) cells where its mean over fits is better by more than the two
    stds added (a clear win), better, or worse."""
    stats = summarize_rows(rows)
    lines = []
    for measure, better in (("roir", -1), ("consistency", 1), ("uniform", -1)):
        for baseline in ("random", "pca", "mean difference"):
            clear = wins = total = 0
            for region in regions:
                for paint in PAINTS:
                    a, b = stats.get((region, paint, "panda")), stats.get((region, paint,
                                                                            baseline))
                    if a is None or b is None:
                        continue
                    (ma, sa, _), (mb, sb, _) = a[measure], b[measure]
                    total += 1
                    wins += better * (ma - mb) > 0
                    clear += better * (ma - mb) > sa + sb
            if total:
                lines.append(f"- {measure}: PandA appearance better than the "
                             f"{METHOD_NAMES[baseline]} in {wins} of {total} region/paint "
                             f"cells, clearly (by more than the two stds) in {clear}.")
    return lines


def dict_table(values: dict, header=("measure", "mean ± std over fits")) -> list[str]:
    """A two-column table from {name: [value per seed]}."""
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    for name, xs in values.items():
        x = np.asarray(xs, dtype=np.float64)
        std = x.std(ddof=1) if len(x) > 1 else float("nan")
        lines.append(f"| {name} | {x.mean():.3f} ± {std:.3f} |")
    return lines
