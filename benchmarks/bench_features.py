"""How fast feature maps stream out of a StyleGAN2 generator (random weights) on this machine.

Builds ``StyleGAN2Generator`` at the given resolution with stylegan2-ada-pytorch's channel
sizes (``--channel-base 16384 --channel-max 512``: its ``paper256`` configuration at 256 px,
512 channels up to 32×32, then 256, 128, 64; an 8-layer mapping network, z and w of 512),
wraps it in the style adapter and times, after one warm-up batch:

- streaming the features of one layer (the forward pass stops right after it), and
- generating full images, for reference.

Random weights cost the same time as trained ones. Prints one Markdown table row per
measurement.

    python benchmarks/bench_features.py                          # 256 px, b32.conv1, 1 thread
    python benchmarks/bench_features.py --threads 2 --samples 64
    python benchmarks/bench_features.py --resolution 64 --channel-base 2048   # seconds
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch

from tensorpanda.adapters.style import StyleGANAdapter
from tensorpanda.adapters.stylegan2 import StyleGAN2Generator


def build(resolution: int, channel_base: int, channel_max: int, dim: int) -> StyleGANAdapter:
    """A random-weight StyleGAN2 at ``resolution`` wrapped in the style adapter."""
    torch.manual_seed(0)
    net = StyleGAN2Generator(dim, 0, dim, resolution, 3, mapping_kwargs={"num_layers": 8},
                             synthesis_kwargs={"channel_base": channel_base,
                                               "channel_max": channel_max})
    return StyleGANAdapter(net, name=f"stylegan2-{resolution}px-random")


def rate(run, n: int) -> float:
    """Samples per second of ``run()`` over ``n`` samples (one run, after a warm-up)."""
    start = time.perf_counter()
    run()
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    """Time feature streaming and image generation; print the results as Markdown rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--channel-base", type=int, default=16384)
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--dim", type=int, default=512, help="z and w size")
    parser.add_argument("--layer", default="b32.conv1")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    gan = build(args.resolution, args.channel_base, args.channel_max, args.dim).to(args.device)
    layer = gan.resolve_layer(args.layer)
    latents = gan.sample_latents(args.samples, seed=0)
    warm = latents[: args.batch_size]
    gan.generate(warm, batch_size=args.batch_size, progress=False)  # warm-up

    def stream():
        for batch in gan.features(latents, layer, batch_size=args.batch_size, progress=False):
            batch.sum().item()  # waits for an accelerator too

    def images():
        gan.generate(latents, batch_size=args.batch_size, progress=False).sum().item()

    features = rate(stream, args.samples)
    full = rate(images, args.samples)
    params = sum(p.numel() for p in gan.generator.parameters()) / 1e6
    c, h, w = gan.layers[layer]
    device = args.device if args.device != "cpu" else (
        f"{platform.machine()} CPU, {args.threads} of {os.cpu_count()} threads")
    print(f"StyleGAN2 {args.resolution} px, random weights, {params:.1f} M parameters; "
          f"torch {torch.__version__}; {device}; batch {args.batch_size}, "
          f"{args.samples} samples")
    print()
    print("| what | samples/s | seconds per 10,000 samples |")
    print("|---|---|---|")
    for what, r in ((f"features at {args.layer} ({c}×{h}×{w})", features),
                    (f"full {args.resolution}×{args.resolution} images", full)):
        print(f"| {what} | {r:.2f} | {10_000 / r:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
