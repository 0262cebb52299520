"""The ``tensorpanda`` command: fit, show parts, edit, localize, inspect, benchmark, demo.

Part of the application layer, which joins the generators (`tensorpanda.adapters`)
to the core (`tensorpanda`). Each subcommand is a small function that imports what it
needs when it runs, so that ``tensorpanda --help`` starts fast; bad arguments, missing
files and unknown names end with a one-line message and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
import warnings
from pathlib import Path

EXAMPLES = """examples:
  tensorpanda demo --out demo-output
  tensorpanda layers dcgan-faces
  tensorpanda layers --adapter stylegan2 --checkpoint network-snapshot.pkl
  tensorpanda fit --adapter dcgan-faces --layer main.5 --rank all 8 --samples 2000 \\
      --out faces.safetensors              # also writes faces.parts.png
  tensorpanda parts faces.safetensors --region 0.3:0.55,0.2:0.8 --out eyes.png
  tensorpanda parts faces.safetensors --part 3 --out part3.png
  tensorpanda edit faces.safetensors --part 3 --appearance 0 --alpha -1 0 1 --out edit.gif
  tensorpanda localize faces.safetensors --appearance 0 --out saliency.png
  tensorpanda editor faces.safetensors --open   # click a part, move a slider
  tensorpanda fit --data features.npy --rank 64 8 --out factors.npz
  tensorpanda info faces.safetensors
  tensorpanda fit --adapter stylegan2 --checkpoint ffhq.pkl --adapter-arg truncation=0.7 \\
      --layer b32.conv1 --rank all 16 --samples 10000 --out ffhq.safetensors
  tensorpanda layers biggan --adapter-arg weights=biggan-deep-128

