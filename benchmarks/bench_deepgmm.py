"""The deep-GMM paper's comparisons (Wang & Jiang, Tables 1-3), in one process.

Rows per data set: KMeans and a diagonal GaussianMixture on the pixels; one
denoising autoencoder (AutoencoderTransformer, the paper's 500-500-2000-10)
pretrained once, then AE + KMeans and AE + GMM on its codes; VAE +
GDLClustering; DeepGMMClustering started from that same pretrained network
with eta = 0 (the paper's "DeepGMM" ablation) and every eta of the paper's
grid {1e-4, 1e-3, 1e-2, 1e-1} (the best is marked: chosen with the labels, as
the paper does), for each mixture initialisation of ``--inits`` (``em``: the
paper's EM on the codes; ``gdl``: the moments of a GDLClustering partition of
the codes, whose own row is "AE + GDLClustering") and encoder learning rate
of ``--encoder-learning-rates`` (the joint stage's; 0 freezes the encoder
there); and JULE features + GaussianMixture (the review's
"probabilistic JULE") where ``--jule-on`` asks for it.

CH is the Calinski-Harabasz score of the labels in the space the method
clusters (pixels, codes or the JULE embedding).

    python benchmarks/bench_deepgmm.py --data-home ../shared/datasets \
        --output /tmp/deepgmm.md
"""

import io
from collections import defaultdict

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score
from sklearn.mixture import GaussianMixture

from skjule import AutoencoderTransformer, DeepGMMClustering, GDLClustering, JULETransformer

import _common as C

ETAS = [1e-4, 1e-3, 1e-2, 1e-1]
INITS = ("em", "gdl")  # DeepGMMClustering(init=...)
DEFAULT_ENCODER_LR = DeepGMMClustering().encoder_learning_rate


def _ch(Z, labels):
    return calinski_harabasz_score(Z, labels) if len(np.unique(labels)) > 1 else float("nan")


def _variant(spec, parser):
    """``"gdl:20"`` -> ``("gdl", 20)``; a bad spec is a usage error."""
    init, _, epochs = spec.partition(":")
    if init not in INITS or not epochs.isdigit():
        parser.error(
            f"--variants: expected INIT:EPOCHS with INIT em or gdl and EPOCHS a "
            f"whole number, e.g. gdl:20; got {spec!r}"
        )
    return init, int(epochs)


