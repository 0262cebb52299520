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
    """What the demo fits, and how hard it edits (chosen by looking at the results).

    Attributes
    ----------
    adapter : str, default "dcgan-faces"
        Registry name of the generator (see :func:`~tensorpanda.adapters.load`).
    layer : str, default "main.5"
        Layer whose feature maps are fitted and edited (the 8x8 one of DCGAN-faces).
    n_samples : int, default 2000
        Samples the fit streams over.
    n_parts : int, default 8
        Number of parts ``R_S`` (all channels are kept as appearances).
    solver : str, default "hals"
    seed : int, default 0
        Seed of the fit and of the samples; the held-out samples use ``seed + 1``.
    batch_size : int, default 250
    n_shown : int, default 6
        Held-out samples shown in the figures.
    n_measured : int, default 100
        Held-out samples on which the locality (ROIR) of each edit is measured.
    strengths : tuple of float
        Edit strengths of the strips and GIFs, in units of the mean norm of a channel
        fibre at the layer.
    removal_strength : float, default 2.0
        Strength of the background-into-the-eyes removal edit, same units.
    timings : dict
        Filled by :func:`run`: step name -> seconds.

    Examples
    --------
    >>> from tensorpanda.adapters.demo import DemoConfig
    >>> config = DemoConfig(n_samples=500, seed=1)
    >>> config.adapter, config.layer, config.n_parts, config.n_samples
    ('dcgan-faces', 'main.5', 8, 500)
    """

    adapter: str = "dcgan-faces"
    layer: str = "main.5"
    n_samples: int = 2000
    n_parts: int = 8
    solver: str = "hals"
    seed: int = 0
    batch_size: int = 250
    n_shown: int = 6
    n_measured: int = 100
    # edit strengths in units of the mean norm of a channel fibre at the layer
    strengths: tuple = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
    removal_strength: float = 2.0
    timings: dict = field(default_factory=dict)


def part_near(factors: tp.Factorization, where: tuple[float, float]) -> int:
    """The part whose mass centre lies closest to ``where`` (row, column in [0, 1]).

    Parameters
    ----------
    factors : Factorization
        A fit with parts on a 2-D grid.
    where : tuple of float
        ``(row, column)`` as fractions of the grid's height and width.

    Returns
    -------
    int
        Index of the part.

    Examples
    --------
    Two one-pixel parts on a 4x4 grid, in the top-left and bottom-right corners:

    >>> import numpy as np
    >>> import tensorpanda as tp
    >>> from tensorpanda.adapters.demo import part_near
    >>> P = np.zeros((16, 2))
    >>> P[0, 0] = P[15, 1] = 1.0
    >>> fit = tp.Factorization(A=np.eye(3), P=P, spatial_shape=(4, 4))
    >>> part_near(fit, (0.9, 0.8)), part_near(fit, (0.1, 0.2))
    (1, 0)
    """
    maps = np.asarray(factors.to_numpy().parts, dtype=np.float64)
    R, H, W = maps.shape
    rows, cols = (np.arange(H) + 0.5) / H, (np.arange(W) + 0.5) / W
    mass = maps.sum(axis=(1, 2))
    centre_r = (maps.sum(axis=2) @ rows) / mass
    centre_c = (maps.sum(axis=1) @ cols) / mass
    return int(np.argmin((centre_r - where[0]) ** 2 + (centre_c - where[1]) ** 2))


def border_region(shape: tuple[int, int], width: int = 1) -> np.ndarray:
    """A mask of the outer ``width`` rows and columns of the spatial grid: where the aligned
    faces leave the background.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` of the grid.
    width : int, default 1
        Thickness of the border.

    Returns
    -------
    numpy.ndarray
        Boolean, of shape ``shape``.

    Examples
    --------
    >>> from tensorpanda.adapters.demo import border_region
    >>> border_region((4, 5)).astype(int)
    array([[1, 1, 1, 1, 1],
           [1, 0, 0, 0, 1],
           [1, 0, 0, 0, 1],
           [1, 1, 1, 1, 1]])
    """
    mask = np.ones(shape, dtype=bool)
    mask[width:-width, width:-width] = False
    return mask


