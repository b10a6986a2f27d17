"""JULE with its defaults against GDLClustering and KMeans, in one process, over seeds.

Every data set gets the same call, ``JULEClustering(n_clusters=K, random_state=seed)``:
no per-set parameter. Rows per set and seed: KMeans on L2-normalised pixels,
GDLClustering on the pixels, the same JULE fit without training
(``epochs_per_period=0``: GDL on the untrained CNN's embedding, where JULE
starts from), JULE-RC and JULE-SF (one fit gives both); then per set and
method the mean and standard deviation over the seeds. ``train img/s`` is the
CNN's mean training throughput over the periods; ``steps`` the SGD steps of the fit.

    python benchmarks/bench_jule.py --data-home ../shared/datasets \
        --output benchmarks/results/jule_defaults.md

``digits`` is scikit-learn's 8x8 digits (no file needed); images larger than
``--image-size`` (32) are shrunk by block means first (COIL-20: 128x128 -> 32x32).
"""

import json

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

from skjule import GDLClustering, JULEClustering

import _common as C

SETS = ["digits", "usps", "mnist-test", "umist", "coil20", "coil100", "mnist-full"]


def load(data_home, name):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return X.reshape(-1, 8, 8).astype(np.float32), y
    return C.load(data_home, name)


def main():
    p = C.parser(__doc__, SETS, choices=SETS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--params",
        default="{}",
        help="JSON dict of JULEClustering parameters for every set (exploration only: "
        "the committed results use the defaults)",
    )
    p.add_argument("--image-size", type=int, default=32)
    args = p.parse_args()
    params = json.loads(args.params)
    label = "JULE" + (f" {json.dumps(params)}" if params else "")

    table = C.Table(
        [
            "dataset",
            "n",
            "seed",
            "method",
            "NMI",
            "ACC",
            "seconds",
            "peak MB",
            "train img/s",
            "steps",
        ]
    )
    C.warm_up()
    table.header()
    nan = float("nan")
    results = {}
    for name in args.datasets:
        X, y = load(args.data_home, name)
        X = C.block_mean(X, args.image_size)
        Xf = C.flat_l2(X)
        k = len(np.unique(y))
        n = len(y)
        for seed in args.seeds:

            def add(method, labels, t, peak, ips=nan, steps=nan):
                nmi, acc = C.scores(y, labels)
                results.setdefault((name, method), []).append((nmi, acc, t))
                table.add(name, n, seed, method, nmi, acc, t, peak, ips, steps)

            labels, t, peak, _ = C.measure(
                lambda: KMeans(k, n_init=10, random_state=seed).fit_predict(Xf)
            )
            add("KMeans", labels, t, peak)
            labels, t, peak, _ = C.measure(
                lambda: GDLClustering(k, random_state=seed).fit_predict(X)
            )
            add("GDLClustering", labels, t, peak)
            # the same fit without training: GDL on the untrained CNN's embedding
            # (where JULE starts from), to tell what the training adds
            untrained, t, peak, _ = C.measure(
                lambda: JULEClustering(
                    k, random_state=seed, **dict(params, epochs_per_period=0)
                ).fit(X)
            )
            add("untrained CNN + GDL (epochs_per_period=0)", untrained.labels_, t, peak)
            jule, t, peak, _ = C.measure(
                lambda: JULEClustering(k, random_state=seed, **params).fit(X)
            )
            periods = [h for h in jule.history_ if h["period"] != "RC"]
            ips = float(np.mean([h["images_per_second"] for h in periods]))
            steps = int(sum(h["steps"] for h in periods))
            add(f"{label}-RC", jule.labels_, t, peak, ips, steps)
            add(f"{label}-SF", jule.labels_sf_, t, peak, ips, steps)

    C.write(
        args.output,
        "JULE with its defaults, over seeds",
        table,
        C.seed_summary(results) + NOTES,
    )


NOTES = """
`seconds` of the JULE-RC and JULE-SF rows is the one fit that produces both (training,
embedding passes, merges and the RC re-run). `peak MB` is the process's peak resident
memory during the call. The standard deviation is over the seeds (population form).
"""


if __name__ == "__main__":
    main()
