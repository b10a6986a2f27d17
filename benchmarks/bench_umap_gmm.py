"""UMAP to 10 dimensions + GaussianMixture, beside GDLClustering and KMeans (issue 8).

The issue's reference point for JULE on MNIST-full: "what UMAP to 10-d plus a
GaussianMixture gets on the same pixels in a minute". Needs umap-learn, which
is not a skjule dependency (``pip install umap-learn``). JULE is not run here
(most of an hour on MNIST-full): ``bench_jule.py --datasets mnist-full`` runs it.

    python benchmarks/bench_umap_gmm.py --data-home ../shared/datasets \
        --output benchmarks/results/umap_gmm.md
"""

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from skjule import GDLClustering

import _common as C


def main():
    p = C.parser(__doc__, ["mnist-full"])
    args = p.parse_args()
    try:
        import umap
    except ImportError:
        raise SystemExit("bench_umap_gmm.py needs umap-learn: pip install umap-learn") from None

    table = C.Table(["dataset", "n", "method", "NMI", "ACC", "seconds", "peak MB"])
    C.warm_up()
    table.header()
    for name in args.datasets:
        X, y = C.load(args.data_home, name)
        k, n = len(np.unique(y)), len(y)
        Xf = C.flat_l2(X)

        def umap_gmm():
            Z = umap.UMAP(
                n_components=10, n_neighbors=15, min_dist=0.0, random_state=args.seed
            ).fit_transform(Xf)
            return GaussianMixture(
                k, covariance_type="full", n_init=1, random_state=args.seed
            ).fit_predict(Z)

        labels, t, peak, _ = C.measure(umap_gmm)
        table.add(name, n, "UMAP (10-d) + GaussianMixture", *C.scores(y, labels), t, peak)
        labels, t, peak, _ = C.measure(
            lambda: GDLClustering(k, random_state=args.seed).fit_predict(X)
        )
        table.add(name, n, "GDLClustering (defaults)", *C.scores(y, labels), t, peak)
        labels, t, peak, _ = C.measure(
            lambda: KMeans(k, n_init=10, random_state=args.seed).fit_predict(Xf)
        )
        table.add(name, n, "KMeans", *C.scores(y, labels), t, peak)
    C.write(args.output, "UMAP + GMM against the agglomerative engine", table, NOTES)


NOTES = """
All rows on the same L2-normalised pixels, in one process, one seed (`--seed`). UMAP with
a `random_state` runs single-threaded (reproducible); `min_dist=0.0` is UMAP's advice for
clustering. JULE is not run here: `bench_jule.py --datasets mnist-full` runs it.
"""

if __name__ == "__main__":
    main()
