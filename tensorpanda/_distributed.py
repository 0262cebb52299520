"""All-reduce of sufficient statistics across torch.distributed ranks.

Every statistic the Gram solvers need is a sum over samples, so fitting on data split across
processes is one all-reduce per pass, not a new algorithm. Before each sum the ranks compare
a small summary of their pass (`agree`): the layout and dtype of their data, on the
first pass of a fit the fit's parameters, and whether their pass failed (e.g. on NaN). Any
disagreement or failure raises the same error on every rank, instead of a C++ abort, a
"connection reset" or a rank waiting forever for a peer that has gone. torch is never
imported here until a process group exists: without one the single-process path is
untouched.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import re
import sys

import numpy as np
import tensorly as tl

from . import _backend as B

# Bytes of one rank's summary in the exchange that explains a disagreement.
SUMMARY_BYTES = 2048
# Passes since the first pass of the current fit: equal on every rank while they run the same
# fit, so a rank whose fit stopped earlier is caught at the next pass of either.
_PASS = [0]
# The exceptions re-raised as themselves on every rank; any other becomes a RuntimeError.
_KINDS = {kind.__name__: kind for kind in (FileNotFoundError, TypeError, ValueError)}


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


def fit_header(source=None, config=None) -> dict:
    """What the ranks must agree on before their statistics are summed: the per-sample
    layout, dtype and backend of their data and, with ``config`` (the first pass of a fit),
    the parameters that decide which statistics each pass sums and when the fit stops."""
    header = {"TensorLy backend": tl.get_backend()}
    if source is not None:
        context, spatial = source.context, source.spatial_shape
        header["number of channels C"] = source.n_channels
        header["spatial shape (H, W)"] = None if spatial is None else list(spatial)
        header["dtype"] = None if context is None else B.dtype_name(context)
    if config is None:
        return header
    R_C, R_S = config.rank
    if R_C is None and source is not None:
        R_C = source.n_channels  # None means all channels: equal to the number itself
    header["rank (R_C, R_S)"] = [_plain(R_C), _plain(R_S)]
    for name in ("model", "solver", "appearances", "statistics", "init", "tol", "max_iter",
                 "inner_max_iter", "basis_samples", "learning_rate", "random_state"):
        header[name] = _plain(getattr(config, name, None))
    return header


def _plain(value):
    """A parameter as a JSON value that is equal on two ranks exactly when the parameters
    are: numbers and strings as they are, given factors by a digest of their values."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "shape"):  # an initial factor: its values, not its identity, matter
        host = np.ascontiguousarray(B.to_host(value))
        return f"array {host.shape} #{_digest(host.tobytes())}"
    if isinstance(value, np.random.RandomState):  # its state decides the random start
        _, keys, *rest = value.get_state()
        return f"a RandomState #{_digest(keys.tobytes() + repr(rest).encode())}"
    if isinstance(value, np.random.Generator):
        state = json.dumps(value.bit_generator.state, sort_keys=True, default=str)
        return f"a Generator #{_digest(state.encode())}"
    return f"a {type(value).__name__}"


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=6).hexdigest()


def agree(
    header: dict,
    totals: dict,
    error: BaseException | None,
    context: dict | None,
    first: bool = False,
) -> None:
    """Compare this rank's pass with the others' before the statistics are summed; raise the
    same error on every rank if any rank's pass failed (``error``) or the ranks disagree on
    the ``header`` or on the statistics they summed.

    Every rank runs the same collectives whatever happened: one all-reduce of two integers
    per rank (a failure flag and a digest of the summary) and, only when something is wrong,
    a second one that brings every rank's summary, to name what differs on which ranks.
    ``first``: the first pass of a fit (the pass count starts again).
    """
    dist = process_group()
    if dist is None or dist.get_world_size() == 1:
        if error is not None:
            raise error
        return
    import torch

    device, problem = _device(dist, context)
    if error is None:
        error = problem
    _PASS[0] = 1 if first else _PASS[0] + 1
    summary = {"header": header, "statistics": _layout(totals), "pass": _PASS[0]}
    text = json.dumps(summary, sort_keys=True, default=str)
    if error is not None:
        kind = next((k for k in _KINDS.values() if isinstance(error, k)), RuntimeError)
        message = str(error)
        while True:  # the message as long as the summary's bytes allow
            summary["error"] = [kind.__name__, message]
            text = json.dumps(summary, sort_keys=True, default=str)
            if len(text.encode()) <= SUMMARY_BYTES or not message:
                break
            message = message[: len(message) // 2 - 3] + "..." if len(message) > 6 else ""
    digest = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "little")
    world, rank = dist.get_world_size(), dist.get_rank()
    flags = torch.zeros((world, 2), dtype=torch.int64, device=device)
    flags[rank, 0] = int(error is not None)
    flags[rank, 1] = digest
    _all_reduce(dist, flags)
    failed, digests = flags[:, 0].tolist(), flags[:, 1].tolist()
    if not any(failed) and len(set(digests)) == 1:
        return
    raw = text.encode()[:SUMMARY_BYTES]
    table = torch.zeros((world, SUMMARY_BYTES), dtype=torch.uint8, device=device)
    table[rank, : len(raw)] = torch.frombuffer(bytearray(raw), dtype=torch.uint8).to(device)
    _all_reduce(dist, table)
    summaries = [_decode(row) for row in table.cpu().numpy()]
    raise _explain(summaries) from error


def raise_on_every_rank(error: Exception) -> None:
    """Raise ``error`` here and the same error on every other rank (met in the first pass of
    its fit): for a rank that refuses a fit before reading any data, so that the others do
    not wait for it. Without a process group: ``raise error``."""
    agree(fit_header(), {}, error, None, first=True)


