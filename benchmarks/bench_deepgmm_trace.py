"""What the deep GMM's training does to the codes, epoch by epoch.

One data set, one pretrained autoencoder (``AutoencoderTransformer``, 30
epochs by default), then ``DeepGMMClustering(init="gdl")`` with a
pseudo-label stage and a joint stage for each ``--etas`` value, all started
from that network. Prints one table of the fits' ``history_`` - per epoch the
stage, the codes' spread per dimension (``code_std``), the smallest and
largest component standard deviation, the mean log-likelihood and the
agreement with the starting partition - and one table of the final NMI /
ACC, with seconds and peak memory.

    python benchmarks/bench_deepgmm_trace.py --data-home ../shared/datasets \
        --datasets mnist-test --output benchmarks/results/deepgmm_trace.md
"""

import io
import math

import numpy as np

from skjule import AutoencoderTransformer, DeepGMMClustering

import _common as C


def main():
    p = C.parser(__doc__, ["mnist-test"])
    p.add_argument("--ae-epochs", type=int, default=30)
    p.add_argument("--pseudo-label-epochs", type=int, default=20)
    p.add_argument("--epochs", type=int, default=10, help="joint epochs")
    p.add_argument("--etas", nargs="+", type=float, default=[0.0, 0.01])
    args = p.parse_args()

    table = C.Table(["dataset", "n", "method", "NMI", "ACC", "seconds", "peak MB"])
    trace = C.Table(
        [
            "dataset",
            "eta",
            "epoch",
            "stage",
            "code_std",
            "min component std",
            "max component std",
            "log-likelihood",
            "agreement",
        ],
        file=io.StringIO(),
    )
    C.warm_up()
    table.header()
    for name in args.datasets:
        X, y = C.load(args.data_home, name)
        k, n = len(np.unique(y)), len(y)
        Xf = C.unit_pixels(X)
        ae, t, peak, _ = C.measure(
            lambda: AutoencoderTransformer(epochs=args.ae_epochs, random_state=args.seed).fit(Xf)
        )
        table.add(
            name,
            n,
            f"(AE pretraining, {args.ae_epochs} epochs)",
            float("nan"),
            float("nan"),
            t,
            peak,
        )
        Z = ae.transform(Xf)
        start_std = float(Z.std(0).mean())
        for eta in args.etas:
            d, t, peak, _ = C.measure(
                lambda: DeepGMMClustering(
                    k,
                    eta=eta,
                    autoencoder=ae,
                    init="gdl",
                    epochs=args.epochs,
                    pseudo_label_epochs=args.pseudo_label_epochs,
                    random_state=args.seed,
                ).fit(Xf)
            )
            if eta == args.etas[0]:
                table.add(
                    name,
                    n,
                    "start: GDL partition of the codes",
                    *C.scores(y, d.labels_init_),
                    float("nan"),
                    float("nan"),
                )
            table.add(
                name,
                n,
                f"DeepGMM init=gdl, {args.pseudo_label_epochs} pseudo-label + "
                f"{args.epochs} joint epochs, eta={eta:g}",
                *C.scores(y, d.labels_),
                t,
                peak,
            )
            trace.add(
                name,
                f"{eta:g}",
                0,
                "pretrained",
                start_std,
                float("nan"),
                float("nan"),
                float("nan"),
                float("nan"),
            )
            for h in d.history_:
                trace.add(
                    name,
                    f"{eta:g}",
                    h["epoch"] + 1,
                    h["stage"],
                    h["code_std"],
                    math.sqrt(h["min_variance"]),
                    math.sqrt(h["max_variance"]),
                    h["log_likelihood"],
                    h["agreement"],
                )
    print("\n" + trace.markdown(), flush=True)
    C.write(
        args.output,
        "Deep GMM training trace",
        table,
        NOTES
        + "\nPer epoch (`history_` of each fit; epoch 0: the pretrained codes):\n\n"
        + trace.markdown()
        + "\n",
    )


NOTES = """
One seed (`--seed`). Pixels scaled to [0, 1]. `code_std`: the codes' standard deviation per
dimension within a batch, averaged over dimensions and batches (`history_["code_std"]`;
epoch 0: over the whole set, before any deep-GMM training). Component std: the square roots
of `history_["min_variance"]` and `["max_variance"]` (over components and dimensions).
Log-likelihood: in the pseudo-label stage each code's density under its own starting
component, in the joint stage the mixture's density. Agreement: share of samples whose most
probable component is their starting one (pseudo-label stage only).
"""

if __name__ == "__main__":
    main()
