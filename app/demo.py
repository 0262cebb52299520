"""The demo: parts and appearances of the DCGAN-faces generator, end to end.

Samples the generator, fits PandA at one layer on the streamed feature maps, then writes a
folder of figures (the parts, local edits of the parts nearest the eyes and the mouth, the
border's appearance painted into the eyes' part and its saliency maps) and a short summary
with the numbers behind them. docs/results.md measures what these edits do: the "removal"
of the paper recolours the part rather than filling in background here, and the border
appearance's saliency is a fixed border-versus-centre pattern on these aligned faces.

    tensorpanda demo --out demo-output
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import tensorpanda as tp
from tensorpanda._checks import atomic_write, file_in_the_way
from tensorpanda.adapters import load

from . import figures

logger = logging.getLogger(__name__)

# Where the aligned 64×64 faces have their eyes and mouth, as (row, column) in [0, 1].
LANDMARKS = {"eyes": (0.42, 0.5), "mouth": (0.75, 0.5)}


@dataclass
class DemoConfig:
    """What the demo fits, and how hard it edits (chosen by looking at the results)."""

    adapter: str = "dcgan-faces"
    layer: str = "main.5"  # the 256×8×8 layer: deeper ones give checkerboard parts
    n_samples: int = 2000  # samples the fit streams over
    n_parts: int = 8  # R_S; every channel is kept as an appearance (R_C = C)
    solver: str = "hals"
    seed: int = 0  # of the fit and the samples; the held-out samples use seed + 1
    batch_size: int = 250
    n_shown: int = 6  # held-out samples shown in the figures
    n_measured: int = 100  # held-out samples on which each edit's ROIR is measured
    # edit strengths in units of the layer's typical feature norm (tp.feature_scale: the
    # root-mean-square norm of a channel fibre), as the command line's --alpha
    strengths: tuple = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
    removal_strength: float = 2.0  # background painted into the eyes, same units
    timings: dict = field(default_factory=dict)  # filled by run(): step -> seconds


def part_near(factors: tp.Factorization, where: tuple[float, float]) -> int:
    """The part whose mass centre lies closest to ``where`` (row, column in [0, 1])."""
    maps = np.asarray(factors.to_numpy().parts, dtype=np.float64)
    R, H, W = maps.shape
    rows, cols = (np.arange(H) + 0.5) / H, (np.arange(W) + 0.5) / W
    mass = maps.sum(axis=(1, 2))
    centre_r = (maps.sum(axis=2) @ rows) / mass
    centre_c = (maps.sum(axis=1) @ cols) / mass
    return int(np.argmin((centre_r - where[0]) ** 2 + (centre_c - where[1]) ** 2))


def border_region(shape: tuple[int, int], width: int = 1) -> np.ndarray:
    """Mask of the outer ``width`` rows and columns: where aligned faces leave the background."""
    mask = np.ones(shape, dtype=bool)
    mask[width:-width, width:-width] = False
    return mask


def appearance_for(factors: tp.Factorization, Z, region) -> tuple[int, float]:
    """The appearance most present in ``region`` of the maps ``Z``, and its sign.

    Eigenvector signs are arbitrary: painting ``sign · a_j`` adds more of what lives there.
    """
    scores = tp.region_scores(factors, Z, region)
    j = int(np.argmax(np.abs(scores)))
    return j, float(np.sign(scores[j]))


def run(out: str | Path, config: DemoConfig | None = None, overwrite: bool = False) -> Path:
    """Run the demo into the folder ``out`` (refused if not empty, unless ``overwrite``).

    Fits PandA on ``config.n_samples`` streamed feature maps, then on held-out samples
    writes ``parts.png``, ``edit-near-eyes.png``/``.gif``, ``edit-near-mouth.png``/``.gif``
    (the
    appearance most present in the part nearest each landmark, painted into that part at
    ``config.strengths``), ``border-appearance-in-eyes-part.png`` (the appearance most
    present on the map's border painted into the part nearest the eyes: a recolouring, not
    a removal, see docs/results.md), ``saliency-border-appearance.png`` (that appearance's
    saliency: a fixed border-versus-centre pattern on these faces), ``factors.safetensors``
    and ``summary.md``.
    """
    config = config or DemoConfig()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder: name a folder for the demo's outputs")
    blocker = file_in_the_way(out.parent)
    if blocker is not None:
        raise FileNotFoundError(
            f"the folder {out} cannot be created: {blocker} is a file, not a folder"
        )
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass overwrite=True to reuse it")
    out.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()

    gan = load(config.adapter)
    latents = gan.sample_latents(config.n_samples, seed=config.seed)
    stream = gan.features(latents, config.layer, batch_size=config.batch_size)
    start = time.perf_counter()
    fit = tp.tucker2(stream, (None, config.n_parts), solver=config.solver,
                     random_state=config.seed)
    config.timings["fit, feature extraction included"] = time.perf_counter() - start
    fit.info.update(adapter=config.adapter, layer=config.layer, seed=config.seed)
    fit.save(out / "factors.safetensors", overwrite=overwrite)

    # held-out samples: the first few are shown, all of them measure locality (ROIR)
    held_out = gan.sample_latents(config.n_measured, seed=config.seed + 1)
    shown = held_out[: config.n_shown]
    Z = torch.cat(list(gan.features(held_out, config.layer, batch_size=config.batch_size)))
    Z = Z.cpu().numpy()
    images = gan.generate(held_out, batch_size=config.batch_size)
    source, method = f"{config.adapter} {config.layer}", f"PandA ({config.solver})"
    figures.parts_figure(fit.parts, images[: config.n_shown], out / "parts.png",
                         overwrite=overwrite,
                         title=f"{method} parts, R_S = {fit.rank[1]}, {source}")

    rows = []
    for region, where in LANDMARKS.items():
        k = part_near(fit, where)
        j, sign = appearance_for(fit, Z, np.asarray(tp.part_map(fit, k)) >= 0.5)
        unit = torch.as_tensor(np.asarray(
            tp.edit_direction(fit, j, k, alpha=sign, units="feature_norm")))
        frames = torch.stack([gan.generate(shown, config.layer, edit=a * unit.float())
                              for a in config.strengths])
        title = (f"{method}: appearance {'−' if sign < 0 else ''}a_{j} into part {k} "
                 f"(nearest the {region}), α in units of σ, {source}")
        figures.edit_strip(frames, out / f"edit-near-{region}.png", overwrite=overwrite,
                           alphas=config.strengths, title=title)
        figures.edit_gif(frames, out / f"edit-near-{region}.gif", overwrite=overwrite,
                         alphas=config.strengths, title=title)
        edited = gan.generate(held_out, config.layer, edit=unit.float(),
                              batch_size=config.batch_size)
        mask = np.asarray(tp.part_mask(fit, k, size=tuple(images.shape[2:])))
        rows.append((region, k, j, sign, *tp.summarize(tp.roir(images, edited, mask))))

    background, sign = appearance_for(fit, Z, border_region(fit.spatial_shape, width=2))
    k = part_near(fit, LANDMARKS["eyes"])
    unit = torch.as_tensor(np.asarray(
        tp.edit_direction(fit, background, k, alpha=sign, units="feature_norm")))
    removal = gan.generate(shown, config.layer, edit=config.removal_strength * unit.float())
    figures.edit_strip(torch.stack([images[: config.n_shown], removal]),
                       out / "border-appearance-in-eyes-part.png",
                       overwrite=overwrite,
                       alphas=["original", figures.alpha_label(config.removal_strength)],
                       title=f"{method}: border appearance a_{background} painted into "
                             f"part {k} (nearest the eyes), {source}")
    maps = tp.saliency(fit, sign * Z[: config.n_shown], background,
                       size=tuple(images.shape[2:]))
    figures.saliency_figure(images[: config.n_shown], np.asarray(maps),
                            out / "saliency-border-appearance.png", overwrite=overwrite,
                            title=f"{method} saliency of the border appearance "
                                  f"a_{background}, {source}")

    config.timings["total"] = time.perf_counter() - clock
    _summary(out, config, fit, rows, background, overwrite)
    return out


def _summary(out, config, fit, rows, background, overwrite) -> None:
    """Write ``summary.md``: the fit, the timings and each edit's locality."""
    lines = [
        "# tensorpanda demo",
        "",
        f"- generator: `{config.adapter}`, layer `{config.layer}` "
        f"(C = {fit.n_channels}, H × W = {' × '.join(map(str, fit.spatial_shape))})",
        f"- samples: {fit.info['n_samples']}, ranks (R_C, R_S) = {fit.rank}, "
        f"solver `{config.solver}`, {fit.info['n_iter']} iterations",
        f"- relative error ‖Z − Ẑ‖/‖Z‖ = {fit.relative_error:.4f}",
        *(f"- time, {name}: {seconds:.1f} s" for name, seconds in config.timings.items()),
        "",
        f"Locality of each edit at strength 1 (ROIR, PandA's Table 1 measure; lower is more "
        f"local) on {config.n_measured} held-out samples, with the part's own mask "
        "(p̂ ≥ 0.25, upsampled to the image):",
        "",
        "| edit | part | appearance | ROIR (mean ± std) |",
        "|---|---|---|---|",
        *(f"| {r} | {k} | {'−' if sg < 0 else ''}a_{j} | {m:.2f} ± {sd:.2f} |"
          for r, k, j, sg, m, sd in rows),
        "",
        f"Background appearance (used for the removal and the saliency maps): {background}.",
        "",
        "Files: parts.png, edit-near-eyes.png/.gif, edit-near-mouth.png/.gif, "
        "border-appearance-in-eyes-part.png, saliency-border-appearance.png, "
        "factors.safetensors.",
    ]
    text = "\n".join(lines) + "\n"
    # written as the figures are: never a half-written summary under its name
    atomic_write(out / "summary.md", lambda tmp: tmp.write_text(text, encoding="utf-8"),
                 overwrite)