def appearance_for(factors: tp.Factorization, Z, region) -> tuple[int, float]:
    """The appearance most present in ``region`` and its sign (eigenvector signs are
    arbitrary): painting ``sign · a_j`` adds more of what lives there.

    Parameters
    ----------
    factors : Factorization
    Z : array of shape (N, C, H, W)
        Feature maps of some samples.
    region : array of bool, shape (H, W)
        A mask of the grid with positions both inside and outside it.

    Returns
    -------
    j : int
        Index of the appearance with the largest absolute
        :func:`~tensorpanda.region_scores` score.
    sign : float
        ``1.0`` or ``-1.0``, the sign of that score.

    Examples
    --------
    Channel 1 is raised on the border, channel 2 lowered even more:

    >>> import numpy as np
    >>> import tensorpanda as tp
    >>> from tensorpanda.adapters.demo import appearance_for, border_region
    >>> fit = tp.Factorization(A=np.eye(3), P=np.eye(16)[:, :2], spatial_shape=(4, 4))
    >>> Z = np.random.default_rng(0).random((5, 3, 4, 4))
    >>> border = border_region((4, 4))
    >>> Z[:, 1, border] += 1.0
    >>> appearance_for(fit, Z, border)
    (1, 1.0)
    >>> Z[:, 2, border] -= 3.0
    >>> appearance_for(fit, Z, border)
    (2, -1.0)
    """
    scores = tp.region_scores(factors, Z, region)
    j = int(np.argmax(np.abs(scores)))
    return j, float(np.sign(scores[j]))


def run(out: str | Path, config: DemoConfig | None = None, overwrite: bool = False) -> Path:
    """Run the demo and write its figures and ``summary.md`` into ``out``.

    Fits PandA on ``config.n_samples`` streamed feature maps, then on held-out samples
    writes ``parts.png``, ``edit-eyes.png``/``.gif``, ``edit-mouth.png``/``.gif`` (the
    appearance most present in the part nearest each landmark, painted into that part at
    ``config.strengths``), ``removal.png`` (the background appearance painted into the
    eyes), ``saliency-background.png``, ``factors.safetensors`` and ``summary.md``.

    Parameters
    ----------
    out : str or Path
        Folder to write; created if missing.
    config : DemoConfig, optional
        Defaults to ``DemoConfig()`` (2000 samples). Its ``timings`` are filled in.
    overwrite : bool, default False
        Reuse a non-empty ``out`` and replace its files.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    FileExistsError
        If ``out`` is not empty and ``overwrite`` is False.

    Examples
    --------
    A miniature run (a few dozen samples, a handful of edits):

    >>> import tempfile
    >>> from tensorpanda.adapters.demo import DemoConfig, run
    >>> config = DemoConfig(n_samples=48, n_parts=4, batch_size=48, n_shown=2,
    ...                     n_measured=4, strengths=(-1.0, 1.0))
    >>> out = run(tempfile.mkdtemp(), config)
    >>> sorted(path.name for path in out.iterdir())
    ['edit-eyes.gif', 'edit-eyes.png', 'edit-mouth.gif', 'edit-mouth.png',
     'factors.safetensors', 'parts.png', 'removal.png', 'saliency-background.png',
     'summary.md']
    >>> (out / "summary.md").read_text(encoding="utf-8").splitlines()[0]
    '# tensorpanda demo'
    >>> run(out, config)
    Traceback (most recent call last):
        ...
    FileExistsError: ... exists and is not empty; pass overwrite=True to reuse it
    """
    config = config or DemoConfig()
    out = Path(out)
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
    figures.parts_figure(fit.parts, images[: config.n_shown], out / "parts.png",
                         overwrite=overwrite)
    scale = float(np.sqrt((Z**2).sum(axis=1)).mean())  # mean norm of a channel fibre

    rows = []
    for region, where in LANDMARKS.items():
        k = part_near(fit, where)
        j, sign = appearance_for(fit, Z, np.asarray(tp.part_map(fit, k)) >= 0.5)
        unit = sign * scale * torch.as_tensor(np.asarray(tp.edit_direction(fit, j, k)))
        frames = torch.stack([gan.generate(shown, config.layer, edit=a * unit.float())
                              for a in config.strengths])
        figures.edit_strip(frames, out / f"edit-{region}.png", overwrite=overwrite)
        figures.edit_gif(frames, out / f"edit-{region}.gif", overwrite=overwrite)
        edited = gan.generate(held_out, config.layer, edit=unit.float(),
                              batch_size=config.batch_size)
        mask = np.asarray(tp.part_mask(fit, k, size=tuple(images.shape[2:])))
        rows.append((region, k, j, sign, *tp.summarize(tp.roir(images, edited, mask))))

    background, sign = appearance_for(fit, Z, border_region(fit.spatial_shape, width=2))
    k = part_near(fit, LANDMARKS["eyes"])
    unit = sign * scale * torch.as_tensor(np.asarray(tp.edit_direction(fit, background, k)))
    removal = gan.generate(shown, config.layer, edit=config.removal_strength * unit.float())
    figures.edit_strip(torch.stack([images[: config.n_shown], removal]), out / "removal.png",
                       overwrite=overwrite)
    maps = tp.saliency(fit, sign * Z[: config.n_shown], background,
                       size=tuple(images.shape[2:]))
    figures.saliency_figure(images[: config.n_shown], np.asarray(maps),
                            out / "saliency-background.png", overwrite=overwrite)

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
        "Files: parts.png, edit-eyes.png/.gif, edit-mouth.png/.gif, removal.png, "
        "saliency-background.png, factors.safetensors.",
    ]
    path = out / "summary.md"
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
