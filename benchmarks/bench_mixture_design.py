"""JULEMixture's mixture step: covariance type, dimensions and EM, on one embedding.

Per data set, one ``JULEMixture(K, random_state=seed)`` fit (with its
defaults: the JULE loop, then the mixture). The mixture step is then re-run
on the same learned embedding, from the same JULE partition, for every
variant: ``covariance_type`` x ``mixture_dims`` (K, 2K, the whole embedding)
x ``max_iter`` (1 EM iteration, or up to 100). The first row is JULE's
partition itself. Columns as in bench_probabilistic.py: NMI, ACC, ECE of the
top probability, accuracy of the surer and the less sure half, and the NMI
between the mixture's labels and JULE's (``agree``).

    python benchmarks/bench_mixture_design.py --data-home ../shared/datasets \\
        --datasets digits umist coil20 usps --output /tmp/mixture_design.md

This calls the estimator's own mixture step (``JULEMixture._fit_mixture``, a
private method) on the fitted embedding: a design study, not a use of the
public API. ``digits`` is scikit-learn's 8x8 digits; larger images are shrunk
to ``--image-size`` (32) by block means, as in bench_jule.py.
"""

import numpy as np
from bench_probabilistic import probability_quality
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score

from skjule import JULEMixture

import _common as C

SETS = ["digits", "usps", "mnist-test", "umist", "coil20", "coil100"]


def load(data_home, name):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return X.reshape(-1, 8, 8).astype(np.float32), y
    return C.load(data_home, name)[:2]


def main():
    p = C.parser(__doc__, ["digits", "umist", "coil20", "usps"], choices=SETS)
    p.add_argument("--image-size", type=int, default=32)
    args = p.parse_args()
    columns = ["dataset", "n", "variant", "NMI", "ACC", "ECE"]
    columns += ["ACC sure half", "ACC unsure half", "agree"]
    table = C.Table(columns)
    C.warm_up()
    table.header()
    nan = float("nan")
    for name in args.datasets:
        X, y = load(args.data_home, name)
        X = C.block_mean(X, args.image_size)
        k = len(np.unique(y))
        jm = JULEMixture(k, random_state=args.seed).fit(X)
        jule = jm.labels_jule_
        table.add(name, len(y), "JULE's partition", *C.scores(y, jule), nan, nan, nan, 1.0)
        one_hot = np.eye(k)[jule]
        for cov in ["tied", "full", "diag", "spherical"]:
            for dims in [k, 2 * k, None]:
                if cov == "full" and dims is None:
                    continue  # 160x160 per component: singular on small sets
                for max_iter in [1, 100]:
                    jm.set_params(covariance_type=cov, mixture_dims=dims, max_iter=max_iter)
                    _, _, proba = jm._fit_mixture(jm.embedding_, one_hot, args.seed)
                    labels = proba.argmax(1)
                    variant = f"{cov}, dims {'all' if dims is None else dims}, EM {max_iter}"
                    agree = normalized_mutual_info_score(jule, labels)
                    quality = probability_quality(y, proba)
                    table.add(name, len(y), variant, *C.scores(y, labels), *quality, agree)
    C.write(args.output, "JULEMixture: the mixture step's design", table, NOTES)


NOTES = """
One JULE fit per set (seed given by `--seed`, default 0); every variant starts from the same
partition and embedding. `EM 1` is one EM iteration after the M-step of JULE's partition;
`EM 100` runs to convergence (tolerance 1e-3) or 100 iterations. The labels are used only to
score.
"""


if __name__ == "__main__":
    main()
