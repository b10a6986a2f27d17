"""How GDLClustering scales: seconds and peak memory from 10k to 1M samples.

Synthetic data: a mixture of K=50 well-separated Gaussians in 50 dimensions
(known labels), n = 10k, 100k, 300k, 1M; plus MNIST-full pixels (70,000 x 784)
when --data-home is given. For each size, in this one process:

* the kNN graph alone (the neighbour search of the engine's
  ``knn_method="auto"``: exact up to 20k samples, pynndescent beyond, run
  here with scikit-learn and pynndescent), to split the time;
* ``GDLClustering(K).fit`` end to end, as a user calls it (its own graph
  included), with its progress bars off;
* scikit-learn's ``AgglomerativeClustering(ward)`` on the kNN connectivity
  of the graph above, while the size stays within the budget: it is skipped
  when its time at a smaller size, scaled by (n / smaller n)^2, exceeds
  --budget-seconds for any smaller size measured (conservative: from 10k to
  100k its time grew as n^1.6).

    python benchmarks/bench_scale.py --data-home ../shared/datasets \
        --output benchmarks/results/scale.md
"""

import argparse
import math

import numpy as np
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering

from skjule import GDLClustering

import _common as C

# GDLClustering(sample_order="auto") fits in a locality order from this many
# samples on (its docstring).
LOCALITY_MIN = 50_000