def main():
    p = C.parser(__doc__, ["usps", "coil20", "mnist-full"])
    p.add_argument("--ae-epochs", type=int, default=50)
    p.add_argument("--epochs", type=int, default=20, help="joint deep-GMM epochs")
    p.add_argument("--inits", nargs="+", default=list(INITS), choices=INITS)
    p.add_argument(
        "--etas",
        nargs="+",
        type=float,
        default=ETAS,
        help="the eta > 0 grid (the paper's by default)",
    )
    p.add_argument(
        "--pseudo-label-epochs",
        nargs="+",
        type=int,
        default=[0],
        help="DeepGMMClustering(pseudo_label_epochs=...) values; rows for each",
    )
    p.add_argument(
        "--encoder-learning-rates",
        nargs="+",
        type=float,
        default=[DEFAULT_ENCODER_LR],
        help="DeepGMM encoder_learning_rate values (0 freezes the encoder in the joint stage)",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        metavar="INIT:EPOCHS",
        help="the DeepGMM variants to run, each an init and a number of "
        "pseudo-label epochs (e.g. em:0 gdl:20: the paper's method and the "
        "better-measured setting); replaces the cross product of --inits "
        "and --pseudo-label-epochs",
    )
    p.add_argument("--no-vae", action="store_true", help="leave out the VAE + GDLClustering row")
    p.add_argument(
        "--jule-on",
        nargs="*",
        default=["usps"],
        help="data sets that also get the JULE features + GMM row",
    )
    p.add_argument(
        "--jule-image-size",
        type=int,
        default=32,
        help="JULE gets larger images shrunk to this size by block means "
        "(COIL-20's 128x128 to 32x32; digits are not larger)",
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        help="run everything once per seed (instead of --seed) and add a "
        "table of the mean and spread over the seeds",
    )
    args = p.parse_args()
    seeds = args.seeds or [args.seed]
    pairs = (
        [_variant(v, p) for v in args.variants]
        if args.variants
        else [(i, e) for i in args.inits for e in args.pseudo_label_epochs]
    )
    variants = [(i, e, r) for i, e in pairs for r in args.encoder_learning_rates]

    table = C.Table(["dataset", "n", "method", "NMI", "ACC", "CH", "seconds", "peak MB"])
    C.warm_up()
    table.header()
    scores = defaultdict(list)  # (dataset, method) -> [(NMI, ACC)] over the seeds
    for seed, name in [(s, d) for s in seeds for d in args.datasets]:
        X, y = C.load(args.data_home, name)
        k = len(np.unique(y))
        n = len(y)
        Xf = C.unit_pixels(X)
        shown = name if len(seeds) == 1 else f"{name} (seed {seed})"

        def row(method, labels, Z, t, peak, key=None):
            nmi, acc = C.scores(y, labels)
            scores[name, key or method].append((nmi, acc))
            table.add(shown, n, method, nmi, acc, _ch(Z, labels), t, peak)

        labels, t, peak, _ = C.measure(
            lambda: KMeans(k, n_init=10, random_state=seed).fit_predict(Xf)
        )
        row("KMeans", labels, Xf, t, peak)
        labels, t, peak, _ = C.measure(
            lambda: (
                GaussianMixture(k, covariance_type="diag", random_state=seed).fit(Xf).predict(Xf)
            )
        )
        row("GMM (diag)", labels, Xf, t, peak)

        ae, t, peak, _ = C.measure(
            lambda: AutoencoderTransformer(epochs=args.ae_epochs, random_state=seed).fit(Xf)
        )
        Z = ae.transform(Xf)
        table.add(
            shown,
            n,
            f"(AE pretraining, {args.ae_epochs} epochs)",
            float("nan"),
            float("nan"),
            float("nan"),
            t,
            peak,
        )
        labels, t, peak, _ = C.measure(
            lambda: KMeans(k, n_init=10, random_state=seed).fit_predict(Z)
        )
        row("AE + KMeans", labels, Z, t, peak)
        labels, t, peak, _ = C.measure(
            lambda: (
                GaussianMixture(k, covariance_type="diag", n_init=5, random_state=seed)
                .fit(Z)
                .predict(Z)
            )
        )
        row("AE + GMM", labels, Z, t, peak)
        labels, t, peak, _ = C.measure(lambda: GDLClustering(k, random_state=seed).fit_predict(Z))
        row("AE + GDLClustering", labels, Z, t, peak)

        def vae_gdl():
            vae = AutoencoderTransformer(
                epochs=args.ae_epochs, variational=True, random_state=seed
            ).fit(Xf)
            Zv = vae.transform(Xf)
            return GDLClustering(k, n_neighbors=20).fit_predict(Zv), Zv

        if not args.no_vae:
            (labels, Zv), t, peak, _ = C.measure(vae_gdl)
            row("VAE + GDLClustering", labels, Zv, t, peak)

        started = set()  # the inits whose starting partition has its rows
        for init, n_pseudo, enc_lr in variants:
            results = []
            for eta in [0.0] + list(args.etas):
                tag = "DeepGMM" + ("" if init == "em" else f" init={init}")
                if n_pseudo:
                    tag += f" +pseudo-label stage (<= {n_pseudo} epochs)"
                if enc_lr != DEFAULT_ENCODER_LR:
                    tag += (
                        " joint stage: encoder frozen"
                        if enc_lr == 0
                        else f" joint stage: encoder lr {enc_lr:g}"
                    )
                try:
                    d, t, peak, _ = C.measure(
                        lambda: DeepGMMClustering(
                            k,
                            eta=eta,
                            autoencoder=ae,
                            epochs=args.epochs,
                            init=init,
                            pseudo_label_epochs=n_pseudo,
                            encoder_learning_rate=enc_lr,
                            random_state=seed,
                        ).fit(Xf)
                    )
                except ValueError as exc:  # divergence is reported, not fatal
                    print(f"{tag} eta={eta:g} failed: {exc}", flush=True)
                    table.add(shown, n, f"{tag} eta={eta:g}: diverged", *[float("nan")] * 5)
                    continue
                nmi = C.scores(y, d.labels_)[0]
                if init != "em" and init not in started:
                    started.add(init)
                    # the mixture the joint stage starts from, before any training
                    row(
                        f"start of init={init}: its partition",
                        d.labels_init_,
                        Z,
                        float("nan"),
                        float("nan"),
                    )
                    row(
                        f"start of init={init}: the mixture made from it",
                        d.gmm_init_.predict(Z),
                        Z,
                        float("nan"),
                        float("nan"),
                    )
                results.append((eta, d, t, peak, nmi))
                label = key = f"{tag} (eta=0, ablation)" if eta == 0 else f"{tag} eta={eta:g}"
                if n_pseudo:
                    label += f", ran {d.n_pseudo_label_epochs_}"
                row(label, d.labels_, d.transform(Xf), t, peak, key=key)
            if results[1:]:
                eta, d, t, peak, nmi = max(results[1:], key=lambda r: r[4])
                row(
                    f"{tag} best eta={eta:g} (chosen with labels)",
                    d.labels_,
                    d.transform(Xf),
                    t,
                    peak,
                )

        if name in args.jule_on:
            Xj = C.block_mean(X, args.jule_image_size)
            size = args.jule_image_size
            shrunk = f", {size}x{size}" if Xj.shape != X.shape else ""

            def jule_gmm():
                Zj = JULETransformer(k, eta=0.9, n_neighbors=20, random_state=seed).fit_transform(
                    Xj
                )
                return GaussianMixture(k, covariance_type="diag", n_init=5, random_state=seed).fit(
                    Zj
                ).predict(Zj), Zj

            (labels, Zj), t, peak, _ = C.measure(jule_gmm)
            row("JULE features + GMM (diag)" + shrunk, labels, Zj, t, peak)

    notes = NOTES
    if len(seeds) > 1:
        spread = C.Table(
            ["dataset", "method", "seeds", "NMI mean", "NMI sd", "ACC mean", "ACC sd"],
            file=io.StringIO(),
        )
        for (name, method), v in scores.items():
            if "best eta" in method or len(v) < 2:
                continue
            v = np.asarray(v)
            spread.add(
                name,
                method,
                len(v),
                v[:, 0].mean(),
                v[:, 0].std(ddof=1),
                v[:, 1].mean(),
                v[:, 1].std(ddof=1),
            )
        print("\nover the seeds:\n" + spread.markdown(), flush=True)
        notes += (
            f"\nOver the seeds {', '.join(map(str, seeds))} (sd: sample standard "
            "deviation; 'ran N' dropped from the method, see the rows above):\n\n"
            + spread.markdown()
            + "\n"
        )
    C.write(args.output, "Deep GMM benchmark", table, notes)