def shared_seed(random_state):
    """``random_state``, except that None becomes one seed drawn on rank 0 for all ranks:
    ranks that each drew their own start would fit different factors, and stop after
    different numbers of passes. Without a process group: ``random_state`` itself."""
    dist = process_group()
    if random_state is not None or dist is None or dist.get_world_size() == 1:
        return random_state
    import torch

    device, _ = _device(dist, None)
    seed = torch.zeros(1, dtype=torch.int64, device=device)
    if dist.get_rank() == 0:
        seed[0] = int(np.random.SeedSequence().entropy % 2**32)
    _all_reduce(dist, seed)  # the others add zeros
    return int(seed.item())


def _device(dist, context: dict | None):
    """Where this rank's collectives run: the data's GPU, or the CPU for gloo; with NCCL
    and data on the CPU also the error every rank will raise."""
    import torch

    device = (context or {}).get("device") if tl.get_backend() == "pytorch" else None
    if device is not None and torch.device(device).type != "cpu":
        return torch.device(device), None
    if dist.get_backend() != "nccl":
        return torch.device("cpu"), None
    return torch.device("cuda", torch.cuda.current_device()), ValueError(
        "the NCCL process group reduces GPU tensors, but the statistics live on the CPU: "
        "put the data on the GPU, or initialise the group with backend='gloo'"
    )


def _layout(totals: dict) -> str:
    """The keys and shapes of a pass's totals: the ranks' buffers must match entry by entry."""
    return ", ".join(
        key if isinstance(value, (int, float)) else f"{key} {tuple(tl.shape(value))}"
        for key, value in sorted(totals.items())
    )


def _decode(row: np.ndarray) -> dict:
    text = bytes(row).rstrip(b"\0").decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # cut at SUMMARY_BYTES: compare what is left as it is
        return {"header": {"summary": text}}


def _explain(summaries: list) -> Exception:
    """The error every rank raises, built from all the ranks' summaries (so it is the same
    on each): the first failure, else what the ranks disagree on."""
    world = len(summaries)
    failed = [r for r, s in enumerate(summaries) if "error" in s]
    if failed:
        kind, message = summaries[failed[0]]["error"]
        others = f" (and on {_ranks(failed[1:])})" if failed[1:] else ""
        text = f"on rank {failed[0]} of {world} processes{others}: {message}"
        return _KINDS.get(kind, RuntimeError)(text)
    passes = [s.get("pass") for s in summaries]
    if len(set(passes)) > 1:
        return ValueError(
            f"the {world} processes of the torch.distributed group are at different passes "
            f"of their fits ({_by_rank(passes)}, counting from each fit's first): their fits "
            "stopped after different numbers of passes. Every rank must run the same fit with "
            "the same parameters (random_state included), and a callback must decide the same "
            "on every rank"
        )
    headers = [s.get("header") or {} for s in summaries]
    names = list(dict.fromkeys(name for h in headers for name in h))
    differences = [_differs(name, [h.get(name) for h in headers]) for name in names]
    differences = [d for d in differences if d]
    if differences:
        return ValueError(
            f"the {world} processes of the torch.distributed group disagree: "
            + "; ".join(differences)
            + ". Every rank must fit data of the same per-sample shape (C, H, W), dtype and "
            "backend, with the same parameters: only the samples may differ between ranks"
        )
    layouts = [s.get("statistics") for s in summaries]
    return ValueError(
        f"the {world} processes of the torch.distributed group summed different statistics "
        f"in this pass: {_differs('what each rank summed', layouts)}. The ranks must "
        "run the same fit, with the same parameters, on data of the same layout"
    )


def _differs(name: str, values: list) -> str:
    """``"name differs (v1 on rank 0, v2 on ranks 1, 2)"``, or "" when all agree."""
    return f"{name} differs ({_by_rank(values)})" if _by_rank(values) else ""


def _by_rank(values: list) -> str:
    """``"v1 on rank 0, v2 on ranks 1, 2"``, or "" when all agree."""
    groups: dict = {}
    for rank, value in enumerate(values):
        groups.setdefault(json.dumps(value, sort_keys=True), []).append(rank)
    if len(groups) == 1:
        return ""
    return ", ".join(f"{_show(json.loads(v))} on {_ranks(r)}" for v, r in groups.items())


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _ranks(ranks: list) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


def _all_reduce(dist, tensor) -> None:
    """``dist.all_reduce`` (sum), with a clear error when a peer has gone."""
    try:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    except RuntimeError as err:  # gloo: "Connection closed by peer"; NCCL: a timeout
        first = (str(err).strip().splitlines() or [""])[0]
        first = re.sub(r"^\[[^\]]*\]\s*", "", first)  # gloo's "[source file:line]" prefix
        raise RuntimeError(
            f"rank {dist.get_rank()}: summing the statistics across the "
            f"{dist.get_world_size()} processes failed ({first}). Another process most "
            "likely stopped before this point (see its error) or ran a different fit; every "
            "rank must call the same fit, with the same parameters"
        ) from err


def all_reduce_sum(values: dict) -> dict:
    """Sum each value of ``values`` (backend tensors or Python numbers) over all ranks.

    The values travel in one flat buffer (one collective per pass). With the pytorch backend
    on a GPU the buffer stays on the device, as NCCL wants; otherwise it goes through a CPU
    tensor, as gloo wants. Call `agree` first: the buffers must match across ranks.
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
    _all_reduce(dist, buffer)
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