def mixture(n, k=50, d=50, seed=0):
    """n points of k Gaussians in d dimensions: centres N(0, I), noise 0.3."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    X = centres[y] + np.float32(0.3) * rng.standard_normal((n, d), dtype=np.float32)
    return X, y


def locality_order(X, seed, leaf_size=256):
    """Leaf order of one random-projection tree on ``X``: the kind of order
    GDLClustering.fit holds the samples in from LOCALITY_MIN samples on
    (``sample_order="locality"``), to time the graph as the fit meets it.

    Each node splits its samples at the median of their projection on the
    difference of two of them chosen at random, until at most ``leaf_size``
    remain.
    """
    rng = np.random.RandomState(seed)
    order = np.arange(X.shape[0])
    stack = [(0, X.shape[0])]
    while stack:
        lo, hi = stack.pop()
        if hi - lo <= leaf_size:
            continue
        seg = order[lo:hi]
        rows = X[seg]
        i, j = rng.randint(hi - lo, size=2)
        direction = rows[i] - rows[j]
        if not np.any(direction):
            direction = rng.standard_normal(X.shape[1]).astype(rows.dtype)
        mid = (hi - lo) // 2
        order[lo:hi] = seg[np.argpartition(rows @ direction, mid)]
        stack += [(lo, lo + mid), (lo + mid, hi)]
    return order


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-home", help="folder with mnist.npz (adds MNIST-full)")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000, 1_000_000])
    p.add_argument("--budget-seconds", type=float, default=1800)
    p.add_argument("--output")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--unknown-k",
        action="store_true",
        help="add GDLClustering(n_clusters=None).fit: K chosen from the merge history",
    )
    p.add_argument("--no-ward", action="store_true", help="skip scikit-learn's ward rows")
    p.add_argument(
        "--given-order",
        action="store_true",
        help="add GDLClustering.fit on the samples in the given order (without "
        f"the locality order it uses from {LOCALITY_MIN} samples on)",
    )
    args = p.parse_args()

    C.warm_up()
    table = C.Table(
        ["data", "n", "d", "K", "method", "NMI", "ACC", "seconds", "peak MB", "peak-base MB"]
    )
    table.header()
    runs = [("mixture", n) for n in args.sizes]
    if args.data_home:
        runs.append(("MNIST-full pixels", 70_000))
    ward_time = {}
    fit_times = []
    for name, n in runs:
        if name == "mixture":
            X, y = mixture(n, seed=args.seed)
        else:
            X, y = C.load(args.data_home, "mnist-full")
            X = C.flat_l2(X)
        k = len(np.unique(y))
        Xn = C.flat_l2(X)

        # the graph of the samples in the order GDLClustering.fit uses
        order = locality_order(Xn, args.seed) if n >= LOCALITY_MIN else np.arange(n)
        Xg = Xn[order]
        idx, t, peak, dpeak = C.measure(
            lambda: C.knn_indices(Xg, 20, np.random.RandomState(args.seed))
        )
        # ward's connectivity: the same graph, in the given order
        neighbours = order[idx][np.argsort(order)]
        Xg = idx = None  # free them before the next rows
        table.add(
            name, n, X.shape[1], k, "kNN graph (Ks=20)", float("nan"), float("nan"), t, peak, dpeak
        )
        t_graph = t

        est, t, peak, dpeak = C.measure(
            lambda: GDLClustering(k, n_neighbors=20, random_state=args.seed).fit(X)
        )
        table.add(
            name,
            n,
            X.shape[1],
            k,
            "GDLClustering.fit (end to end)",
            *C.scores(y, est.labels_),
            t,
            peak,
            dpeak,
        )
        t_fit = t
        del est
        t_given = float("nan")
        if args.given_order and n >= LOCALITY_MIN:
            est, t_given, peak, dpeak = C.measure(
                lambda: GDLClustering(
                    k, n_neighbors=20, sample_order="given", random_state=args.seed
                ).fit(X)
            )
            table.add(
                name,
                n,
                X.shape[1],
                k,
                "GDLClustering.fit in the given order",
                *C.scores(y, est.labels_),
                t_given,
                peak,
                dpeak,
            )
            del est
        if name == "mixture":
            fit_times.append((n, t_graph, t_fit, t_given))

        if args.unknown_k:
            est, t, peak, dpeak = C.measure(
                lambda: GDLClustering(None, n_neighbors=20, random_state=args.seed).fit(X)
            )
            table.add(
                name,
                n,
                X.shape[1],
                k,
                f"GDLClustering(n_clusters=None).fit: chose {est.n_clusters_}",
                *C.scores(y, est.labels_),
                t,
                peak,
                dpeak,
            )
            del est
        if args.no_ward:
            continue

        prev = [(m, s) for m, s in ward_time.items() if m < n]
        predicted = max((s * (n / m) ** 2 for m, s in prev), default=0.0)
        if predicted > args.budget_seconds:
            table.add(
                name,
                n,
                X.shape[1],
                k,
                "AgglomerativeClustering (ward, kNN conn.)",
                float("nan"),
                float("nan"),
                f"skipped: ~{predicted / 60:.0f} min predicted",
                float("nan"),
                float("nan"),
            )
        else:

            def ward():
                rows = np.repeat(np.arange(n), neighbours.shape[1])
                conn = sparse.csr_matrix(
                    (np.ones(rows.size), (rows, neighbours.ravel())), shape=(n, n)
                )
                return AgglomerativeClustering(k, linkage="ward", connectivity=conn).fit_predict(Xn)

            labels, t, peak, dpeak = C.measure(ward)
            if name == "mixture":
                ward_time[n] = t
            table.add(
                name,
                n,
                X.shape[1],
                k,
                "AgglomerativeClustering (ward, kNN conn.)",
                *C.scores(y, labels),
                t,
                peak,
                dpeak,
            )

    notes = [NOTES]
    if len(fit_times) >= 2:
        lines = [
            "Growth on the mixture, as exponents b of seconds ~ n^b between consecutive "
            "sizes and over the whole range from 100k on (`n log n`: the b of n log n "
            "itself):",
            "",
            "| n | n log n | kNN graph | GDLClustering.fit | fit minus graph (engine) | "
            "fit in the given order |",
            "|---|---|---|---|---|---|",
        ]
        pairs = list(zip(fit_times, fit_times[1:]))
        large = [row for row in fit_times if row[0] >= 100_000]
        if len(large) >= 3:
            pairs.append((large[0], large[-1]))
        for (n0, g0, f0, u0), (n1, g1, f1, u1) in pairs:
            r = math.log(n1 / n0)
            given = "-" if math.isnan(u0) or math.isnan(u1) else f"{math.log(u1 / u0) / r:.2f}"
            lines.append(
                f"| {n0:,} -> {n1:,} | {C.nlogn_exponent(n0, n1):.2f} | "
                f"{math.log(g1 / g0) / r:.2f} | "
                f"{math.log(f1 / f0) / r:.2f} | "
                f"{math.log(max(f1 - g1, 1e-3) / max(f0 - g0, 1e-3)) / r:.2f} | "
                f"{given} |"
            )
        print("\n" + "\n".join(lines))
        notes.append("\n".join(lines))
    C.write(args.output, "Scaling benchmark", table, "\n\n".join(notes))


NOTES = """
`seconds` and `peak MB` (the process's peak resident memory during the call, kernel counter
reset before it; `peak-base MB` the part above what was held before) per row. The kNN graph
row is the neighbour search alone (the engine's `knn_method="auto"` run with scikit-learn's
brute-force search up to 20k samples and pynndescent, with the engine's settings and seed,
beyond), timed on its own to split the time; GDLClustering.fit builds its own graph again,
so its seconds include one graph (and its edge weights). Ward gets the kNN graph as
connectivity (its graph time is not included in its seconds). pynndescent and skjule's numba
kernels are compiled before the first row. From 50,000 samples on GDLClustering.fit runs on
the samples in the leaf order of a random-projection tree (the order's time is part of the
fit's seconds) and the kNN graph row is timed on the samples in such an order (this script's
`locality_order`), so that "fit minus graph" is the engine and the order; "GDLClustering.fit
in the given order" (with `--given-order`) switches the order off - same process, same data,
so the two rows compare on a noisy machine.
"""

if __name__ == "__main__":
    main()