--alpha is in units of sigma, the layer's typical feature norm (the root-mean-square norm of a
channel fibre, as `tensorpanda info` prints it): 1 adds as much as a typical feature holds at
the part's peak; --raw-alpha takes raw multipliers instead.
"""


def _rank(values: list[str]) -> tuple:
    """``--rank R_C R_S`` as a pair; ``all`` (or ``none``, ``c``) means every channel."""

    def one(v: str):
        return None if v.lower() in ("all", "none", "c") else int(v)

    try:
        return one(values[0]), one(values[1])
    except ValueError:
        raise ValueError(
            f"--rank takes two integers R_C R_S (R_C may be 'all'), got {' '.join(values)}"
        ) from None


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _finite_float(text: str) -> float:
    """An argparse type: a finite number (``nan`` and ``inf`` would spoil every image)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def _fraction(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    value = _finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


def _non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _value(text: str):
    """An ``--adapter-arg`` value: int, float, bool (true/false), none, or the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _adapter_args(pairs: list[str] | None) -> dict:
    """``--adapter-arg key=value`` pairs as a dict (values typed by `_value`)."""
    options = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise ValueError(f"--adapter-arg takes key=value (e.g. truncation=0.7), got {pair!r}")
        options["classes" if key == "class" else key] = _value(text)
    return options


# Sampling options: given to sample_latents when the adapter's constructor does not take them
# (BigGAN's class and truncation); a style-based adapter takes them as its defaults.
_SAMPLING_OPTIONS = ("truncation", "classes")


class Generator:
    """An adapter built from the command line, and the options its latents are drawn with."""

    def __init__(self, name: str, device: str | None = None, checkpoint: str | None = None,
                 pairs: list[str] | None = None, saved: dict | None = None) -> None:
        import inspect

        from tensorpanda.adapters.registry import resolve_factory

        factory = resolve_factory(name)
        options = dict(saved or {})
        options.update(_adapter_args(pairs))
        try:
            parameters = inspect.signature(factory).parameters
        except (TypeError, ValueError):  # a factory without a signature takes anything
            parameters = None
        takes_any = parameters is None or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        accepted = set() if parameters is None else {
            n for n, p in parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        self.sampling = {k: options.pop(k) for k in _SAMPLING_OPTIONS
                         if k in options and not takes_any and k not in accepted}
        if checkpoint is not None:
            key = next((k for k in ("checkpoint", "weights") if takes_any or k in accepted), None)
            if key is None:
                raise ValueError(f"adapter {name} takes no checkpoint file (no --checkpoint)")
            options[key] = str(Path(checkpoint).expanduser().resolve())
        unknown = [k for k in options if not takes_any and k not in accepted]
        if unknown:
            raise ValueError(
                f"adapter {name} takes no option {unknown[0]!r}; its options: "
                f"{', '.join(sorted((accepted | set(_SAMPLING_OPTIONS)) - {'device'}))}"
            )
        if isinstance(options.get("dtype"), str):
            import torch

            dtype = getattr(torch, options["dtype"], None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"dtype={options['dtype']} is not a torch dtype (e.g. float16)")
            options["dtype"] = dtype
        if device:
            options["device"] = device
        self.options = {k: v for k, v in options.items() if k not in ("device", "dtype")}
        self.name = name
        try:
            self.adapter = factory(**options)
        except (TypeError, ValueError) as err:  # e.g. a wrong value for an option
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(message if name in message else f"adapter {name}: {message}") \
                from None
        if "truncation" in self.sampling and not self.adapter.has_truncation:
            raise ValueError(f"adapter {name} takes no truncation option")
        if "classes" in self.sampling and self.adapter.num_classes is None:
            raise ValueError(f"adapter {name} is not class-conditional: no class option")

    def sample(self, n: int, seed: int):
        """``n`` latents drawn with the sampling options."""
        return self.adapter.sample_latents(n, seed=seed, **self.sampling)

    def record(self) -> dict:
        """What a factors file keeps to rebuild this generator: name and options."""
        options = {**self.options, **self.sampling}
        return {"adapter": self.name, "adapter_args": options} if options else {
            "adapter": self.name}


def _generator(args, name: str | None = None, saved: dict | None = None) -> Generator:
    """The generator the flags name (``--adapter``, ``--checkpoint``, ``--adapter-arg``)."""
    return Generator(name or args.adapter, args.device, getattr(args, "checkpoint", None),
                     getattr(args, "adapter_arg", None), saved)


# -- checks made before any work (minutes of sampling a generator) ------------------------------
FACTORS_SUFFIXES = (".safetensors", ".npz")

# API wording -> the flags a user of the command types (every message speaks the CLI's language)
_CLI_WORDS = [
    (re.compile(r"\bpass overwrite=True\b"), "pass --overwrite"),
    (re.compile(r"\boverwrite=True\b"), "--overwrite"),
    (re.compile(r"\bpass checkpoint=PATH\b"), "pass --checkpoint PATH"),
    (re.compile(r"^device '([^']*)'"), r"--device \1"),
    (re.compile(r"\buse device 'cpu'"), "use --device cpu"),
    (re.compile(r"\bmax_iter=(\S+?)([,;)]|\s|$)"), r"--max-iter \1\2"),
    (re.compile(r"\braise max_iter\b"), "raise --max-iter"),
    (re.compile(r"\bor tol\b"), "or --tol"),
    (re.compile(r"\btol=(\S+?)([,;)]|\s|$)"), r"--tol \1\2"),
    (re.compile(r"\bbatch_size\b"), "--batch-size"),
]


def cli_language(message: str) -> str:
    """``message`` with the API's keyword arguments written as the command's flags."""
    for pattern, replacement in _CLI_WORDS:
        message = pattern.sub(replacement, message)
    return message


def _check_device(device: str | None) -> None:
    """``--device`` parsed by torch and present on this machine, before anything loads."""
    if not device:
        return
    from tensorpanda.adapters.devices import torch_device

    torch_device(device)  # its messages start "device 'x'": cli_language makes it --device


def _check_output(path: str, overwrite: bool, suffixes: tuple[str, ...] | None = None,
                  flag: str = "--out") -> Path:
    """An output the command may write: right suffix, not a folder, no clobbering without
    ``--overwrite``, in an existing folder it may write in; checked before any work."""
    from tensorpanda._checks import writable_path

    out = Path(path).expanduser()
    if suffixes and out.suffix not in suffixes:
        shown = ' or '.join(suffixes) if len(suffixes) <= 3 else (
            f"an image suffix Pillow writes ({', '.join(s for s in _COMMON if s in suffixes)}, "
            "...)")
        raise ValueError(f"{flag} must end in {shown}, not {out.name!r}")
    writable_path(out, overwrite)
    folder = out.parent if str(out.parent) else Path(".")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {out}: no permission to write in the folder {folder}")
    return out


_COMMON = (".png", ".jpg", ".webp", ".tif")


def _image_suffixes() -> tuple[str, ...]:
    """The suffixes Pillow can write (``localize --out``)."""
    from PIL import Image

    Image.init()
    return tuple(sorted(ext for ext, kind in Image.EXTENSION.items() if kind in Image.SAVE))


def _open_npy(path: Path):
    """The ``.npy`` at ``path``, memory-mapped; a truncated or foreign file named and explained
    (numpy alone says "mmap length is greater than file size" without the file's name)."""
    import numpy as np

    fmt = np.lib.format
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            version = fmt.read_magic(handle)
            header = (fmt.read_array_header_1_0 if version == (1, 0)
                      else fmt.read_array_header_2_0)
            shape, _, dtype = header(handle)
            offset = handle.tell()
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"--data {path}: not a readable .npy file ({err}); write it with "
                         "numpy.save") from None
    if dtype.hasobject:
        raise ValueError(f"--data {path}: holds Python objects ({dtype}), not numbers")
    needed = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < needed:
        raise ValueError(
            f"--data {path}: truncated .npy file: its header promises an array of shape "
            f"{tuple(shape)} and dtype {dtype} ({needed} bytes), but the file has {size} "
            "bytes (an interrupted copy or save?)"
        )
    try:
        # memory-mapped: the solver streams it in batches, so it need not fit in memory
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"--data {path}: cannot read it: {err}") from None


