"""The ``tensorpanda`` command: fit, edit, localize, inspect, benchmark, demo.

It lives with the adapters because it joins generators to the solver core (the core never
imports adapters). Each subcommand is a small function; bad arguments, missing files and
unknown names end with a one-line message and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

EXAMPLES = """examples:
  tensorpanda demo --out demo-output
  tensorpanda layers dcgan-faces
  tensorpanda fit --adapter dcgan-faces --layer main.5 --rank all 8 --samples 2000 \\
      --out faces.safetensors
  tensorpanda edit faces.safetensors --part 3 --appearance 0 --alpha -20 0 20 --out edit.gif
  tensorpanda localize faces.safetensors --appearance 0 --out saliency.png
  tensorpanda fit --data features.npy --rank 64 8 --out factors.npz
  tensorpanda info faces.safetensors
"""


def _rank(values: list[str]) -> tuple:
    def one(v: str):
        return None if v.lower() in ("all", "none", "c") else int(v)

    try:
        return one(values[0]), one(values[1])
    except ValueError:
        raise ValueError(
            f"--rank takes two integers R_C R_S (R_C may be 'all'), got {' '.join(values)}"
        ) from None


def _adapter(name: str, device: str | None):
    from .registry import load

    return load(name, device=device) if device else load(name)


# -- subcommands ---------------------------------------------------------------------------------
def cmd_fit(args) -> int:
    """``tensorpanda fit``: fit PandA to a generator's layer or to an ``.npy`` array.

    With ``--adapter`` the layer's feature maps are streamed from ``--samples`` samples
    and the adapter, layer, samples and seed are stored in the factors' ``info``; with
    ``--data`` the array is memory-mapped and streamed in ``--batch-size`` batches.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`.

    Returns
    -------
    int
        0; a one-line summary is printed.

    Raises
    ------
    ValueError, FileNotFoundError
        For bad arguments or a missing data file (:func:`main` turns them into exit
        code 2).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from tensorpanda.adapters.cli import build_parser, cmd_fit
    >>> folder = tempfile.mkdtemp()
    >>> data = os.path.join(folder, "Z.npy")
    >>> np.save(data, np.random.default_rng(0).random((40, 6, 4, 4)))
    >>> args = build_parser().parse_args(["fit", "--data", data, "--rank", "4", "3",
    ...                                   "--out", os.path.join(folder, "factors.npz")])
    >>> cmd_fit(args)
    /...factors.npz: rank (4, 3), relative error ..., ... iterations, ... s
    0
    """
    import numpy as np

    import tensorpanda as tp

    rank = _rank(args.rank)
    if (args.data is None) == (args.adapter is None):
        raise ValueError("give either --adapter (to sample a generator) or --data (an .npy file)")
    info = {}
    if args.data is not None:
        path = Path(args.data)
        if not path.is_file():
            raise FileNotFoundError(f"no data file at {path}")
        if path.suffix != ".npy":
            raise ValueError(f"--data reads an array saved by numpy.save (.npy), not {path.name}")
        # memory-mapped: the solver streams it in batches, so it need not fit in memory
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    else:
        gan = _adapter(args.adapter, args.device)
        layer = gan.resolve_layer(args.layer)
        latents = gan.sample_latents(args.samples, seed=args.seed)
        # a progress bar on a terminal, none in logs
        data = gan.features(latents, layer, batch_size=args.batch_size, progress=None)
        info = {"adapter": args.adapter, "layer": layer, "samples": args.samples,
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
    return 0


def _generator_for(factors, args):
    """The adapter and layer a factors file was fitted on (flags override)."""
    name = args.adapter or factors.info.get("adapter")
    layer = args.layer or factors.info.get("layer")
    if name is None or layer is None:
        raise ValueError(
            "these factors do not name their generator and layer: pass --adapter and --layer"
        )
    gan = _adapter(name, args.device)
    layer = gan.resolve_layer(layer)
    if tuple(gan.layers[layer]) != (factors.n_channels, *factors.spatial_shape):
        raise ValueError(
            f"layer {layer} of {name} has shape {gan.layers[layer]}, but the factors were "
            f"fitted on {(factors.n_channels, *factors.spatial_shape)}"
        )
    return gan, layer


def cmd_edit(args) -> int:
    """``tensorpanda edit``: paint an appearance into parts, as a PNG strip or a GIF.

    The generator and layer are those stored in the factors file, unless ``--adapter``
    and ``--layer`` say otherwise; one frame per ``--alpha``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`.

    Returns
    -------
    int
        0; a one-line summary is printed.

    Examples
    --------
    >>> import os, tempfile
    >>> from tensorpanda.adapters.cli import build_parser, cmd_edit, main
    >>> folder = tempfile.mkdtemp()
    >>> factors = os.path.join(folder, "faces.safetensors")
    >>> main(["fit", "--adapter", "dcgan-faces", "--samples", "32", "--rank", "all", "4",
    ...       "--out", factors])
    /...faces.safetensors: rank (256, 4), relative error ..., ... iterations, ... s
    0
    >>> args = build_parser().parse_args([
    ...     "edit", factors, "--part", "0", "--appearance", "0", "--alpha", "-1", "0", "1",
    ...     "--samples", "2", "--out", os.path.join(folder, "edit.png")])
    >>> cmd_edit(args)
    /...edit.png: 3 strengths × 2 samples
    0
    """
    import numpy as np
    import torch

    import tensorpanda as tp
    from tensorpanda import figures

    factors = tp.load(args.factors).to_numpy()
    gan, layer = _generator_for(factors, args)
    latents = gan.sample_latents(args.samples, seed=args.seed)
    parts = args.part if len(args.part) > 1 else args.part[0]
    delta = np.asarray(tp.edit_direction(factors, args.appearance, parts))
    delta = torch.as_tensor(delta, dtype=torch.float32)
    frames = torch.stack(
        [gan.generate(latents, layer, edit=a * delta, progress=False).cpu() for a in args.alpha]
    )
    out = Path(args.out)
    if out.suffix == ".gif":
        figures.edit_gif(frames, out, overwrite=args.overwrite)
    elif out.suffix == ".png":
        figures.edit_strip(frames, out, overwrite=args.overwrite)
    else:
        raise ValueError(f"--out must end in .png (a strip) or .gif (an animation), not {out.name}")
    print(f"{out}: {len(args.alpha)} strengths × {args.samples} samples")
    return 0


def cmd_localize(args) -> int:
    """``tensorpanda localize``: saliency maps of one appearance on fresh samples (PNG).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`.

    Returns
    -------
    int
        0; a one-line summary is printed.

    Examples
    --------
    >>> import os, tempfile
    >>> from tensorpanda.adapters.cli import build_parser, cmd_localize, main
    >>> folder = tempfile.mkdtemp()
    >>> factors = os.path.join(folder, "faces.safetensors")
    >>> main(["fit", "--adapter", "dcgan-faces", "--samples", "32", "--rank", "all", "4",
    ...       "--out", factors])
    /...faces.safetensors: rank (256, 4), relative error ..., ... iterations, ... s
    0
    >>> args = build_parser().parse_args([
    ...     "localize", factors, "--appearance", "0", "--samples", "2",
    ...     "--out", os.path.join(folder, "saliency.png")])
    >>> cmd_localize(args)
    /...saliency.png: saliency of appearance 0 on 2 samples
    0
    """
    import numpy as np
    import torch

    import tensorpanda as tp
    from tensorpanda import figures

    factors = tp.load(args.factors).to_numpy()
    gan, layer = _generator_for(factors, args)
    latents = gan.sample_latents(args.samples, seed=args.seed)
    images = gan.generate(latents, progress=False).cpu()
    Z = torch.cat(list(gan.features(latents, layer, progress=False))).cpu().numpy()
    maps = tp.saliency(factors, Z, args.appearance, size=tuple(images.shape[2:]),
                       threshold=args.threshold)
    figures.saliency_figure(images, np.asarray(maps, dtype=float), args.out,
                            overwrite=args.overwrite)
    print(f"{args.out}: saliency of appearance {args.appearance} on {args.samples} samples")
    return 0


def cmd_layers(args) -> int:
    """``tensorpanda layers``: print an adapter's feature layers, shapes and aliases.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`.

    Returns
    -------
    int
        0.

    Examples
    --------
    >>> from tensorpanda.adapters.cli import build_parser, cmd_layers
    >>> cmd_layers(build_parser().parse_args(["layers", "dcgan-faces"]))
    main.2                         C×H×W = 512×4×4  alias 4x4
    main.5                         C×H×W = 256×8×8  alias 8x8 (default)
    main.8                         C×H×W = 128×16×16  alias 16x16
    main.11                        C×H×W = 64×32×32  alias 32x32
    0
    """
    gan = _adapter(args.adapter, args.device)
    aliases = {v: k for k, v in gan.aliases.items()}
    for name, shape in gan.layers.items():
        mark = " (default)" if name == gan.default_layer else ""
        alias = f"  alias {aliases[name]}" if name in aliases else ""
        print(f"{name:30s} C×H×W = {'×'.join(map(str, shape))}{alias}{mark}")
    return 0


def cmd_info(args) -> int:
    """``tensorpanda info``: print a factors file's shapes and metadata as JSON.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`.

    Returns
    -------
    int
        0.

    Examples
    --------
    >>> import os, tempfile
    >>> from tensorpanda.adapters.cli import build_parser, cmd_info, main
    >>> folder = tempfile.mkdtemp()
    >>> factors = os.path.join(folder, "faces.safetensors")
    >>> main(["fit", "--adapter", "dcgan-faces", "--samples", "32", "--rank", "all", "4",
    ...       "--out", factors])
    /...faces.safetensors: rank (256, 4), relative error ..., ... iterations, ... s
    0
    >>> cmd_info(build_parser().parse_args(["info", factors]))
    {
      "model": "panda",
      "appearances": "orthonormal",
      ...
      "adapter": "dcgan-faces",
      "layer": "main.5",
      "samples": 32,
      "seed": 0
    }
    0
    """
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
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_bench(args) -> int:
    """``tensorpanda bench``: the solver benchmark of :mod:`tensorpanda.bench`.

    ``--smoke`` runs it at tiny sizes (seconds); the full run takes about half an hour.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`.

    Returns
    -------
    int
        The benchmark's exit code.

    Examples
    --------
    How the command reaches this function (``cmd_bench(args)`` would then run the smoke
    benchmark, a few seconds):

    >>> from tensorpanda.adapters.cli import build_parser, cmd_bench
    >>> args = build_parser().parse_args(["bench", "--smoke"])
    >>> args.run is cmd_bench, args.smoke, args.markdown
    (True, True, None)
    """
    from tensorpanda.bench import main as bench_main

    argv = (["--smoke"] if args.smoke else []) + (["--markdown", args.markdown]
                                                  if args.markdown else [])
    return bench_main(argv)


def cmd_demo(args) -> int:
    """``tensorpanda demo``: run :func:`tensorpanda.adapters.demo.run` and print its summary.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`.

    Returns
    -------
    int
        0.

    Raises
    ------
    FileExistsError
        If ``--out`` is not empty and ``--overwrite`` is not given.

    Examples
    --------
    The demo takes a while (see :func:`tensorpanda.adapters.demo.run` for a miniature
    run); a folder in use is refused before any work:

    >>> import os, tempfile
    >>> from tensorpanda.adapters.cli import build_parser, cmd_demo
    >>> out = tempfile.mkdtemp()
    >>> open(os.path.join(out, "notes.txt"), "w").close()
    >>> cmd_demo(build_parser().parse_args(["demo", "--out", out, "--samples", "100"]))
    Traceback (most recent call last):
        ...
    FileExistsError: ... exists and is not empty; pass overwrite=True to reuse it
    """
    from .demo import DemoConfig, run

    config = DemoConfig(n_samples=args.samples, seed=args.seed)
    if args.layer:
        config.layer = args.layer
    out = run(args.out, config, overwrite=args.overwrite)
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"figures written to {out}/")
    return 0


# -- parser --------------------------------------------------------------------------------------
def _generator_flags(parser, adapter_required: bool = False) -> None:
    parser.add_argument("--adapter", required=adapter_required,
                        help="adapter name (see `tensorpanda layers`); default: the factors'")
    parser.add_argument("--layer", help="layer name or alias; default: the factors'")
    parser.add_argument("--samples", type=int, default=6, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents")
    parser.add_argument("--device", help="torch device of the generator, e.g. cuda")


def build_parser() -> argparse.ArgumentParser:
    """The ``tensorpanda`` argument parser, one subcommand per ``cmd_*`` function.

    Each subparser sets ``run``, the function that carries the subcommand out.

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> from tensorpanda.adapters.cli import build_parser, cmd_fit
    >>> args = build_parser().parse_args(
    ...     ["fit", "--adapter", "dcgan-faces", "--rank", "all", "8", "--out", "f.npz"])
    >>> args.command, args.rank, args.samples, args.solver, args.run is cmd_fit
    ('fit', ['all', '8'], 2000, 'hals', True)
    """
    parser = argparse.ArgumentParser(
        prog="tensorpanda",
        description="Parts and appearances in the feature maps of image generators (PandA).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    fit = sub.add_parser("fit", help="fit parts and appearances to a generator's layer or a .npy")
    fit.add_argument("--adapter", help="sample this generator (see `tensorpanda layers`)")
    fit.add_argument("--layer", help="layer name or alias (default: the adapter's)")
    fit.add_argument("--data", help="or: an .npy array of shape (N, C, H, W) or (N, C, S)")
    fit.add_argument("--rank", nargs=2, required=True, metavar=("R_C", "R_S"),
                     help="appearances and parts; R_C may be 'all'")
    fit.add_argument("--samples", type=int, default=2000, help="generator samples")
    fit.add_argument("--model", default="panda", choices=["panda", "tucker"])
    fit.add_argument("--solver", default="hals", choices=["mu", "hals", "pgd"])
    fit.add_argument("--init", default="svd", choices=["svd", "nndsvd", "random"])
    fit.add_argument("--tol", type=float, default=1e-6)
    fit.add_argument("--max-iter", type=int, default=None)
    fit.add_argument("--batch-size", type=int, default=128)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--device", help="torch device of the generator, e.g. cuda")
    fit.add_argument("--out", required=True, help=".safetensors or .npz file to write")
    fit.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    fit.set_defaults(run=cmd_fit)

    edit = sub.add_parser("edit", help="paint appearances into parts: a PNG strip or a GIF")
    edit.add_argument("factors", help="a factors file from `tensorpanda fit`")
    edit.add_argument("--part", type=int, nargs="+", required=True,
                      help="part index (several: their regions are summed)")
    edit.add_argument("--appearance", type=int, required=True, help="appearance index")
    edit.add_argument("--alpha", type=float, nargs="+", required=True, help="strengths")
    edit.add_argument("--out", required=True, help=".png (strip) or .gif (animation)")
    edit.add_argument("--overwrite", action="store_true")
    _generator_flags(edit)
    edit.set_defaults(run=cmd_edit)

    loc = sub.add_parser("localize", help="saliency maps of an appearance (PNG)")
    loc.add_argument("factors", help="a factors file from `tensorpanda fit`")
    loc.add_argument("--appearance", type=int, required=True)
    loc.add_argument("--threshold", type=float, help="show masks at this level (0..1)")
    loc.add_argument("--out", required=True, help=".png file")
    loc.add_argument("--overwrite", action="store_true")
    _generator_flags(loc)
    loc.set_defaults(run=cmd_localize)

    layers = sub.add_parser("layers", help="an adapter's feature layers and their shapes")
    layers.add_argument("adapter", help="adapter name, e.g. dcgan-faces")
    layers.add_argument("--device")
    layers.set_defaults(run=cmd_layers)

    info = sub.add_parser("info", help="a factors file's metadata")
    info.add_argument("factors")
    info.set_defaults(run=cmd_info)

    bench = sub.add_parser("bench", help="the solver benchmark (tables as in docs/)")
    bench.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    bench.add_argument("--markdown", help="also write the tables to this file")
    bench.set_defaults(run=cmd_bench)

    demo = sub.add_parser("demo", help="the DCGAN-faces demo: parts, edits, removal, saliency")
    demo.add_argument("--out", default="demo-output", help="folder for the figures")
    demo.add_argument("--samples", type=int, default=2000)
    demo.add_argument("--layer", help="override the demo's layer")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--overwrite", action="store_true", help="reuse a non-empty --out")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tensorpanda`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0, or 2 after a one-line message on stderr for bad arguments,
        missing files and unknown names (argparse's own usage errors exit with 2 too).

    Examples
    --------
    >>> import os, tempfile
    >>> from tensorpanda.adapters.cli import main
    >>> main(["layers", "dcgan-faces"])
    main.2                         C×H×W = 512×4×4  alias 4x4
    main.5                         C×H×W = 256×8×8  alias 8x8 (default)
    main.8                         C×H×W = 128×16×16  alias 16x16
    main.11                        C×H×W = 64×32×32  alias 32x32
    0
    >>> main(["info", os.path.join(tempfile.mkdtemp(), "missing.npz")])  # message on stderr
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"tensorpanda {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
