"""The floor of ``n_neighbors="auto"``: GDLClustering NMI against ``Ks`` on small sets.

``"auto"`` takes ``n / K / 7`` clipped to [10, 20]. This measures why the floor
is 10: class-balanced subsets of scikit-learn's digits with 15, 30 and 60
images per class (3 random draws each), UMist and COIL-20 (32x32 block means),
each at Ks in {5, 7, 10, 14, 20} with the true K.

    python benchmarks/bench_ks_floor.py --data-home ../shared/datasets \
        --output benchmarks/results/ks_floor.md
"""

import numpy as np
from sklearn.datasets import load_digits

from skjule import GDLClustering

import _common as C

KS = (5, 7, 10, 14, 20)


def subsets(seed):
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(seed)
    for per in (15, 30, 60):
        for rep in range(3):
            idx = np.concatenate(
                [rng.choice(np.flatnonzero(y == c), per, replace=False) for c in range(10)]
            )
            yield f"digits {per}/class #{rep}", X[idx], y[idx]


def main():
    p = C.parser(__doc__, ["umist", "coil20"], choices=["umist", "coil20"])
    args = p.parse_args()
    table = C.Table(["dataset", "n", "K", "auto Ks"] + [f"NMI Ks={k}" for k in KS])
    table.header()
    sets = list(subsets(args.seed))
    for name in args.datasets:
        X, y = C.load(args.data_home, name)
        sets.append((f"{name} (32x32)" if name == "coil20" else name, C.block_mean(X, 32), y))
    for name, X, y in sets:
        k = len(np.unique(y))
        nmis = [
            C.scores(y, GDLClustering(k, n_neighbors=ks, random_state=args.seed).fit_predict(X))[0]
            for ks in KS
        ]
        auto_ks = C.auto_n_neighbors(len(y), k)
        table.add(name, len(y), k, auto_ks, *nmis)
    C.write(args.output, "n_neighbors='auto': the floor of 10", table, NOTES)


NOTES = """
One seed (`--seed`). `auto Ks` is what `n_neighbors="auto"` takes for the row (n / K / 7
within [10, 20]). NMI of GDLClustering with the true K at each fixed Ks.
"""

if __name__ == "__main__":
    main()