def _summary(value, limit: int = 16):
    """``value`` for ``info``'s JSON: arrays and long number lists as shape, dtype, min and max
    (never numpy's truncated text), short ones as lists, non-finite floats as text."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _summary(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) > limit and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                      for v in value):
            return _summary(np.asarray(value), limit)
        return [_summary(v, limit) for v in value]
    if hasattr(value, "__array__") and not isinstance(value, (str, bytes, np.generic)):
        value = np.asarray(value)
        if value.size <= limit:
            return _summary(value.tolist(), limit)
        out = {"shape": list(value.shape), "dtype": str(value.dtype)}
        if value.dtype.kind in "biuf":
            finite = value[np.isfinite(value)] if value.dtype.kind == "f" else value
            if finite.size:
                out["min"] = _summary(finite.min().item())
                out["max"] = _summary(finite.max().item())
            if finite.size < value.size:
                out["non_finite"] = int(value.size - finite.size)
        return out
    if isinstance(value, np.generic):
        return _summary(value.item(), limit)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# -- subcommands ---------------------------------------------------------------------------------
def cmd_fit(args) -> int:
    """``tensorpanda fit``: fit PandA to a generator's layer (streamed) or to an ``.npy``."""
    import tensorpanda as tp

    rank = _rank(args.rank)
    if (args.data is None) == (args.adapter is None):
        raise ValueError("give either --adapter (to sample a generator) or --data (an .npy file)")
    if args.data is not None and (args.checkpoint or args.adapter_arg):
        raise ValueError("--checkpoint and --adapter-arg choose a generator: use them with "
                         "--adapter, not --data")
    if args.data is not None and (args.layer or args.device):
        raise ValueError("--layer and --device are for a generator (--adapter), not --data")
    # every output checked before the fit (minutes with a generator) is spent
    out = _check_output(args.out, args.overwrite, FACTORS_SUFFIXES)
    figure = None if args.no_figure else _check_output(
        str(parts_figure_path(out)), args.overwrite, flag="the parts figure")
    info, generator = {}, None
    if args.data is not None:
        path = Path(args.data).expanduser()
        if path.is_dir():
            raise ValueError(f"--data {path} is a folder: pass an .npy file")
        if not path.is_file():
            raise FileNotFoundError(f"no data file at {path}")
        if path.suffix != ".npy":
            raise ValueError(f"--data reads an array saved by numpy.save (.npy), not {path.name}")
        data = _open_npy(path)
    else:
        generator = _generator(args)
        gan = generator.adapter
        layer = gan.resolve_layer(args.layer)
        latents = generator.sample(args.samples, args.seed)
        # a progress bar on a terminal, none in logs
        data = gan.features(latents, layer, batch_size=args.batch_size, progress=None)
        info = {**generator.record(), "layer": layer, "samples": args.samples,
                "seed": args.seed}
    fit = tp.tucker2(
        data,
        rank,
        model=args.model,
        solver=args.solver,
        init=args.init,
        tol=args.tol,
        max_iter=args.max_iter,
        batch_size=args.batch_size if args.data is not None else None,
        random_state=args.seed,
    )
    fit.info.update(info)
    fit.save(args.out, overwrite=args.overwrite)
    print(
        f"{args.out}: rank {fit.rank}, relative error {fit.relative_error:.4f}, "
        f"{fit.info['n_iter']} iterations, {fit.info['time']:.1f} s"
    )
    if figure is not None and len(fit.spatial_shape) != 2:
        print(f"no parts figure: the {fit.n_positions} positions are not a 2-D grid")
    elif figure is not None:
        images = None if generator is None else generator.adapter.generate(
            generator.sample(FIGURE_SAMPLES, args.seed), progress=False).cpu()
        import tensorly as tl

        with tl.backend_context("numpy"):  # the figure reads host factors, whatever the fit's
            _parts_figure(fit.to_numpy(), images, figure, args.overwrite)
        print(f"{figure}: the {fit.rank[1]} parts" + ("" if images is None else
                                                      f" over {len(images)} samples"))
    return 0


FIGURE_SAMPLES = 4  # samples under the parts in the figure `fit` writes


def parts_figure_path(factors: Path) -> Path:
    """Where ``fit`` puts the parts figure of ``factors``: ``faces.safetensors`` ->
    ``faces.parts.png``."""
    return factors.with_suffix(".parts.png")


def method_label(factors) -> str:
    """The method behind the factors, as figures name it: ``PandA (hals)``."""
    name = "PandA" if factors.model == "panda" else "Tucker-2"
    solver = factors.info.get("solver")
    return f"{name} ({solver})" if solver else name


