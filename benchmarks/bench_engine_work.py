"""What the merge engine reads, counted, and how each count grows with n.

The timed rows of bench_scale.py grow faster than n log n. This script asks
whether the engine *does* more than n log n work or only takes longer per
unit of work. On bench_scale's synthetic mixture (K=50 Gaussians, 50-d,
L2-normalised) it runs ``MergeEngine(n_neighbors=20).start(X)`` (kNN graph,
1-NN-chain start) and then ``merge_until(50)``, and prints the engine's work
counters (``MergeEngine.work_counts``) and the seconds of ``merge_until``
(the median of ``--repeats`` runs, each from a fresh ``start``), then the
exponent b of count ~ n^b between consecutive sizes. The graph and the
start-up are timed too: ``start(X)`` (graph and start-up), then ``start`` on
that ready graph (start-up alone); the graph's seconds are the difference.

``--baseline REV`` also times the engine of the git revision ``REV`` (its
``skjule/`` extracted with ``git archive`` and imported as the package
``skjule_baseline``) on the same graphs, its runs interleaved with this
checkout's, and checks that both give the same hierarchy (children, merge
losses, labels) - the before/after check of an engine refactor.

    python benchmarks/bench_engine_work.py --output benchmarks/results/engine_work.md
    python benchmarks/bench_engine_work.py --baseline d21e218 \
        --output benchmarks/results/engine_work.md
"""

import argparse
import importlib.util
import io
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np
from bench_scale import mixture

from skjule import MergeEngine

import _common as C

