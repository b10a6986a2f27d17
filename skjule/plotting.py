"""Pictures of a clustering: montages, embeddings, training history, merges.

Needs matplotlib (``pip install skjule[plot]``). Every function draws on the
``ax`` it is given (or on a new figure) and returns that Axes, as
scikit-learn's display helpers do.
"""

import numpy as np

from ._montage import cluster_samples, make_montage, to_uint8

__all__ = [
    "plot_cluster_montage",
    "plot_embedding",
    "plot_history",
    "plot_dendrogram",
    "dendrogram_linkage",
]


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("skjule.plotting needs matplotlib: pip install 'skjule[plot]'") from exc
    return plt


def _axes(ax, projection=None, figsize=None):
    if ax is not None:
        return ax
    fig = _plt().figure(figsize=figsize)
    return fig.add_subplot(projection=projection)


def plot_cluster_montage(
    images, labels, *, n_per_cluster=12, max_clusters=None, random_state=0, ax=None
):
    """One row of sample images per cluster.

    Parameters
    ----------
    images : array-like of shape (n, H, W) or (n, H, W, C)
        The clustered images (any dtype; non-uint8 are min-max scaled).
    labels : array-like of shape (n,)
        Cluster of each image.
    n_per_cluster : int, default=12
        Images drawn at random from each cluster.
    max_clusters : int, default=None
        Show only the largest clusters.
    random_state : int, default=0
        Seed of the draw.
    ax : matplotlib Axes, default=None
        Axes to draw in; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes holding the montage.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim not in (3, 4) or len(images) != len(labels):
        raise ValueError(
            f"images must be (n, H, W) or (n, H, W, C) with one label "
            f"each; got {images.shape} and {labels.shape}."
        )
    images = to_uint8(images)
    picks = cluster_samples(labels, n_per_cluster, random_state)
    sizes = dict(zip(*np.unique(labels, return_counts=True)))
    ks = sorted(picks, key=lambda k: -sizes[k])
    ks = sorted(ks[:max_clusters]) if max_clusters else sorted(ks)
    blank = np.full_like(images[:1], 255)
    rows = []
    for k in ks:
        idx = picks[k]
        row = np.concatenate([images[idx]] + [blank] * (n_per_cluster - len(idx)))
        rows.append(make_montage(row, n_cols=n_per_cluster))
    sheet = np.concatenate(rows, axis=0)
    ax = _axes(ax, figsize=(n_per_cluster * 0.6, len(ks) * 0.6 + 0.5))
    ax.imshow(sheet, cmap="gray" if sheet.ndim == 2 else None, interpolation="nearest")
    h = sheet.shape[0] / len(ks)
    ax.set_yticks((np.arange(len(ks)) + 0.5) * h)
    ax.set_yticklabels([f"{k} ({int(sizes[k])})" for k in ks])
    ax.set_xticks([])
    ax.set_ylabel("cluster (size)")
    return ax


def plot_embedding(
    X,
    labels,
    *,
    method="pca",
    n_components=2,
    random_state=0,
    max_points=20000,
    ax=None,
    **scatter_kw,
):
    """Scatter plot of a representation coloured by cluster (JULE's Fig. 1).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Features, e.g. ``JULETransformer().fit_transform(images)`` or a fitted
        ``JULEClustering``'s ``embedding_``.
    labels : array-like of shape (n,)
        Colours: clusters or true classes.
    method : {'pca', 'tsne', 'none'}, default='pca'
        Projection to ``n_components`` dimensions; 'none' uses the first
        ``n_components`` columns as they are.
    n_components : {2, 3}, default=2
        Dimensions of the plot.
    random_state : int, default=0
        Seed of t-SNE and of the subsample.
    max_points : int, default=20000
        Plot a random subsample of at most this many points.
    ax : matplotlib Axes, default=None
        Axes to draw in; a new figure when None. For ``n_components=3`` it
        must be a 3-D Axes.
    **scatter_kw
        Passed on to ``ax.scatter`` (e.g. ``s`` or ``alpha``).

    Returns
    -------
    ax : matplotlib Axes
        The Axes holding the scatter plot.
    """
    X, labels = np.asarray(X, dtype=np.float64), np.asarray(labels)
    if X.ndim != 2 or len(X) != len(labels):
        raise ValueError(
            f"X must be (n, d) with one label per row; got {X.shape} and {labels.shape}."
        )
    if n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3; got {n_components}.")
    if X.shape[1] < n_components:
        raise ValueError(f"X has {X.shape[1]} columns, fewer than n_components={n_components}.")
    rng = np.random.default_rng(random_state)
    if len(X) > max_points:
        keep = np.sort(rng.choice(len(X), max_points, replace=False))
        X, labels = X[keep], labels[keep]
    if method == "pca":
        from sklearn.decomposition import PCA

        Y = PCA(n_components, random_state=random_state).fit_transform(X)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        Y = TSNE(n_components, random_state=random_state, init="pca").fit_transform(X)
    elif method == "none":
        Y = X[:, :n_components]
    else:
        raise ValueError(f"method must be 'pca', 'tsne' or 'none'; got {method!r}.")
    ax = _axes(ax, projection="3d" if n_components == 3 else None, figsize=(6, 5))
    _, codes = np.unique(labels, return_inverse=True)
    kw = dict(s=4, cmap="tab20" if codes.max() < 20 else "nipy_spectral", alpha=0.8, linewidths=0)
    kw.update(scatter_kw)
    ax.scatter(*Y.T, c=codes, **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if n_components == 3:
        ax.set_zticks([])
    ax.set_title(
        f"{method.upper() if method != 'none' else 'first'} "
        f"{n_components}-D view, {len(np.unique(labels))} colours"
    )
    return ax


def plot_history(estimator, ax=None):
    """Clusters left and mean training loss per period of a fitted JULE model.

    Parameters
    ----------
    estimator : fitted JULEClustering or JULETransformer
        Anything with a ``history_`` list of per-period dicts.
    ax : matplotlib Axes, default=None
        Axes to draw in; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The clusters axis; the loss is on ``ax.right_ax``.
    """
    history = getattr(estimator, "history_", None)
    if history is None:
        raise ValueError(
            "plot_history needs a fitted JULE estimator (history_ is missing); call fit first."
        )
    periods = [h for h in history if h["period"] != "RC"]
    if not periods:
        raise ValueError("history_ holds no training period.")
    x = np.arange(len(periods) + 1)
    clusters = [periods[0]["n_clusters_start"]] + [h["n_clusters_end"] for h in periods]
    ax = _axes(ax, figsize=(6, 4))
    ax.plot(x, clusters, "o-", color="C0")
    ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("period (the loss is that of the training before each merge)")
    ax.set_ylabel("clusters", color="C0")
    right = ax.twinx()
    right.plot(x[1:], [h.get("mean_loss", np.nan) for h in periods], "s--", color="C1")
    right.set_ylabel("mean training loss", color="C1")
    ax.right_ax = right
    ax.set_title("JULE: clusters merged and loss per period")
    return ax


def dendrogram_linkage(children, labels, n_leaves=30):
    """A scipy linkage matrix of the last merges of a hierarchy.

    The leaves are the ``n_leaves`` clusters alive ``n_leaves - K`` merges
    before the end (``K`` final clusters); the height of a merge is its step
    (merges are ordered, their losses are not monotone). The ``K - 1`` links
    joining the final clusters are added above the last merge so scipy can
    draw a single tree; :func:`plot_dendrogram` hides them.

    Parameters
    ----------
    children : array-like of shape (n_merges, 2)
        Merges in order, as in ``GDLClustering.children_``.
    labels : array-like of shape (n_samples,)
        Final cluster of each sample (``labels_``).
    n_leaves : int, default=30
        Clusters kept as leaves; more than the number of final clusters.

    Returns
    -------
    Z : ndarray of shape (n_leaves - 1, 4)
        The linkage matrix, for :func:`scipy.cluster.hierarchy.dendrogram`.
    leaf_size : ndarray of shape (n_leaves,)
        Samples in each leaf.
    leaf_label : ndarray of shape (n_leaves,)
        Final cluster (``labels``) of each leaf.
    top : float
        Height of the last real merge.
    """
    children = np.asarray(children, dtype=np.int64)
    labels = np.asarray(labels)
    n = len(labels)
    n_final = n - len(children)
    if n_leaves <= n_final:
        raise ValueError(f"n_leaves must exceed the {n_final} final clusters; got {n_leaves}.")
    n_leaves = min(n_leaves, n)
    m0 = n - n_leaves
    size = np.ones(n + len(children), dtype=np.int64)
    rep = np.arange(n + len(children))
    for r, (a, b) in enumerate(children):
        size[n + r] = size[a] + size[b]
        rep[n + r] = rep[a]
    used = np.zeros(n + m0, dtype=bool)
    used[children[:m0].ravel()] = True
    alive = np.flatnonzero(~used)
    index = {int(node): i for i, node in enumerate(alive)}
    # scipy's 4th column counts linkage leaves below a link, not samples
    count = [1] * n_leaves
    Z = []
    for r in range(m0, len(children)):
        a, b = (index.pop(int(c)) for c in children[r])
        Z.append([a, b, r - m0 + 1, count[a] + count[b]])
        index[n + r] = len(count)
        count.append(count[a] + count[b])
    top = float(len(children) - m0)
    roots = list(index.values())
    while len(roots) > 1:  # invisible links joining the final clusters
        a, b = roots.pop(0), roots.pop(0)
        Z.append([a, b, top + 1, count[a] + count[b]])
        roots.append(len(count))
        count.append(count[a] + count[b])
    return (np.asarray(Z, dtype=np.float64), size[alive], labels[rep[alive]], top)


def plot_dendrogram(estimator, n_leaves=30, ax=None):
    """Dendrogram of the last merges of a fitted GDL or JULE model.

    Parameters
    ----------
    estimator : fitted GDLClustering or JULEClustering
        Uses ``children_`` and ``labels_``.
    n_leaves : int, default=30
        Clusters shown as leaves (the state ``n_leaves - n_clusters_`` merges
        before the end); each leaf is labelled "final cluster: size".
    ax : matplotlib Axes, default=None
        Axes to draw in; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes holding the dendrogram.
    """
    from scipy.cluster.hierarchy import dendrogram

    if not hasattr(estimator, "children_") or not hasattr(estimator, "labels_"):
        raise ValueError(
            "plot_dendrogram needs a fitted estimator with children_ and "
            "labels_ (GDLClustering, JULEClustering); call fit first."
        )
    Z, sizes, final, top = dendrogram_linkage(estimator.children_, estimator.labels_, n_leaves)
    ax = _axes(ax, figsize=(max(6, 0.25 * len(sizes)), 4))
    dendrogram(
        Z,
        ax=ax,
        color_threshold=top + 0.5,
        above_threshold_color="none",
        labels=[f"{k}: {s}" for k, s in zip(final, sizes)],
        leaf_rotation=90,
    )
    ax.set_ylim(0, top + 0.5)
    ax.set_ylabel("merge step")
    ax.set_title(f"last {int(top)} merges, down to {len(np.unique(final))} clusters")
    return ax
