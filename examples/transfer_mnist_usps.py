"""
Transferring a representation between MNIST and USPS (downloads the data)
===========================================================================

The paper's Table 6: train JULE on one digit set, embed the other set with
the trained network (images brought to the source set's size and layout:
MNIST digits sit in the central 20x20 pixels of their frame, USPS digits fill
it) and cluster those features with the agglomerative engine. Compared with clustering the
raw pixels of the target set, and with JULE trained on the target set itself.

Run::

    python examples/transfer_mnist_usps.py --data-home DIR

``--data-home`` is a folder with ``mnist.npz`` and ``usps.npz`` (arrays
``X``, ``y``); without it the data are fetched with
:func:`skjule.datasets.fetch_mnist` and :func:`skjule.datasets.fetch_usps`.
"""

import argparse
import os
import time

import numpy as np
import torch
from sklearn.metrics import normalized_mutual_info_score as nmi

from skjule import GDLClustering, JULEClustering, JULETransformer


def load(data_home, name):
    if data_home is None:
        from skjule.datasets import fetch_mnist, fetch_usps

        if name == "mnist-test":
            return fetch_mnist(subset="test", return_X_y=True)
        return fetch_usps(return_X_y=True)
    with np.load(os.path.join(data_home, "mnist.npz" if name == "mnist-test" else "usps.npz")) as d:
        X, y = d["X"], d["y"]
    return (X[60000:], y[60000:]) if name == "mnist-test" else (X, y)


def resize(images, size):
    """Bilinear (antialiased) resize of grey images to size x size, in [0, 1]."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if x.max() > 1.5:
        x = x / 255.0
    x = torch.nn.functional.interpolate(
        x[:, None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return x[:, 0].numpy()


def to_layout(images, size):
    """Bring digits to the other set's layout: MNIST digits sit in the central
    20x20 of a 28x28 frame, USPS digits fill their 16x16 frame. So USPS goes to
    MNIST as 20x20 padded by 4 pixels, MNIST to USPS as its central 20x20."""
    h = images.shape[1]
    if h == 16 and size == 28:
        return np.pad(resize(images, 20), ((0, 0), (4, 4), (4, 4)))
    if h == 28 and size == 16:
        return resize(np.asarray(images)[:, 4:24, 4:24], 16)
    return resize(images, size)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--data-home", default=None)
    p.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="use only the first N images of each set (quick runs)",
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    sets = {name: load(args.data_home, name) for name in ("mnist-test", "usps")}
    if args.max_samples:
        sets = {k: (X[: args.max_samples], y[: args.max_samples]) for k, (X, y) in sets.items()}
    print(
        f"{'source -> target':<22} {'raw pixels':>10} {'transfer':>9} "
        f"{'JULE on target':>15} {'seconds':>8}"
    )
    for source, target in (("mnist-test", "usps"), ("usps", "mnist-test")):
        Xs, _ = sets[source]
        Xt, yt = sets[target]
        t = time.perf_counter()
        # The paper's eta and Ks (its Table 6 setting).
        paper = dict(eta=0.9, n_neighbors=20, random_state=args.seed)
        net = JULETransformer(n_clusters=10, **paper).fit(Xs)
        Xt_resized = to_layout(Xt, net.sample_shape_[0])
        feats = net.transform(Xt_resized)
        transfer = GDLClustering(10, n_neighbors=20).fit_predict(feats)
        raw = GDLClustering(10, n_neighbors=20).fit_predict(Xt)
        direct = JULEClustering(n_clusters=10, **paper).fit_predict(Xt)
        dt = time.perf_counter() - t
        print(
            f"{source + ' -> ' + target:<22} {nmi(yt, raw):10.3f} "
            f"{nmi(yt, transfer):9.3f} {nmi(yt, direct):15.3f} {dt:8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