def _where(factors) -> str:
    """``dcgan-faces main.5``: the generator and layer the factors were fitted on, if known."""
    return " ".join(str(factors.info[k]) for k in ("adapter", "layer") if k in factors.info) \
        or "feature maps from a file"


def _parts_figure(factors, images, path: Path, overwrite: bool, region=None,
                  note: str = "") -> None:
    """The labelled parts figure (part index, method, layer) of ``factors`` at ``path``."""
    from . import figures

    title = (f"{method_label(factors)} parts, R_S = {factors.rank[1]}, {_where(factors)}"
             + (f", {note}" if note else ""))
    figures.parts_figure(factors.parts, images, path, overwrite=overwrite, title=title,
                         region=region)


def on_numpy(command):
    """Run ``command`` on TensorLy's numpy backend: its factors are small and read on the host
    (``Factorization.to_numpy``), whatever ``TENSORLY_BACKEND`` the fit used."""
    import functools

    @functools.wraps(command)
    def run(args) -> int:
        import tensorly as tl

        with tl.backend_context("numpy"):
            return command(args)

    return run


def _generator_for(factors, args):
    """The adapter and layer a factors file was fitted on (flags override), checked."""
    name = args.adapter or factors.info.get("adapter")
    layer = args.layer or factors.info.get("layer")
    if name is None or layer is None:
        raise ValueError(
            "these factors do not name their generator and layer: pass --adapter and --layer"
        )
    # the options the factors were fitted with, unless another generator is named
    saved = factors.info.get("adapter_args") if name == factors.info.get("adapter") else None
    generator = _generator(args, name, saved if isinstance(saved, dict) else None)
    gan = generator.adapter
    layer = gan.resolve_layer(layer)
    if tuple(gan.layers[layer]) != (factors.n_channels, *factors.spatial_shape):
        raise ValueError(
            f"layer {layer} of {name} has shape {gan.layers[layer]}, but the factors were "
            f"fitted on {(factors.n_channels, *factors.spatial_shape)}"
        )
    return generator, layer


@on_numpy
def cmd_edit(args) -> int:
    """``tensorpanda edit``: paint an appearance into parts, as a PNG strip or a GIF."""
    import numpy as np
    import torch

    import tensorpanda as tp

    from . import figures

    out = _check_output(args.out, args.overwrite, (".png", ".gif"))
    factors = tp.load(args.factors).to_numpy()
    if not args.raw_alpha and not (factors.info.get("sq_norm") and
                                   factors.info.get("n_samples")):
        raise ValueError(f"{args.factors} does not record the features' norm (the unit of "
                         "--alpha): refit it, or pass --raw-alpha for raw multipliers")
    generator, layer = _generator_for(factors, args)
    gan = generator.adapter
    latents = generator.sample(args.samples, args.seed)
    parts = args.part if len(args.part) > 1 else args.part[0]
    units = "raw" if args.raw_alpha else "feature_norm"
    delta = np.asarray(tp.edit_direction(factors, args.appearance, parts, units=units))
    delta = torch.as_tensor(delta, dtype=torch.float32)
    frames = torch.stack(
        [gan.generate(latents, layer, edit=a * delta, progress=False).cpu() for a in args.alpha]
    )
    named = ", ".join(map(str, args.part))
    title = (f"{method_label(factors)}: appearance {args.appearance} into "
             f"part{'s' if len(args.part) > 1 else ''} {named}, {generator.name} {layer}"
             + (", raw α" if args.raw_alpha else
                f", α in units of σ = {tp.feature_scale(factors):.3g}"))
    draw = figures.edit_gif if out.suffix == ".gif" else figures.edit_strip
    draw(frames, out, overwrite=args.overwrite, title=title,
         alphas=[figures.alpha_label(a, raw=args.raw_alpha) for a in args.alpha])
    print(f"{out}: {len(args.alpha)} strengths × {args.samples} samples ({title})")
    return 0


RANKED_SHOWN = 5  # appearances shown in the ranking figure of `parts`


def _region(text: str) -> tuple[float, float, float, float]:
    """An argparse type: ``--region y0:y1,x0:x1``, fractions of the image's height and width."""
    try:
        rows, cols = text.split(",")
        (y0, y1), (x0, x1) = ((float(v) for v in pair.split(":")) for pair in (rows, cols))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected rows:rows,cols:cols as fractions of the image, e.g. 0.3:0.55,0.2:0.8 "
            f"(the eyes of an aligned face), got {text!r}") from None
    if not all(0 <= v <= 1 for v in (y0, y1, x0, x1)) or y0 >= y1 or x0 >= x1:
        raise argparse.ArgumentTypeError(
            f"expected 0 <= y0 < y1 <= 1 and 0 <= x0 < x1 <= 1 (fractions of the image), "
            f"got {text}")
    return y0, y1, x0, x1


