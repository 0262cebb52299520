"""Section (d): large feature maps (S = 32×32, 64×64), where one sample's S×S Gram costs
more than a step of the original optimiser.

Data are planted and streamed (``Planted.batch(start, size, fresh_noise=False)``), never
held: at N = 10,000, C = 512, S = 64×64 they would take 21 GB. Each timed run is a process
of its own (``--worker``), so its peak resident memory is its own: the peer (the original
optimiser at its best, `peers`) first, then the default fit timed to the peer's final
objective, ``pairs`` times interleaved.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from . import peers
from .speed import label, planted
from .timing import peak_resident_mib, progress, spread, time_to_reach

# Samples per batch: about this many bytes of float32 per batch.
BATCH_BYTES = 64 * 2**20


def batch_size(C: int, S: int, cap: int) -> int:
    """Samples per streamed batch: ~64 MiB of float32, at most ``cap``."""
    return int(max(1, min(cap, BATCH_BYTES // (4 * C * S))))


def streamed(n: int, C: int, spatial: tuple, n_parts: int, batch: int):
    """``batches`` of n planted samples, generated batch by batch (pooled noise)."""
    model = planted(C, spatial, n_parts, seed=2)

    def batches():
        for start in range(0, n, batch):
            yield model.batch(start, min(batch, n - start), fresh_noise=False)

    return batches


# -- the worker: one timed run in a fresh process -------------------------------------------------
def worker(job: dict) -> dict:
    """Run the peer or the default fit described by ``job``; return its measurements."""
    spatial = (job["H"], job["W"])
    batches = streamed(job["n"], job["C"], spatial, job["n_parts"], job["batch"])
    rank = (job["C"], job["n_parts"])
    if job["kind"] == "peer":
        setting = peers.Setting(job["order"], job["threads"])
        seconds, A, P = peers.run(batches, rank, job["lr"], setting)
        out = {"seconds": seconds, "objective": peers.objective(batches, A, P)}
    else:
        seconds, objective, fit = time_to_reach(job["target"], data=batches, rank=rank,
                                                random_state=0)
        info = fit.info
        out = {"seconds": seconds, "objective": objective, "time": info["time"],
               "solver": info["solver"], "n_passes": info["n_passes"],
               "n_iter": info["n_iter"], "statistics": info.get("statistics"),
               "route": info.get("route"), "route_reason": info.get("route_reason"),
               "sq_norm": info["sq_norm"]}
    out["peak_mib"] = peak_resident_mib()
    return out


def in_process(job: dict) -> dict:
    """``worker(job)`` in a fresh Python process (its own peak memory)."""
    result = subprocess.run(
        [sys.executable, "-m", "tensorpanda.benchmarks.large_maps", "--worker", json.dumps(job)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"large-map worker {job['kind']} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the section ---------------------------------------------------------------------------------
def size_rows(n: int, C: int, spatial: tuple, cfg) -> tuple[list[str], list[str]]:
    """(rows, notes) of one large-map size: tune the peer here, time both in workers."""
    S = int(np.prod(spatial))
    batch = batch_size(C, S, cfg["batch"])
    batches = streamed(n, C, spatial, cfg["n_parts"], batch)
    rank = (C, cfg["n_parts"])
    progress(f"(d) {label(n, C, spatial)}: tuning the peer")
    plain = peers.Setting("thin products", 1)
    scored = peers.limited(batches, cfg["score_samples"])
    lr, _ = peers.best_learning_rate(scored, rank, cfg["grid_steps"], plain)
    setting, _ = peers.tune(batches, rank, lr, cfg["tune_steps"])
    job = {"n": n, "C": C, "H": spatial[0], "W": spatial[1], "n_parts": cfg["n_parts"],
           "batch": batch}
    peer_runs, fit_runs = [], []
    for _ in range(cfg["large_pairs"]):
        progress(f"(d) {label(n, C, spatial)}: peer ({setting}), then the default fit")
        peer_runs.append(in_process({**job, "kind": "peer", "lr": lr, "order": setting.order,
                                     "threads": setting.threads}))
        target = peer_runs[0]["objective"]
        fit_runs.append(in_process({**job, "kind": "fit", "target": target}))
    return large_rows(label(n, C, spatial), peer_runs, fit_runs, setting, lr, batch)


def large_rows(data, peer_runs, fit_runs, setting, lr, batch):
    """The table rows and notes of one size from its workers' measurements."""
    fit = fit_runs[0]
    sq_norm = fit["sq_norm"]

    def rel(f):
        return f"{(max(f, 0) / sq_norm) ** 0.5:.5f}"

    ratios = [p["seconds"] / f["seconds"] for p, f in zip(peer_runs, fit_runs, strict=True)]
    route = fit["route"] if fit["route"] is not None else "(no route in info)"
    rows = [
        f"| {data} | original optimiser at its best ({setting}) "
        f"| {spread([p['seconds'] for p in peer_runs], 2)} | 1 "
        f"| {max(p['peak_mib'] for p in peer_runs):.0f} | 1 epoch | – "
        f"| {rel(peer_runs[0]['objective'])} |",
        f"| {data} | default ({fit['solver']}) to the peer's objective "
        f"| {spread([f['seconds'] for f in fit_runs], 2)} | {spread(ratios)} "
        f"| {max(f['peak_mib'] for f in fit_runs):.0f} "
        f"| {fit['n_passes']} passes, {fit['n_iter']} iterations "
        f"| {fit['statistics']}, {route} | {rel(fit['objective'])} |",
    ]
    notes = [f"{data}: batches of {batch}; peer learning rate {lr:.4g}; fit's full time "
             f"{spread([f['time'] for f in fit_runs], 2)} s; route reason: "
             f"{fit['route_reason'] if fit['route_reason'] is not None else '(none in info)'}."]
    return rows, notes


def section_large(cfg) -> list[str]:
    """Table (d) over ``cfg['large']`` (C, (H, W)) at ``cfg['large_n']`` samples."""
    n = cfg["large_n"]
    rows = [
        f"Streamed planted data (N = {n}, never held); each run in its own process; times: "
        f"median (min–max) over {cfg['large_pairs']} interleaved pair(s); "
        "peer / run taken within a pair; the fit stops at the peer's objective.",
        "",
        "| data (N, C, S) | run | time (s) | peer / run | peak memory (MiB) | work "
        "| statistics, route | final relative error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for C, spatial in cfg["large"]:
        more, note = size_rows(n, C, spatial, cfg)
        rows += more
        notes += note
    return rows + [""] + [f"- {line}" for line in notes]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(json.loads(sys.argv[2]))))
    else:
        sys.exit("usage: python -m tensorpanda.benchmarks.large_maps --worker JOB_JSON")
