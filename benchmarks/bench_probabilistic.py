"""Hard and probabilistic clusterers side by side, with how good their probabilities are.

Rows per data set and seed, all with their defaults and the true number of
clusters: KMeans on the pixels, GDLClustering, DeepGMMClustering (its
defaults) and the deep-GMM paper's method as written (``init="em"``, no
pseudo-label stage, ``eta=0.001``, 20 joint epochs), JULEClustering and
JULEMixture (JULE's loop ending in a Gaussian mixture).

For the estimators with ``predict_proba``, the columns after ``peak MB`` say
how useful the probabilities are, after matching clusters to classes with the
Hungarian method (what ACC does): ``ECE`` is the expected calibration error
of the top probability (15 equal-width bins); ``ACC sure half`` and ``ACC
unsure half`` are the accuracies of the half of the samples with the highest
and the lowest top probability; ``largest`` is the share of the samples in
the largest cluster (1.0 means everything collapsed into one component).

    python benchmarks/bench_probabilistic.py --data-home ../shared/datasets \\
        --datasets usps coil20 --output /tmp/probabilistic.md

Images larger than ``--image-size`` (32) are shrunk by block means for JULE
(COIL-20: 128x128 to 32x32, as in bench_jule.py); the deep GMM's autoencoder
gets the pixels of the data set as they are, scaled to [0, 1].
"""

import json

import numpy as np
from sklearn.cluster import KMeans

from skjule import DeepGMMClustering, GDLClustering, JULEClustering, JULEMixture
from skjule.metrics import matched_labels

import _common as C

SETS = ["usps", "mnist-test", "umist", "coil20", "coil100", "mnist-full"]
PAPER = dict(init="em", pseudo_label_epochs=0, eta=0.001, epochs=20)


def probability_quality(y, proba, n_bins=15):
    """(ECE, accuracy of the surer half, accuracy of the less sure half)."""
    correct = (matched_labels(y, proba.argmax(1)) == y).astype(float)
    conf = proba.max(1)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        m = bins == b
        ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    order = np.argsort(-conf, kind="stable")
    half = len(order) // 2
    return ece, correct[order[:half]].mean(), correct[order[half:]].mean()


def largest_share(labels):
    return float(np.bincount(labels).max() / len(labels))


def main():
    p = C.parser(__doc__, ["usps", "coil20"], choices=SETS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument(
        "--deepgmm-params",
        nargs="*",
        default=[],
        help="JSON dicts of DeepGMMClustering parameters: one extra row each (exploration only)",
    )
    p.add_argument(
        "--jule-mixture-params",
        nargs="*",
        default=[],
        help="JSON dicts of JULEMixture parameters: one extra row each (exploration only)",
    )
    p.add_argument("--no-jule", action="store_true", help="leave out JULE and JULEMixture")
    p.add_argument("--no-paper", action="store_true", help="leave out the paper's deep GMM")
    args = p.parse_args()
    extra = [json.loads(s) for s in args.deepgmm_params]
    extra_mixture = [json.loads(s) for s in args.jule_mixture_params]

    columns = ["dataset", "n", "seed", "method", "NMI", "ACC", "seconds", "peak MB"]
    columns += ["ECE", "ACC sure half", "ACC unsure half", "largest"]
    table = C.Table(columns)
    C.warm_up()
    table.header()
    nan = float("nan")
    results = {}
    for name in args.datasets:
        X, y = C.load(args.data_home, name)
        Xu = C.unit_pixels(X)
        Xj = C.block_mean(X, args.image_size)
        k = len(np.unique(y))
        n = len(y)
        for seed in args.seeds:

            def add(method, labels, t, peak, proba=None):
                nmi, acc = C.scores(y, labels)
                results.setdefault((name, method), []).append((nmi, acc, t))
                quality = (nan,) * 3 if proba is None else probability_quality(y, proba)
                table.add(name, n, seed, method, nmi, acc, t, peak, *quality, largest_share(labels))

            labels, t, peak, _ = C.measure(
                lambda: KMeans(k, n_init=10, random_state=seed).fit_predict(C.flat_l2(X))
            )
            add("KMeans", labels, t, peak)
            labels, t, peak, _ = C.measure(
                lambda: GDLClustering(k, random_state=seed).fit_predict(X)
            )
            add("GDLClustering", labels, t, peak)
            runs = [("DeepGMMClustering", {})]
            if not args.no_paper:
                runs.append(("DeepGMM, the paper's method " + json.dumps(PAPER), PAPER))
            runs += [("DeepGMMClustering " + json.dumps(kw), kw) for kw in extra]
            for method, kw in runs:
                d, t, peak, _ = C.measure(
                    lambda kw=kw: DeepGMMClustering(k, random_state=seed, **kw).fit(Xu)
                )
                add(method, d.labels_, t, peak, d.predict_proba(Xu))
            if not args.no_jule:
                jule, t, peak, _ = C.measure(lambda: JULEClustering(k, random_state=seed).fit(Xj))
                add("JULEClustering", jule.labels_, t, peak)
                runs = [("JULEMixture", {})]
                runs += [("JULEMixture " + json.dumps(kw), kw) for kw in extra_mixture]
                for method, kw in runs:
                    jm, t, peak, _ = C.measure(
                        lambda kw=kw: JULEMixture(k, random_state=seed, **kw).fit(Xj)
                    )
                    add(method, jm.labels_, t, peak, jm.proba_)

    C.write(
        args.output,
        "Hard and probabilistic clusterers",
        table,
        C.seed_summary(results) + NOTES,
    )


NOTES = """
All estimators get the true number of clusters and their defaults; the deep GMM's paper
row sets the parameters it names. `seconds` include the deep GMM's autoencoder
pretraining. `peak MB` is the process's peak resident memory during the call. ECE and the
half accuracies use the labels only to score: clusters are matched to classes by the
Hungarian method, a sample is correct when its matched cluster is its class, and its
confidence is its top probability.
"""


if __name__ == "__main__":
    main()
