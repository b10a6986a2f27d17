"""Unknown number of clusters: chosen K against true K (issue 8).

For each data set, GDLClustering and JULEClustering with ``n_clusters=None``
(the automatic rule of skjule/_engine/_nclusters.py) and with the true K, one
configuration for every set: the library defaults (``n_neighbors="auto"``,
and for JULE ``eta="auto"``); the GDL rows also with the paper's fixed
``n_neighbors=20``. "NMI@true K" is a separate fit with ``n_clusters=K`` and
otherwise the same parameters.

COIL-20 is stored at 128x128; its JULE rows use 32x32 images (4x4 block
means, ``--jule-image-size``) to keep the two JULE fits within minutes on
2 cores. The GDL rows use the stored images.

    python benchmarks/bench_auto_k.py --data-home ../shared/datasets \
        --output benchmarks/results/auto_k.md
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits

from skjule import GDLClustering, JULEClustering

import _common as C

SETS = ["digits", "umist", "usps", "coil20", "mnist-test", "coil100"]


def load(data_home, name):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return X.reshape(-1, 8, 8).astype(np.float32), y
    return C.load(data_home, name)


def main():
    p = C.parser(__doc__, SETS, choices=SETS)
    p.add_argument("--methods", nargs="+", default=["gdl", "jule"], choices=["gdl", "jule"])
    p.add_argument("--jule-image-size", type=int, default=32)
    args = p.parse_args()

    table = C.Table(
        [
            "dataset",
            "n",
            "true K",
            "method",
            "chosen K",
            "NMI",
            "ACC",
            "NMI@true K",
            "ACC@true K",
            "seconds",
            "seconds@true K",
            "peak MB",
        ]
    )
    C.warm_up()
    table.header()
    for name in args.datasets:
        X, y = load(args.data_home, name)
        k, n = len(np.unique(y)), len(y)
        runs = []
        if "gdl" in args.methods:
            for ks in (20, "auto"):
                desc = "n_neighbors=20" if ks == 20 else "defaults"
                runs.append(
                    (
                        f"GDLClustering ({desc})",
                        X,
                        lambda kk, ks=ks: GDLClustering(kk, n_neighbors=ks, random_state=args.seed),
                    )
                )
        if "jule" in args.methods:
            Xj = C.block_mean(X, args.jule_image_size)
            tag = f", {Xj.shape[1]}x{Xj.shape[2]}" if Xj.shape[1:3] != X.shape[1:3] else ""
            runs.append(
                (
                    f"JULE-RC (defaults{tag})",
                    Xj,
                    lambda kk: JULEClustering(kk, random_state=args.seed),
                )
            )
        for label, data, make in runs:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est, t, peak, _ = C.measure(lambda: make(None).fit(data))
            if any("No cluster structure" in str(w.message) for w in caught):
                label += " [no-structure warning]"
            known, t_k, peak_k, _ = C.measure(lambda: make(k).fit(data))
            table.add(
                name,
                n,
                k,
                label,
                est.n_clusters_,
                *C.scores(y, est.labels_),
                *C.scores(y, known.labels_),
                t,
                t_k,
                max(peak, peak_k),
            )

    within = [r for r in table.rows if abs(r[4] - r[2]) <= 0.2 * r[2]]
    close = [r for r in table.rows if r[5] >= r[7] - 0.03]
    summary = (
        f"\nChosen K within 20% of the true K: {len(within)} of {len(table.rows)} rows; "
        f"NMI at the chosen K within 0.03 of (or above) NMI at the true K: "
        f"{len(close)} of {len(table.rows)} rows.\n"
    )
    print(summary)
    C.write(args.output, "Unknown number of clusters", table, NOTES + summary)


NOTES = """
`chosen K` is `n_clusters_` of a fit with `n_clusters=None`; NMI and ACC are of its labels.
`NMI@true K` / `ACC@true K` are of a second fit with `n_clusters` = the true K and the same
other parameters. `seconds` is the `n_clusters=None` fit, `seconds@true K` the second fit;
`peak MB` the larger of the two. One seed (`--seed`, default 0). The rule: the most modular
cut of the full merge hierarchy on the symmetrised kNN graph, clusters under a quarter of
the mean size at that cut not counted, and one cluster when that cut severs no less than
0.6 times the graph weight the same cut of a Gaussian (data mean and covariance) severs
(docs/user_guide.rst, "Unknown number of clusters"). JULE with `n_clusters=None` picks K
by the same rule on the raw (L2-normalised) inputs, trains towards it and stops its final
re-clustering there.
"""

if __name__ == "__main__":
    main()
