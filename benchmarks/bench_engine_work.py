"""What the merge engine reads, counted, and how each count grows with n.

The timed rows of bench_scale.py grow faster than n log n. This script asks
whether the engine *does* more than n log n work or only takes longer per
unit of work. On bench_scale's synthetic mixture (K=50 Gaussians, 50-d,
L2-normalised) it runs ``MergeEngine(n_neighbors=20).start(X)`` (kNN graph,
1-NN-chain start) and then ``merge_until(50)``, and prints the engine's work
counters (``MergeEngine.work_counts``) and the seconds of ``merge_until``,
then the exponent b of count ~ n^b between consecutive sizes. The graph and
the start-up are timed on their own too.

    python benchmarks/bench_engine_work.py --output benchmarks/results/engine_work.md
"""

import argparse
import io
import math
import time

import numpy as np

import _common as C
from bench_scale import mixture
from skjule import MergeEngine

COLUMNS = ["merges", "member_edges", "cross_term_in_edges", "neighbour_walk",
           "lists_updated", "flagged", "absorbed_neighbours", "lists_rebuilt",
           "rebuild_entries"]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output")
    args = p.parse_args()
    assert list(MergeEngine.WORK_COUNTERS) == COLUMNS

    times = ["merge seconds", "fast merge seconds", "graph seconds", "start seconds"]
    table = C.Table(["n"] + COLUMNS + times)
    C.warm_up()
    table.header()
    rows = []
    for n in args.sizes:
        X, _ = mixture(n, seed=args.seed)
        Xn = C.flat_l2(X)
        engine = MergeEngine(n_neighbors=20, random_state=np.random.RandomState(args.seed))
        t0 = time.perf_counter()
        graph = engine._graph(Xn)
        t1 = time.perf_counter()
        engine.start(Xn, graph=graph)
        t2 = time.perf_counter()
        engine.merge_until(50)
        t3 = time.perf_counter()
        counts = engine.work_counts()
        # The same merges without the sample-level cross terms: the time of
        # the cluster-level bookkeeping (dicts, neighbour lists, losses).
        fast = MergeEngine(n_neighbors=20, fast=True,
                           random_state=np.random.RandomState(args.seed))
        fast.start(Xn, graph=graph)
        t4 = time.perf_counter()
        fast.merge_until(50)
        t5 = time.perf_counter()
        rows.append((n, [counts[c] for c in COLUMNS] + [t3 - t2, t5 - t4, t1 - t0, t2 - t1]))
        table.add(n, *[f"{v:,}" for v in rows[-1][1][:len(COLUMNS)]], *rows[-1][1][len(COLUMNS):])
        del engine, fast, graph, X, Xn

    growth = C.Table(["n", "n log n"] + COLUMNS + times, file=io.StringIO())
    for (n0, v0), (n1, v1) in zip(rows, rows[1:]):
        growth.add(f"{n0:,} -> {n1:,}", f"{C.nlogn_exponent(n0, n1):.2f}", *[
            f"{math.log(b / a) / math.log(n1 / n0):.2f}" if a > 0 and b > 0 else "-"
            for a, b in zip(v0, v1)])
    print("\nexponents b (count ~ n^b):\n" + growth.markdown(), flush=True)
    C.write(args.output, "Merge engine work counts", table,
            NOTES + "\nExponents b of count ~ n^b between consecutive sizes "
            "(`n log n`: the b of n log n itself):\n\n" + growth.markdown() + "\n")


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
`merge seconds`: `merge_until(50)` alone (single-threaded); `fast merge seconds`: the same on
the same graph with `fast=True`, which skips the sample-level cross terms (member_edges and
cross_term_in_edges are 0 there) - so it is about the time of the cluster-level bookkeeping
(S dicts, neighbour lists, losses) and the difference the time of the sample-level reads;
`graph seconds`: the engine's kNN
graph (pynndescent, 2 threads); `start seconds`: `start` on that graph (1-NN-chain
components, cluster affinities, neighbour lists, losses).
"""

if __name__ == "__main__":
    main()
