"""Section (d): large feature maps (S = 32×32, 64×64), where one sample's S×S Gram costs
more than a step of the original optimiser.

Data are planted and streamed (``Planted.batch(start, size, fresh_noise=False)``), never
held: at N = 10,000, C = 512, S = 64×64 they would take 21 GB. Each timed run is a process
of its own (``--worker``), so its peak resident memory is its own. Per size, the rows are:

- **data only**: one pass that only produces the batches (each reduced by a sum, so that
  it is used). Every run below streams its data, so every run pays this much per pass.
- **floor: one exact evaluation**: one pass computing, per batch reshaped to (n·C, S),
  W = Z P as one GEMM with a non-negative P (S×R_S, uniform random: any P costs the same),
  and accumulating ‖Z‖² and Σ WᵀW (R_S×R_S), from which Σ_i ‖Z_i − Z_i P Pᵀ‖² =
  ‖Z‖² − 2 tr(Σ WᵀW) + tr(Σ WᵀW · PᵀP) (‖W‖² is the trace), the objective at rank
  R_C = C (A Aᵀ = I). It is the least work with which any method can know the exact
  objective of one P once, so peer / floor bounds any method's speed-up over the peer.
- the peer (the original optimiser at its best, `peers`: one epoch), then the default fit
  timed to the peer's final objective; with the two rows above, ``pairs`` times
  interleaved, each ratio taken within a pair.
- the faithful ``solver="paper"`` (left-to-right products, `speed.faithful_paper`), with the
  peer's learning rate and thread count, timed on the first ``paper_steps`` samples only
  and its time scaled by N / ``paper_steps`` (a full faithful epoch takes hours at 64×64);
  the scaling also multiplies its start, a pass of ``paper_steps`` samples, which is
  negligible beside its steps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from . import peers
from .speed import faithful_paper, label, planted
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
def data_only(batches) -> dict:
    """Seconds of one pass that only produces the batches, each reduced by a sum."""
    started = time.perf_counter()
    total = sum(float(Zb.sum()) for Zb in batches())
    return {"seconds": time.perf_counter() - started, "sum": total}


def exact_evaluation(batches, P) -> dict:
    """Seconds and result of one pass computing Σ_i ‖Z_i − Z_i P Pᵀ‖² for the given P by
    the least work there is: per batch ‖Z‖² and W = Z P as one (n·C, S) × (S, R_S) GEMM,
    Σ WᵀW (R_S×R_S) accumulated; then ‖Z‖² − 2 tr(Σ WᵀW) + tr(Σ WᵀW · PᵀP)."""
    started = time.perf_counter()
    sq_norm, WtW = 0.0, 0.0
    for Zb in batches():
        X = Zb.reshape(-1, Zb.shape[2])
        W = X @ P
        sq_norm += float(np.dot(X.ravel(), X.ravel()))
        WtW = WtW + (W.T @ W).astype(np.float64)
    objective = sq_norm - 2 * np.trace(WtW) + np.sum(WtW * (P.T @ P))
    return {"seconds": time.perf_counter() - started, "objective": float(objective)}


def floor(job, batches, rank) -> dict:
    """`exact_evaluation` with a uniform random float32 P (the data's dtype) of the rank's
    shape: any non-negative P costs the same."""
    S = job["H"] * job["W"]
    P = np.random.default_rng(0).uniform(size=(S, rank[1])).astype(np.float32)
    return exact_evaluation(batches, P)


def peer(job, batches, rank) -> dict:
    """The peer's epoch (``job``'s learning rate and setting) and its final objective."""
    seconds, A, P = peers.run(batches, rank, job["lr"], peers.Setting(job["order"], job["threads"]))
    return {"seconds": seconds, "objective": peers.objective(batches, A, P)}


def default_fit(job, batches, rank) -> dict:
    """The default fit (or the route ``job['statistics']`` forces) timed to
    ``job['target']``, with what its ``info`` says of its work."""
    seconds, objective, fit = time_to_reach(job["target"], data=batches, rank=rank, random_state=0,
                                            statistics=job.get("statistics", "auto"))
    info = fit.info
    return {
        "seconds": seconds,
        "objective": objective,
        "time": info["time"],
        "solver": info["solver"],
        "n_passes": info["n_passes"],
        "n_iter": info["n_iter"],
        "statistics": info.get("statistics"),
        "route": info.get("route"),
        "route_reason": info.get("route_reason"),
        "sq_norm": info["sq_norm"],
    }


def paper(job, batches, rank) -> dict:
    """The faithful ``solver="paper"`` on the first ``job['steps']`` samples: its seconds
    (start and steps, without its objective's pass) and those scaled to all N samples."""
    steps = job["steps"]
    data = peers.limited(batches, steps)
    seconds, _ = faithful_paper(data, rank, job["lr"], job["batch"], job["threads"])
    return {"seconds": seconds * job["n"] / steps, "measured": seconds, "steps": steps}


RUNS = {
    "data": lambda job, batches, rank: data_only(batches),
    "floor": floor,
    "peer": peer,
    "fit": default_fit,
    "paper": paper,
}


def worker(job: dict) -> dict:
    """Run the measurement ``job['kind']`` (a key of RUNS) describes; return its results."""
    spatial = (job["H"], job["W"])
    batches = streamed(job["n"], job["C"], spatial, job["n_parts"], job["batch"])
    out = RUNS[job["kind"]](job, batches, (job["C"], job["n_parts"]))
    out["peak_mib"] = peak_resident_mib()
    return out


def in_process(job: dict) -> dict:
    """``worker(job)`` in a fresh Python process (its own peak memory)."""
    result = subprocess.run(
        [sys.executable, "-m", "tensorpanda.benchmarks.large_maps", "--worker", json.dumps(job)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"large-map worker {job['kind']} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the section ---------------------------------------------------------------------------------
def size_rows(n: int, C: int, spatial: tuple, cfg) -> tuple[list[str], list[str]]:
    """(rows, notes) of one large-map size: tune the peer here, time every run in a worker."""
    S = int(np.prod(spatial))
    batch = batch_size(C, S, cfg["batch"])
    batches = streamed(n, C, spatial, cfg["n_parts"], batch)
    rank = (C, cfg["n_parts"])
    data = label(n, C, spatial)
    progress(f"(d) {data}: tuning the peer")
    plain = peers.Setting("thin products", 1)
    scored = peers.limited(batches, cfg["score_samples"])
    lr, _ = peers.best_learning_rate(scored, rank, cfg["grid_steps"], plain)
    setting, _ = peers.tune(batches, rank, lr, cfg["tune_steps"])
    job = dict(n=n, C=C, H=spatial[0], W=spatial[1], n_parts=cfg["n_parts"], batch=batch)
    peer_job = {**job, "kind": "peer", "lr": lr, "order": setting.order, "threads": setting.threads}
    runs = {kind: [] for kind in ("data", "floor", "peer", "fit")}
    for _ in range(cfg["large_pairs"]):
        progress(f"(d) {data}: data only, floor, peer ({setting}), then the default fit")
        runs["data"].append(in_process({**job, "kind": "data"}))
        runs["floor"].append(in_process({**job, "kind": "floor"}))
        runs["peer"].append(in_process(peer_job))
        target = runs["peer"][0]["objective"]
        runs["fit"].append(in_process({**job, "kind": "fit", "target": target}))
        if runs["fit"][0]["route"] != "sketched Gram":  # the sketch where auto did not take it
            runs.setdefault("sketched", []).append(in_process(
                {**job, "kind": "fit", "target": target, "statistics": "sketched"}))
    steps = min(cfg["paper_steps"], n)
    progress(f"(d) {data}: the faithful paper optimiser, {steps} steps")
    runs["paper"] = [
        in_process({**job, "kind": "paper", "lr": lr, "threads": setting.threads, "steps": steps})
    ]
    return large_rows(data, runs, setting, lr, batch)


def large_rows(data, runs, setting, lr, batch):
    """The table rows and notes of one size from its workers' measurements."""
    fit = runs["fit"][0]
    sq_norm = fit["sq_norm"]

    def rel(f):
        return f"{(max(f, 0) / sq_norm) ** 0.5:.5f}"

    def cells(kind, digits=3):
        """time, peer / run (within pairs; the median peer for an unpaired run), peak MiB"""
        seconds = [r["seconds"] for r in runs[kind]]
        peer_seconds = [p["seconds"] for p in runs["peer"]]
        if len(seconds) != len(peer_seconds):
            peer_seconds = [np.median(peer_seconds)] * len(seconds)
        ratios = [p / s for p, s in zip(peer_seconds, seconds, strict=True)]
        peak = max(r["peak_mib"] for r in runs[kind])
        return f"{spread(seconds, digits, 'not reached')} | {spread(ratios)} | {peak:.0f}"

    route = fit["route"] if fit["route"] is not None else "(no route in info)"
    faithful = runs["paper"][0]
    per_default = faithful["seconds"] / np.median([f["seconds"] for f in runs["fit"]])
    rows = [
        f"| {data} | data only: produce the batches (a sum each) | {cells('data')} "
        "| 1 pass | – | – |",
        f"| {data} | floor: one exact evaluation (W = Z P by one GEMM per batch, and its Gram) "
        f"| {cells('floor')} | 1 pass | – | – |",
        f"| {data} | original optimiser at its best ({setting}) | {cells('peer')} | 1 epoch "
        f"| – | {rel(runs['peer'][0]['objective'])} |",
        f"| {data} | default ({fit['solver']}) to the peer's objective | {cells('fit')} "
        f"| {fit['n_passes']} passes, {fit['n_iter']} iterations "
        f"| {fit['statistics']}, {route} | {rel(fit['objective'])} |",
        *_forced_rows(data, runs, cells, rel),
        f"| {data} | original optimiser, faithful left-to-right products (solver='paper'), "
        f"extrapolated from {faithful['steps']} steps | {cells('paper')} "
        f"| 1 epoch ({faithful['measured']:.2f} s for {faithful['steps']} steps × "
        f"N / {faithful['steps']}); paper / default: {per_default:.3g} | – | – |",
    ]
    notes = [
        f"{data}: batches of {batch}; peer learning rate {lr:.4g}; fit's full time "
        f"{spread([f['time'] for f in runs['fit']], 2)} s; route reason: "
        f"{fit['route_reason'] if fit['route_reason'] is not None else '(none in info)'}."
    ]
    return rows, notes


def _forced_rows(data, runs, cells, rel) -> list[str]:
    """The row of the sketched route forced (``statistics="sketched"``) where the default
    fit held the Gram instead; none otherwise."""
    if "sketched" not in runs:
        return []
    fit = runs["sketched"][0]
    return [f"| {data} | statistics='sketched' ({fit['solver']}) to the peer's objective "
            f"| {cells('sketched')} | {fit['n_passes']} passes, {fit['n_iter']} iterations "
            f"| {fit['statistics']}, {fit['route']} | {rel(fit['objective'])} |"]


def section_large(cfg) -> list[str]:
    """Table (d) over ``cfg['large']`` (C, (H, W)) at ``cfg['large_n']`` samples."""
    n = cfg["large_n"]
    rows = [
        f"Streamed planted data (N = {n}, never held); each run in its own process; times: "
        f"median (min–max) over {cfg['large_pairs']} interleaved group(s) of data only, "
        "floor, peer and default fit; peer / run taken within a group; the fit stops at "
        "the peer's objective. Every time includes producing the data (the data-only row); "
        "peer / floor is the most any method can gain over the peer. The faithful paper "
        f"optimiser runs once, on the first {cfg['paper_steps']} samples, its time scaled "
        "to N.",
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
