"""GDLClustering against scikit-learn's agglomerative clustering and KMeans.

All methods run in this one process on the same L2-normalised pixels. The
kNN graph row is the neighbour search the engine does (``knn_method="auto"``:
exact for small sets, pynndescent for MNIST-full), run here with
scikit-learn and pynndescent; AgglomerativeClustering(ward) gets it as
connectivity and its seconds include the row's. The GDL rows run the public
``MergeEngine``, which builds the same graph itself (same search, same seed):
their seconds include it.

    python benchmarks/bench_agglomerative.py --data-home ../shared/datasets \
        --output benchmarks/results/agglomerative.md
"""

import numpy as np
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.neighbors import NearestNeighbors

from skjule import GDLClustering, MergeEngine

import _common as C


def main():
    args = C.parser(__doc__, ["mnist-test", "usps", "coil20", "mnist-full"]).parse_args()
    table = C.Table(["dataset", "n", "method", "NMI", "ACC", "seconds", "peak MB", "peak-base MB"])
    C.warm_up()
    table.header()
    recalls = {}
    for name in args.datasets:
        X, y = C.load(args.data_home, name)
        Xf = C.flat_l2(X)
        k = len(np.unique(y))
        n = len(y)

        rs = np.random.RandomState(args.seed)
        idx, t_graph, peak, dpeak = C.measure(lambda: C.knn_indices(Xf, 20, rs))
        table.add(
            name, n, "kNN graph (Ks=20, shared)", float("nan"), float("nan"), t_graph, peak, dpeak
        )
        recalls[name] = graph_recall(Xf, idx, rs)

        def gdl(ks=20):
            e = MergeEngine(n_neighbors=ks, random_state=np.random.RandomState(args.seed))
            e.start(Xf).merge_until(k, small_cluster_fraction=0.05)
            return e.labels_

        labels, t, peak, dpeak = C.measure(gdl)
        table.add(name, n, "GDLClustering (Ks=20)", *C.scores(y, labels), t, peak, dpeak)

        ks_auto = C.auto_n_neighbors(n, k)
        labels, t, peak, dpeak = C.measure(lambda: gdl(ks_auto))
        table.add(
            name,
            n,
            f"GDLClustering (n_neighbors='auto' = {ks_auto})",
            *C.scores(y, labels),
            t,
            peak,
            dpeak,
        )

        def ward():
            rows = np.repeat(np.arange(n), idx.shape[1])
            conn = sparse.csr_matrix((np.ones(rows.size), (rows, idx.ravel())), shape=(n, n))
            return AgglomerativeClustering(k, linkage="ward", connectivity=conn).fit_predict(Xf)

        labels, t, peak, dpeak = C.measure(ward)
        table.add(
            name,
            n,
            "AgglomerativeClustering (ward, same kNN)",
            *C.scores(y, labels),
            t + t_graph,
            peak,
            dpeak,
        )

        labels, t, peak, dpeak = C.measure(
            lambda: KMeans(k, n_init=10, random_state=args.seed).fit_predict(Xf)
        )
        table.add(name, n, "KMeans (n_init=10)", *C.scores(y, labels), t, peak, dpeak)

        # The public estimator end to end (its own graph), as a user calls it.
        labels, t, peak, dpeak = C.measure(
            lambda: GDLClustering(k, n_neighbors=20, random_state=args.seed).fit_predict(X)
        )
        table.add(
            name, n, "GDLClustering.fit_predict (end to end)", *C.scores(y, labels), t, peak, dpeak
        )

    lines = [f"- {name}: {r:.4f}" for name, r in recalls.items()]
    print("\nkNN graph recall@20 against exact search (1,000 random samples):")
    print("\n".join(lines))
    C.write(
        args.output,
        "Agglomerative clustering benchmark",
        table,
        NOTES
        + "\nkNN graph recall@20 against exact search (1,000 random samples):\n\n"
        + "\n".join(lines),
    )


def graph_recall(X, idx, rs, n_queries=1000):
    """Share of the true 20 nearest neighbours found, on random samples."""
    q = rs.choice(X.shape[0], min(n_queries, X.shape[0]), replace=False)
    exact = NearestNeighbors(algorithm="brute").fit(X).kneighbors(X[q], idx.shape[1] + 1)[1]
    hits = 0
    for row, i in enumerate(q):
        true = [j for j in exact[row] if j != i][: idx.shape[1]]
        hits += len(set(true) & set(idx[i]))
    return hits / (len(q) * idx.shape[1])


NOTES = """
Pixels flattened and L2-normalised; K = number of classes. The kNN graph row is the
neighbour search of the engine's `knn_method="auto"` (scikit-learn's brute-force search for
the exact sets, pynndescent with the engine's settings and seed for MNIST-full).
`seconds` of AgglomerativeClustering include that row; the GDLClustering rows
(`MergeEngine.start` then `merge_until`) and the end-to-end row build their own graph and
include it. `peak MB` is the process's peak resident memory during the call (the kernel
counter reset before it), `peak-base MB` the part above the memory held before the call.
numba and pynndescent are compiled before the first row (a one-off ~35 s per process for
pynndescent, cached on disk for skjule's own kernels), so no row pays compilation.
"""

if __name__ == "__main__":
    main()
