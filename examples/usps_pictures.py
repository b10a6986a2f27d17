"""
Pictures of JULE on USPS (downloads the data)
=============================================

Clusters the 9,298 USPS digits with JULE and saves the four plots of
:mod:`skjule.plotting`: a montage of every cluster, the learned embedding in
2-D (t-SNE) and 3-D (PCA) coloured by cluster, the clusters and loss per
period, and the dendrogram of the last merges. Run::

    python examples/usps_pictures.py --data-home DIR --out-dir usps_pictures

Without ``--data-home`` USPS is fetched with :func:`skjule.datasets.fetch_usps`.
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import normalized_mutual_info_score  # noqa: E402

from skjule import JULEClustering  # noqa: E402
from skjule.metrics import clustering_accuracy  # noqa: E402
from skjule.plotting import (  # noqa: E402
    plot_cluster_montage,
    plot_dendrogram,
    plot_embedding,
    plot_history,
)


def main():
    p = argparse.ArgumentParser(description="JULE on USPS: montage and embedding plots")
    p.add_argument("--data-home", default=None)
    p.add_argument("--out-dir", default="usps_pictures")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.data_home:
        with np.load(os.path.join(args.data_home, "usps.npz")) as d:
            X, y = d["X"], d["y"]
    else:
        from skjule.datasets import fetch_usps

        X, y = fetch_usps(return_X_y=True)
    os.makedirs(args.out_dir, exist_ok=True)

    # The paper's eta and Ks, with which the pictures in docs/images were made.
    est = JULEClustering(
        n_clusters=10, eta=0.9, n_neighbors=20, random_state=args.seed, verbose=1
    ).fit(X)
    print(
        f"USPS: NMI {normalized_mutual_info_score(y, est.labels_):.3f}, "
        f"ACC {clustering_accuracy(y, est.labels_):.3f}"
    )

    def save(ax, name):
        path = os.path.join(args.out_dir, name)
        ax.figure.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(ax.figure)
        print("wrote", path)

    save(plot_cluster_montage(X, est.labels_, n_per_cluster=16), "usps_montage.png")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    plot_embedding(X.reshape(len(X), -1), y, method="tsne", max_points=3000, ax=axes[0])
    axes[0].set_title("pixels, t-SNE, coloured by true digit")
    plot_embedding(est.embedding_, y, method="tsne", max_points=3000, ax=axes[1])
    axes[1].set_title("JULE embedding, t-SNE, coloured by true digit")
    save(axes[0], "usps_embedding_tsne.png")
    fig = plt.figure(figsize=(6, 5))
    save(
        plot_embedding(
            est.embedding_, est.labels_, n_components=3, ax=fig.add_subplot(projection="3d")
        ),
        "usps_embedding_3d.png",
    )
    save(plot_history(est), "usps_history.png")
    save(plot_dendrogram(est, n_leaves=40), "usps_dendrogram.png")


if __name__ == "__main__":
    main()