def region_mask(box: tuple[float, float, float, float], shape: tuple[int, int]):
    """The feature-grid cells whose centres lie in ``box`` (y0, y1, x0, x1 as fractions);
    the cell under the box's centre if the box is smaller than a cell."""
    import numpy as np

    y0, y1, x0, x1 = box
    H, W = shape
    rows, cols = (np.arange(H) + 0.5) / H, (np.arange(W) + 0.5) / W
    mask = ((rows >= y0) & (rows <= y1))[:, None] & ((cols >= x0) & (cols <= x1))[None, :]
    if not mask.any():
        mask[min(int((y0 + y1) / 2 * H), H - 1), min(int((x0 + x1) / 2 * W), W - 1)] = True
    return mask


def parts_in(factors, mask) -> list[tuple[int, float]]:
    """Each part with the share of its mass inside ``mask``, largest share first."""
    import numpy as np

    maps = np.asarray(factors.parts, dtype=np.float64)
    inside = (maps * mask).sum(axis=(1, 2)) / np.maximum(maps.sum(axis=(1, 2)), 1e-30)
    return sorted(((int(k), float(v)) for k, v in enumerate(inside)), key=lambda kv: -kv[1])


@on_numpy
def cmd_parts(args) -> int:
    """``tensorpanda parts``: the parts over samples and, for a part or a region, the
    appearances that act there, ranked (``region_scores``), with a figure of their edits."""
    import numpy as np
    import torch

    import tensorpanda as tp

    out = _check_output(args.out, args.overwrite, (".png",))
    target = args.part is not None or args.region is not None
    ranking_path = _check_output(str(out.with_suffix(".ranking.png")), args.overwrite,
                                 flag="the ranking figure") if target else None
    factors = tp.load(args.factors).to_numpy()
    if len(factors.spatial_shape) != 2:
        raise ValueError("these factors are not of 2-D feature maps: no parts to show")
    named = bool(args.adapter or factors.info.get("adapter"))
    if not named and (target or args.layer):
        raise ValueError("these factors do not name their generator: pass --adapter and "
                         "--layer to rank appearances over its samples")
    if not named:  # fitted on a file: the parts alone
        _parts_figure(factors, None, out, args.overwrite)
        print(f"{out}: the {factors.rank[1]} parts (no generator named: no samples)")
        return 0
    mask, note = None, ""  # checked before the generator runs
    if args.part is not None:
        mask = np.asarray(tp.part_map(factors, args.part)) >= 0.5
        note = f"part {', '.join(map(str, args.part))} (p̂ ≥ 0.5)"
    elif args.region is not None:
        mask = region_mask(args.region, tuple(factors.spatial_shape))
        note = "region {}:{},{}:{}".format(*(f"{v:g}" for v in args.region))
    if mask is not None and mask.all():
        raise ValueError(f"the {note} covers the whole feature map: name a smaller one")
    generator, layer = _generator_for(factors, args)
    gan = generator.adapter
    latents = generator.sample(max(args.samples, args.score_samples), args.seed)
    shown = latents[: args.samples]
    images = gan.generate(shown, progress=False).cpu()
    _parts_figure(factors, images, out, args.overwrite,
                  region=None if mask is None else mask.astype(float), note=note)
    print(f"{out}: the {factors.rank[1]} parts over {len(images)} samples, {generator.name} "
          f"{layer}")
    if mask is None:
        return 0
    Z = torch.cat(list(gan.features(latents[: args.score_samples], layer, progress=False)))
    scores = tp.region_scores(factors, Z.cpu().numpy(), mask)
    overlap = parts_in(factors, mask)
    parts = args.part if args.part is not None else [overlap[0][0]]
    ranked = [int(j) for j in np.argsort(-np.abs(scores))[: args.top]]
    _print_ranking(args, note, overlap, parts, ranked, scores)
    shown_ranked = ranked[:RANKED_SHOWN]
    title = (f"{method_label(factors)}: appearances ranked for the {note}, painted into part "
             f"{', '.join(map(str, parts))} at α = ±1 σ, {generator.name} {layer}")
    _ranking_figure(gan, layer, factors, shown, images, shown_ranked, scores, parts,
                    ranking_path, args.overwrite, title)
    print(f"{ranking_path}: the top {len(shown_ranked)} appearances painted into part "
          f"{', '.join(map(str, parts))} (α = ±1 in units of σ)")
    return 0


def _ranking_figure(gan, layer, factors, shown, images, ranked, scores, parts, path,
                    overwrite, title) -> None:
    """The originals, then each ranked appearance painted into ``parts`` at ±1 σ (the sign
    of its score): one column each, labelled with the signed appearance and its score."""
    import numpy as np
    import torch

    import tensorpanda as tp

    from . import figures

    frames = [images]
    for j in ranked:
        delta = tp.edit_direction(factors, j, parts, alpha=float(np.sign(scores[j]) or 1.0),
                                  units="feature_norm")
        edit = torch.as_tensor(np.asarray(delta), dtype=torch.float32)
        frames.append(gan.generate(shown, layer, edit=edit, progress=False).cpu())
    labels = ["original"] + [f"{'−' if scores[j] < 0 else '+'}a_{j} ({abs(scores[j]):.2f})"
                             for j in ranked]
    figures.edit_strip(torch.stack(frames), path, overwrite=overwrite, alphas=labels,
                       title=title)