NOTES = """
One seed (`--seed`, default 0), or each of `--seeds` in turn. Pixels scaled to [0, 1]. The
autoencoder is pretrained once per data set (its row gives the time); `AE + ...` and `DeepGMM` rows
start from it, so their `seconds` exclude pretraining, while `VAE + GDLClustering` and `JULE
features + GMM` include training their networks. DeepGMM rows train `--epochs` joint epochs (after
a pseudo-label stage on the starting partition where the row says so: `--pseudo-label-epochs` with
the estimator's default `pseudo_label_patience=None`, i.e. all of them - outputs from before that
default ended the stage once two epochs in a row had not raised the agreement; "ran N" gives the
epochs it ran). The two "start of init=gdl" rows are the GDLClustering partition of the codes that
`init="gdl"` makes and the predictions of the diagonal mixture built from its moments, before any
joint training (their time is part of the DeepGMM rows). The "best eta" row picks the eta of the
paper's grid with the highest NMI, i.e. with the labels, as the paper does; it is not a usable
model-selection rule. "joint stage: encoder frozen" rows train only the mixture in the joint stage
(`encoder_learning_rate=0`; the pseudo-label stage trains the encoder at `learning_rate` either
way). CH: Calinski-Harabasz score in the space each method clusters. `peak MB` is the process's
peak resident memory during the call."""

if __name__ == "__main__":
    main()
