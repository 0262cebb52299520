"""All-reduce of sufficient statistics across torch.distributed ranks.

Every statistic the Gram solvers need is a sum over samples, so fitting on data split across
processes is one all-reduce per pass, not a new algorithm. torch is never imported here: if
the user's program has not imported ``torch.distributed``, no process group can exist.
"""

from __future__ import annotations

import sys

import numpy as np
import tensorly as tl

from . import _backend as B


def process_group():
    """The ``torch.distributed`` module when a process group is initialised, else None."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist


def world_size() -> int:
    """The number of processes in the group (1 without torch.distributed)."""
    dist = process_group()
    return 1 if dist is None else dist.get_world_size()


def all_reduce_sum(values: dict) -> dict:
    """Sum each value of ``values`` (backend tensors or Python numbers) over all ranks.

    The values travel in one flat buffer (one collective per pass). With the pytorch backend
    on a GPU the buffer stays on the device, as NCCL wants; otherwise it goes through a CPU
    tensor, as gloo wants.
    """
    dist = process_group()
    if dist is None or dist.get_world_size() == 1 or not values:
        return values
    import torch

    keys = sorted(values)
    tensors = [values[k] for k in keys]
    sample = next((t for t in tensors if not isinstance(t, (int, float))), None)
    on_torch = tl.get_backend() == "pytorch" and sample is not None
    device = sample.device if on_torch else torch.device("cpu")
    if device.type == "cpu" and dist.get_backend() == "nccl":
        raise ValueError(
            "the NCCL process group reduces GPU tensors, but the statistics live on the CPU: "
            "put the data on the GPU, or initialise the group with backend='gloo'"
        )
    flat, shapes = [], []
    for t in tensors:
        if isinstance(t, (int, float)):
            flat.append(torch.tensor([float(t)], dtype=torch.float64, device=device))
            shapes.append(None)
        else:
            host = t if on_torch else torch.from_numpy(np.ascontiguousarray(tl.to_numpy(t)))
            flat.append(host.reshape(-1).to(device=device, dtype=torch.float64))
            shapes.append(tuple(tl.shape(t)))
    # float64 on the wire: the sum of many float32 statistics loses nothing on the way
    buffer = torch.cat(flat)
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    out, offset = {}, 0
    for key, t, shape in zip(keys, tensors, shapes, strict=True):
        if shape is None:
            value = buffer[offset].item()
            out[key] = int(round(value)) if isinstance(t, int) else value
            offset += 1
            continue
        size = int(np.prod(shape)) if shape else 1
        piece = buffer[offset : offset + size].reshape(shape)
        offset += size
        ctx = B.context_of(t)
        out[key] = piece.to(**ctx) if on_torch else B.tensor(piece.cpu().numpy(), ctx)
    return out