COLUMNS = [
    "merges",
    "member_edges",
    "cross_term_in_edges",
    "neighbour_walk",
    "lists_updated",
    "flagged",
    "absorbed_neighbours",
    "lists_rebuilt",
    "rebuild_entries",
]
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def import_baseline(rev):
    """The ``skjule`` package of git revision ``rev``, as ``skjule_baseline``."""
    root = tempfile.mkdtemp(prefix="skjule_baseline_")
    tar = subprocess.run(
        ["git", "-C", REPO, "archive", rev, "skjule"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(root, filter="data")
    pkg = os.path.join(root, "skjule")
    spec = importlib.util.spec_from_file_location(
        "skjule_baseline", os.path.join(pkg, "__init__.py"), submodule_search_locations=[pkg]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["skjule_baseline"] = module
    spec.loader.exec_module(module)
    return module


def timed_merges(engine_cls, Xn, graph, seed, fast):
    """A fresh ``start`` on ``graph``, then ``merge_until(50)``: (engine, seconds)."""
    engine = engine_cls(n_neighbors=20, fast=fast, random_state=np.random.RandomState(seed))
    engine.start(Xn, graph=graph)
    t0 = time.perf_counter()
    engine.merge_until(50)
    return engine, time.perf_counter() - t0


def same_hierarchy(e0, e1):
    return (
        np.array_equal(e0.children_, e1.children_)
        and np.array_equal(e0.merge_losses_, e1.merge_losses_, equal_nan=True)
        and np.array_equal(e0.labels_, e1.labels_)
    )


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="merge timings per size and mode (their median is reported)",
    )
    p.add_argument(
        "--baseline", metavar="REV", help="also time the engine of this git revision and compare"
    )
    p.add_argument("--output")
    args = p.parse_args()
    assert list(MergeEngine.WORK_COUNTERS) == COLUMNS

    versions = [("after", MergeEngine)]
    if args.baseline:
        base = import_baseline(args.baseline)
        versions = [("before", base.MergeEngine)] + versions
        base.GDLClustering(3).fit(np.random.RandomState(0).rand(300, 5).astype(np.float32))

    times = ["merge seconds", "fast merge seconds", "graph seconds", "start seconds"]
    table = C.Table(["n"] + COLUMNS + times)
    compare = C.Table(
        [
            "n",
            "merge s before",
            "merge s after",
            "change",
            "fast merge s before",
            "fast merge s after",
            "change",
            "same hierarchy",
        ],
        file=io.StringIO(),
    )
    C.warm_up()
    # Load every kernel either version calls, in both modes, before timing.
    Xw = C.flat_l2(mixture(3000, seed=args.seed)[0])
    gw = MergeEngine(n_neighbors=20, random_state=np.random.RandomState(args.seed)).start(Xw).graph_
    for _, cls in versions:
        for fast in (False, True):
            timed_merges(cls, Xw, gw, args.seed, fast)
    table.header()
    rows = []
    for n in args.sizes:
        X, _ = mixture(n, seed=args.seed)
        Xn = C.flat_l2(X)
        # start(X) builds the graph and starts; start on that graph only starts.
        t0 = time.perf_counter()
        engine = MergeEngine(n_neighbors=20, random_state=np.random.RandomState(args.seed))
        graph = engine.start(Xn).graph_
        t1 = time.perf_counter()
        engine.start(Xn, graph=graph)
        t2 = time.perf_counter()
        del engine
        # seconds[mode][version]: the merge times; `fast` skips the
        # sample-level cross terms: the time of the cluster-level bookkeeping
        # (dicts, neighbour lists, losses).
        seconds = {fast: {v: [] for v, _ in versions} for fast in (False, True)}
        same = True
        for fast in (False, True):
            for r in range(args.repeats):
                # Alternate which version runs first.
                engines = {}
                for v, cls in versions if r % 2 == 0 else versions[::-1]:
                    engines[v], s = timed_merges(cls, Xn, graph, args.seed, fast)
                    seconds[fast][v].append(s)
                if args.baseline:
                    same = same and same_hierarchy(engines["before"], engines["after"])
                if not fast and r == 0:
                    counts = engines["after"].work_counts()
                del engines
        med = {fast: {v: float(np.median(s)) for v, s in d.items()} for fast, d in seconds.items()}
        rows.append(
            (
                n,
                [counts[c] for c in COLUMNS]
                + [med[False]["after"], med[True]["after"], (t1 - t0) - (t2 - t1), t2 - t1],
            )
        )
        table.add(n, *[f"{v:,}" for v in rows[-1][1][: len(COLUMNS)]], *rows[-1][1][len(COLUMNS) :])
        if args.baseline:
            compare.add(
                n,
                *[
                    x
                    for fast in (False, True)
                    for x in (
                        med[fast]["before"],
                        med[fast]["after"],
                        f"{100 * (med[fast]['after'] / med[fast]['before'] - 1):+.1f} %",
                    )
                ],
                "yes" if same else "NO",
            )
            print(
                f"n={n:,}: "
                + ", ".join(
                    f"{'fast ' if fast else ''}merge {v} {[round(s, 3) for s in seconds[fast][v]]}"
                    for fast in (False, True)
                    for v, _ in versions
                )
                + f"; same hierarchy: {'yes' if same else 'NO'}",
                flush=True,
            )
        del graph, X, Xn

    growth = C.Table(["n", "n log n"] + COLUMNS + times, file=io.StringIO())
    for (n0, v0), (n1, v1) in zip(rows, rows[1:]):
        growth.add(
            f"{n0:,} -> {n1:,}",
            f"{C.nlogn_exponent(n0, n1):.2f}",
            *[
                f"{math.log(b / a) / math.log(n1 / n0):.2f}" if a > 0 and b > 0 else "-"
                for a, b in zip(v0, v1)
            ],
        )
    print("\nexponents b (count ~ n^b):\n" + growth.markdown(), flush=True)
    notes = NOTES.format(repeats=args.repeats)
    if args.baseline:
        print("\nbefore / after:\n" + compare.markdown(), flush=True)
        notes += BASELINE_NOTES.format(
            rev=args.baseline,
            repeats=args.repeats,
            table=compare.markdown(),
            command="python " + " ".join(sys.argv),
        )
    C.write(
        args.output,
        "Merge engine work counts",
        table,
        notes + "\nExponents b of count ~ n^b between consecutive sizes "
        "(`n log n`: the b of n log n itself):\n\n" + growth.markdown() + "\n",
    )


NOTES = """
One seed. `merges`: graph merges after the 1-NN-chain start. `member_edges`: out- and in-edges
of the samples of the smaller cluster of each merge (small-to-large, so each sample is read
O(log n) times). `cross_term_in_edges`: in-edges of neighbouring samples read for the exact
cross terms (only for samples the absorbed cluster points to). `neighbour_walk`: neighbouring
clusters of the merged cluster visited to update their lists; `lists_updated`: those whose
list may have changed. `flagged`: clusters whose S entries with the merged cluster grew.
`absorbed_neighbours`: neighbouring clusters of the absorbed cluster (its dict is folded in).
`lists_rebuilt`: neighbour lists rebuilt from a whole row of S (fewer than Kc entries left
certain); `rebuild_entries`: the S entries those rebuilds read.
`merge seconds`: `merge_until(50)` alone (single-threaded; the median of {repeats} runs, each
after a fresh `start`); `fast merge seconds`: the same on
the same graph with `fast=True`, which skips the sample-level cross terms (member_edges and
cross_term_in_edges are 0 there) - so it is about the time of the cluster-level bookkeeping
(S dicts, neighbour lists, losses) and the difference the time of the sample-level reads;
`graph seconds`: the engine's kNN
graph (pynndescent, 2 threads), as the seconds of `start(X)` minus those of `start` on its
ready graph; `start seconds`: `start` on that graph (1-NN-chain components, cluster
affinities, neighbour lists, losses).
"""

BASELINE_NOTES = """
Before / after: the engine of git revision `{rev}` (before) and of this checkout (after) on
the same graphs, {repeats} runs each per size and mode, interleaved (the first of each pair
alternates); medians of `merge_until(50)` seconds. `same hierarchy`: children, merge losses
and labels identical in every run of both modes.

{table}

Produced by (from the repository root): `{command}`
"""

if __name__ == "__main__":
    main()