def _print_ranking(args, note, overlap, parts, ranked, scores) -> None:
    """The table ``parts`` prints: the parts under the region, then the ranked appearances
    with the ``edit`` command that paints each one."""
    print(f"\n{note}: parts by the share of their mass inside")
    for k, share in overlap[:5]:
        print(f"  part {k:3d}  {share:6.1%}")
    print(f"\nappearances acting there, ranked by |region score| over {args.score_samples} "
          "samples (sign: the direction that adds what lives there)")
    print(f"  {'rank':>4}  {'appearance':>10}  {'score':>7}  edit")
    named = " ".join(map(str, parts))
    for r, j in enumerate(ranked, 1):
        sign = -1 if scores[j] < 0 else 1
        print(f"  {r:4d}  {j:10d}  {scores[j]:+7.3f}  tensorpanda edit {args.factors} "
              f"--part {named} --appearance {j} --alpha 0 {sign:g} --out edit.png")


@on_numpy
def cmd_localize(args) -> int:
    """``tensorpanda localize``: saliency maps of one appearance on fresh samples (PNG)."""
    import numpy as np
    import torch

    import tensorpanda as tp

    from . import figures

    out = _check_output(args.out, args.overwrite, _image_suffixes())
    factors = tp.load(args.factors).to_numpy()
    generator, layer = _generator_for(factors, args)
    gan = generator.adapter
    latents = generator.sample(args.samples, args.seed)
    images = gan.generate(latents, progress=False).cpu()
    Z = torch.cat(list(gan.features(latents, layer, progress=False))).cpu().numpy()
    maps = tp.saliency(factors, Z, args.appearance, size=tuple(images.shape[2:]),
                       threshold=args.threshold)
    title = (f"{method_label(factors)}: saliency of appearance {args.appearance}, "
             f"{generator.name} {layer}"
             + (f", threshold {args.threshold:g}" if args.threshold is not None else ""))
    figures.saliency_figure(images, np.asarray(maps, dtype=float), out,
                            overwrite=args.overwrite, title=title)
    print(f"{args.out}: saliency of appearance {args.appearance} on {args.samples} samples")
    return 0


def cmd_layers(args) -> int:
    """``tensorpanda layers``: print an adapter's feature layers, shapes and aliases."""
    if args.name and args.adapter and args.name != args.adapter:
        raise ValueError(f"two adapters named: {args.name} and --adapter {args.adapter}")
    name = args.name or args.adapter
    if not name:
        raise ValueError("name the adapter: tensorpanda layers NAME (or --adapter NAME)")
    gan = _generator(args, name).adapter
    aliases = {v: k for k, v in gan.aliases.items()}
    for name, shape in gan.layers.items():
        mark = " (default)" if name == gan.default_layer else ""
        alias = f"  alias {aliases[name]}" if name in aliases else ""
        print(f"{name:30s} C×H×W = {'×'.join(map(str, shape))}{alias}{mark}")
    return 0


def cmd_info(args) -> int:
    """``tensorpanda info``: print a factors file's shapes and metadata as JSON."""
    import tensorpanda as tp

    fit = tp.load(args.factors)
    summary = {
        "model": fit.model,
        "appearances": fit.appearances,
        "rank": list(fit.rank),
        "channels": fit.n_channels,
        "spatial_shape": list(fit.spatial_shape),
        "relative_error": fit.relative_error,
        **fit.info,
    }
    if "sq_norm" in fit.info and fit.info.get("n_samples"):
        summary["feature_scale"] = tp.feature_scale(fit)  # σ, the unit of `edit --alpha`
    if len(fit.history):
        summary["history"] = {"iterations": len(fit.history), "first": fit.history[0],
                              "last": fit.history[-1]}
    print(json.dumps(_summary(summary), indent=2))
    return 0


def cmd_bench(args) -> int:
    """``tensorpanda bench``: the solver benchmark of `tensorpanda.benchmarks.solvers`."""
    # imported here: the harness is only needed by this command
    from tensorpanda.benchmarks.solvers import main as bench_main

    argv = ["--smoke"] if args.smoke else []
    if args.markdown:
        # checked here, in the command's words, before minutes of benchmarking
        _check_output(args.markdown, args.overwrite, flag="--markdown")
        argv += ["--markdown", args.markdown] + (["--overwrite"] if args.overwrite else [])
    return bench_main(argv)


def cmd_demo(args) -> int:
    """``tensorpanda demo``: run `tensorpanda.app.demo.run` and print its summary."""
    from .demo import DemoConfig, run

    config = DemoConfig(n_samples=args.samples, seed=args.seed)
    if args.layer:
        config.layer = args.layer
    out = run(args.out, config, overwrite=args.overwrite)
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"figures written to {out}/")
    return 0


