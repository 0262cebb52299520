"""The demo: parts and appearances of the DCGAN-faces generator, end to end.

Samples the generator, fits PandA at one layer on the streamed feature maps, then writes a
folder of figures (the parts, local edits of the eye and mouth regions, an object removal,
saliency maps) and a short summary with the numbers behind them.

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
from tensorpanda import figures

from .registry import load

logger = logging.getLogger(__name__)

# Where the aligned 64×64 faces have their eyes and mouth, as (row, column) in [0, 1].
LANDMARKS = {"eyes": (0.42, 0.5), "mouth": (0.75, 0.5)}


@dataclass
class DemoConfig:
    """What the demo fits, and how hard it edits (chosen by looking at the results)."""

    adapter: str = "dcgan-faces"
    layer: str = "main.5"
    n_samples: int = 2000
    n_parts: int = 8
    solver: str = "hals"
    seed: int = 0
    batch_size: int = 250
    n_shown: int = 6
    strengths: tuple = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
    timings: dict = field(default_factory=dict)


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
    """A mask of the outer ``width`` rows and columns of the spatial grid."""
    mask = np.ones(shape, dtype=bool)
    mask[width:-width, width:-width] = False
    return mask


def run(out: str | Path, config: DemoConfig | None = None, overwrite: bool = False) -> Path:
    """Run the demo and write its figures and ``summary.md`` into ``out``."""
    config = config or DemoConfig()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass overwrite=True to reuse it")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    clock = time.perf_counter()

    gan = load(config.adapter)
    latents = gan.sample_latents(config.n_samples, seed=config.seed)
    stream = gan.features(latents, config.layer, batch_size=config.batch_size)
    start = time.perf_counter()
    fit = tp.tucker2(stream, (None, config.n_parts), solver=config.solver,
                     random_state=config.seed)
    config.timings["fit (feature extraction included)"] = time.perf_counter() - start
    fit.save(out / "factors.safetensors", overwrite=overwrite)

    shown = latents[: config.n_shown]
    images = gan.generate(shown)
    Z = torch.cat(list(gan.features(shown, config.layer, batch_size=config.n_shown)))
    figures.parts_figure(fit.parts, images, out / "parts.png", overwrite=overwrite)

    feature_scale = float(Z.pow(2).sum(1).sqrt().mean())  # mean norm of a channel fibre
    rows = []
    for region, where in LANDMARKS.items():
        k = part_near(fit, where)
        mask = np.asarray(tp.part_map(fit, k)) >= 0.5
        j = int(np.argmax(tp.region_scores(fit, Z, mask)))
        delta = torch.as_tensor(np.asarray(tp.edit_direction(fit, j, k)), dtype=torch.float32)
        frames = torch.stack(
            [gan.generate(shown, config.layer, edit=a * feature_scale * delta)
             for a in config.strengths]
        )
        figures.edit_strip(frames, out / f"edit-{region}.png", overwrite=overwrite)
        figures.edit_gif(frames, out / f"edit-{region}.gif", overwrite=overwrite)
        image_mask = tp.part_mask(fit, k, size=tuple(images.shape[2:]))
        ratio = tp.roir(frames[len(frames) // 2], frames[-1], np.asarray(image_mask))
        rows.append((region, k, j, *tp.summarize(ratio)))

    background = int(np.argmax(tp.region_scores(fit, Z, border_region(fit.spatial_shape))))
    k = part_near(fit, LANDMARKS["eyes"])
    delta = torch.as_tensor(np.asarray(tp.edit_direction(fit, background, k)))
    removal = gan.generate(shown, config.layer, edit=2.0 * feature_scale * delta.float())
    figures.edit_strip(torch.stack([images, removal]), out / "removal.png", overwrite=overwrite)
    maps = tp.saliency(fit, Z, background, size=tuple(images.shape[2:]))
    figures.saliency_figure(images, np.asarray(maps), out / "saliency-background.png",
                            overwrite=overwrite)

    config.timings["total"] = time.perf_counter() - clock
    _summary(out, config, fit, rows, background, overwrite)
    return out


def _summary(out, config, fit, rows, background, overwrite) -> None:
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
        "| edit | part | appearance | ROIR (mean ± std) |",
        "|---|---|---|---|",
        *(f"| {r} | {k} | {j} | {m:.2f} ± {s:.2f} |" for r, k, j, m, s in rows),
        "",
        f"Background appearance (used for the removal and the saliency maps): {background}.",
        "",
        "Files: parts.png, edit-eyes.png/.gif, edit-mouth.png/.gif, removal.png, "
        "saliency-background.png, factors.safetensors.",
    ]
    path = out / "summary.md"
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
