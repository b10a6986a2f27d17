"""The single-blob check of ``n_clusters=None``: the cut ratio on data with and without clusters.

``GDLClustering(n_clusters=None)`` returns one cluster (with a warning) when the
best cut of its merge hierarchy severs at least 0.6 times the kNN-graph weight
that the same cut of a Gaussian with the data's mean and covariance severs
(``cut_ratio_``, docs/unknown_k.rst). This prints ``cut_ratio_`` and the chosen
K with the defaults on synthetic data (separated and touching blobs, single
Gaussian blobs in 2 to 30 dimensions, a uniform cube, and the low-dimensional
failure mode: 2-D blobs and a uniform square) and on the benchmark sets
(scikit-learn's digits plus those under --data-home).

    python benchmarks/bench_structure_check.py --data-home ../shared/datasets \
        --output benchmarks/results/structure_check.md
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits

from skjule import GDLClustering

import _common as C

SETS = ["umist", "usps", "coil20", "mnist-test", "coil100"]


def blobs(n, k, d, spread, rng):
    """k Gaussian blobs with unit noise whose centres are ``spread`` apart on average."""
    centres = rng.standard_normal((k, d)) * spread / np.sqrt(2 * d)
    y = rng.randint(0, k, n)
    return centres[y] + rng.standard_normal((n, d)), y


def synthetic(rng, n=2000):
    yield "5 separated blobs (10-d, centres ~20 sd apart)", *blobs(n, 5, 10, 20.0, rng)
    yield "5 touching blobs (10-d, centres ~4 sd apart)", *blobs(n, 5, 10, 4.0, rng)
    for d in (2, 10, 30):
        yield f"one Gaussian blob ({d}-d)", rng.standard_normal((n, d)), np.zeros(n, int)
    yield "uniform cube (10-d)", rng.rand(n, 10), np.zeros(n, int)
    # Low-dimensional data: the documented failure mode of the rule.
    yield "4 separated blobs (2-d, centres ~20 sd apart)", *blobs(n, 4, 2, 20.0, rng)
    yield "uniform square (2-d)", rng.rand(n, 2), np.zeros(n, int)


def main():
    p = C.parser(__doc__, SETS, choices=SETS)
    args = p.parse_args()
    rng = np.random.RandomState(args.seed)
    table = C.Table(
        ["data", "n", "d", "true K", "chosen K", "cut ratio", "NMI", "ACC", "seconds", "peak MB"]
    )
    C.warm_up()
    table.header()
    sets = list(synthetic(rng))
    Xd, yd = load_digits(return_X_y=True)
    sets.append(("digits", Xd, yd))
    for name in args.datasets:
        X, y = C.load(args.data_home, name)
        sets.append((name, X, y))
    for name, X, y in sets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            est, t, peak, _ = C.measure(lambda: GDLClustering(None, random_state=args.seed).fit(X))
        k_true = len(np.unique(y))
        if k_true > 1:
            nmi, acc = C.scores(y, est.labels_)
        else:
            nmi = acc = float("nan")
        d = int(np.prod(X.shape[1:]))
        table.add(name, len(y), d, k_true, est.n_clusters_, est.cut_ratio_, nmi, acc, t, peak)
    C.write(args.output, "The single-blob check: cut ratio with and without clusters", table, NOTES)


NOTES = """
`GDLClustering(n_clusters=None)` with its defaults, one seed (`--seed`). `cut ratio` is
`cut_ratio_`: the share of kNN-graph weight severed by the most modular cut of the data's
merge hierarchy (on a random subset of at most 2,000 samples), divided by the share severed
by the same cut of a Gaussian with the data's mean and covariance. At 0.6 or more the fit
returns one cluster with a warning (`chosen K` = 1). NMI and ACC are against the true labels
where there is more than one class. Synthetic blobs: unit-variance noise, centres drawn with
the given mean distance.
"""

if __name__ == "__main__":
    main()