@on_numpy
def cmd_editor(args) -> int:
    """``tensorpanda editor``: the browser editor (``app/editor.py``) on 127.0.0.1."""
    import tensorpanda as tp

    from .editor import Editor, make_server, serve

    factors = tp.load(args.factors).to_numpy()
    generator, layer = _generator_for(factors, args)
    server = make_server(None, args.port)  # a bad or busy port fails before the set-up
    return serve(server, lambda: Editor(generator.adapter, layer, factors,
                                        sample=generator.sample, name=Path(args.factors).name,
                                        seed=args.seed), open_browser=args.open)


# -- parser --------------------------------------------------------------------------------------
def _adapter_flags(parser) -> None:
    """``--checkpoint`` and ``--adapter-arg``: options handed to the adapter's factory."""
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="the generator's checkpoint file (or weights folder)")
    parser.add_argument("--adapter-arg", action="append", metavar="KEY=VALUE",
                        help="an adapter option, repeatable: e.g. truncation=0.7, class=207, "
                             "weights=FOLDER (values are ints, floats, true/false or text)")


def _generator_flags(parser, adapter_required: bool = False) -> None:
    """The flags that choose the generator and samples of ``edit`` and ``localize``."""
    parser.add_argument("--adapter", required=adapter_required,
                        help="adapter name (see `tensorpanda layers`); default: the factors'")
    _adapter_flags(parser)
    parser.add_argument("--layer", help="layer name or alias; default: the factors'")
    parser.add_argument("--samples", type=_positive_int, default=6, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents")
    parser.add_argument("--device", help="torch device of the generator, e.g. cuda")


class _Version(argparse.Action):
    """``--version``: the installed package's version, looked up only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("tensorpanda")
        except PackageNotFoundError:  # run from a source tree that is not installed
            from tensorpanda import __version__ as number
        print(f"tensorpanda {number}")
        parser.exit()


class _Subparsers:
    """``add_subparsers`` whose subcommands all take the ``common`` flags (``-v``)."""

    def __init__(self, action, common) -> None:
        self.action, self.common = action, common

    def add_parser(self, name: str, **kwargs):
        return self.action.add_parser(name, parents=[self.common], **kwargs)


class _Parser(argparse.ArgumentParser):
    """A parser whose mistakes are one line (and exit 2), without the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``tensorpanda`` parser; each subparser sets ``run``, the ``cmd_*`` to call."""
    parser = _Parser(
        prog="tensorpanda",
        description="Parts and appearances in the feature maps of image generators (PandA).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    # -v after the subcommand too; SUPPRESS keeps a subcommand from resetting a -v given before
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log progress")
    sub = _Subparsers(parser.add_subparsers(dest="command", required=True, metavar="command"),
                      common)

    fit = sub.add_parser("fit", help="fit parts and appearances to a generator's layer or a .npy")
    fit.add_argument("--adapter", help="sample this generator (see `tensorpanda layers`)")
    _adapter_flags(fit)
    fit.add_argument("--layer", help="layer name or alias (default: the adapter's)")
    fit.add_argument("--data", help="or: an .npy array of shape (N, C, H, W) or (N, C, S)")
    fit.add_argument("--rank", nargs=2, required=True, metavar=("R_C", "R_S"),
                     help="appearances and parts; R_C may be 'all'")
    fit.add_argument("--samples", type=_positive_int, default=2000, help="generator samples")
    fit.add_argument("--model", default="panda", choices=["panda", "tucker"])
    fit.add_argument("--solver", default="pgd", choices=["pgd", "hals", "mu"])
    fit.add_argument("--init", default="spa", choices=["spa", "svd", "nndsvd", "random"])
    fit.add_argument("--tol", type=_non_negative_float, default=1e-6)
    fit.add_argument("--max-iter", type=_positive_int, default=None)
    fit.add_argument("--batch-size", type=_positive_int, default=128)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--device", help="torch device of the generator, e.g. cuda")
    fit.add_argument("--out", required=True,
                     help=".safetensors or .npz file to write; the parts figure goes beside it "
                          "(faces.safetensors -> faces.parts.png)")
    fit.add_argument("--no-figure", action="store_true", help="write no parts figure")
    fit.add_argument("--overwrite", action="store_true",
                     help="replace an existing --out and parts figure")
    fit.set_defaults(run=cmd_fit)

    parts = sub.add_parser(
        "parts", help="a factors file's parts over samples; the appearances acting on a part "
                      "or region, ranked")
    parts.add_argument("factors", help="a factors file from `tensorpanda fit`")
    where = parts.add_mutually_exclusive_group()
    where.add_argument("--part", type=int, nargs="+", metavar="K",
                       help="rank the appearances acting on this part (several: their sum)")
    where.add_argument("--region", type=_region, metavar="Y0:Y1,X0:X1",
                       help="or on this box, in fractions of the image's height and width, "
                            "e.g. 0.3:0.55,0.2:0.8")
    parts.add_argument("--top", type=_positive_int, default=10,
                       help="appearances to list (the figure shows the first "
                            f"{RANKED_SHOWN})")
    parts.add_argument("--score-samples", type=_positive_int, default=200,
                       help="samples the region scores average over")
    parts.add_argument("--out", required=True,
                       help=".png of the parts; with --part/--region also OUT.ranking.png")
    parts.add_argument("--overwrite", action="store_true")
    _generator_flags(parts)
    parts.set_defaults(run=cmd_parts)

    edit = sub.add_parser("edit", help="paint appearances into parts: a PNG strip or a GIF")
    edit.add_argument("factors", help="a factors file from `tensorpanda fit`")
    edit.add_argument("--part", type=int, nargs="+", required=True,
                      help="part index (several: their regions are summed)")
    edit.add_argument("--appearance", type=int, required=True, help="appearance index")
    edit.add_argument("--alpha", type=_finite_float, nargs="+", required=True,
                      help="strengths in units of the layer's typical feature norm σ "
                           "(about 0.5 to 1.5 is visible and unsaturated)")
    edit.add_argument("--raw-alpha", action="store_true",
                      help="take --alpha as raw multipliers of a_j p̂ᵀ instead")
    edit.add_argument("--out", required=True, help=".png (strip) or .gif (animation)")
    edit.add_argument("--overwrite", action="store_true")
    _generator_flags(edit)
    edit.set_defaults(run=cmd_edit)

    loc = sub.add_parser("localize", help="saliency maps of an appearance (PNG)")
    loc.add_argument("factors", help="a factors file from `tensorpanda fit`")
    loc.add_argument("--appearance", type=int, required=True)
    loc.add_argument("--threshold", type=_fraction, help="show masks at this level (0..1)")
    loc.add_argument("--out", required=True, help=".png file")
    loc.add_argument("--overwrite", action="store_true")
    _generator_flags(loc)
    loc.set_defaults(run=cmd_localize)

    layers = sub.add_parser("layers", help="an adapter's feature layers and their shapes")
    layers.add_argument("name", nargs="?", metavar="adapter",
                        help="adapter name, e.g. dcgan-faces (or --adapter)")
    layers.add_argument("--adapter", help="adapter name")
    _adapter_flags(layers)
    layers.add_argument("--device")
    layers.set_defaults(run=cmd_layers)

    info = sub.add_parser("info", help="a factors file's metadata")
    info.add_argument("factors")
    info.set_defaults(run=cmd_info)

    bench = sub.add_parser("bench", help="the solver benchmark (tables as in docs/)")
    bench.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    bench.add_argument("--markdown", help="also write the tables to this file")
    bench.add_argument("--overwrite", action="store_true", help="replace an existing --markdown")
    bench.set_defaults(run=cmd_bench)

    demo = sub.add_parser("demo", help="the DCGAN-faces demo: parts, edits, removal, saliency")
    demo.add_argument("--out", default="demo-output", help="folder for the figures")
    demo.add_argument("--samples", type=_positive_int, default=2000)
    demo.add_argument("--layer", help="override the demo's layer")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--overwrite", action="store_true", help="reuse a non-empty --out")
    demo.set_defaults(run=cmd_demo)

    # -- the browser editor (app/editor.py) --
    editor = sub.add_parser("editor", help="edit in the browser: click a part, pick an "
                                           "appearance, move a strength slider")
    editor.add_argument("factors", help="a factors file from `tensorpanda fit`")
    editor.add_argument("--adapter", help="adapter name; default: the factors'")
    _adapter_flags(editor)
    editor.add_argument("--layer", help="layer name or alias; default: the factors'")
    editor.add_argument("--device", help="torch device of the generator, e.g. cuda")
    editor.add_argument("--seed", type=int, default=0, help="the sample the page opens with")
    editor.add_argument("--port", type=int, default=8765,
                        help="port on 127.0.0.1 (0: any free port)")
    editor.add_argument("--open", action="store_true", help="open the page in a web browser")
    editor.set_defaults(run=cmd_editor)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tensorpanda``: 0, or 2 after a one-line message for a bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    def show_warning(message, category, filename, lineno, file=None, line=None):
        text = str(message).splitlines()[0] if str(message) else category.__name__
        print(f"tensorpanda {args.command}: warning: {cli_language(text)}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            # before anything is loaded: a bad device would fail after minutes of reading
            _check_device(getattr(args, "device", None))
            return args.run(args)
    except (ValueError, TypeError, ImportError, OSError) as err:
        # OSError: missing files, existing outputs, folders in the way, permissions, a full disk
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"tensorpanda {args.command}: error: {cli_language(message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tensorpanda {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
