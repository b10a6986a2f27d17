"""Choosing the number of clusters from the merge history.

``n_clusters=None`` in :class:`~skjule.GDLClustering` and
:class:`~skjule.JULEClustering` runs the agglomerative engine to a single
cluster and then picks a cut of that hierarchy:

* with ``distance_threshold``: the merges stop at the first one whose eq. 7
  loss is at or above the threshold (greedy merging takes the smallest loss
  first, so from there on no pair of clusters merges more strongly);
* otherwise, automatically: the cut whose partition has the highest
  modularity (Newman & Girvan 2004) on the symmetrised kNN graph,
  ``Q = sum_c [W_cc / W - (d_c / W)^2]``, then clusters smaller than a
  quarter of the mean size at that cut are counted as fragments, not
  clusters. Before trusting that, the share of graph weight the cut severs
  is compared with the share the same cut severs in a Gaussian with the
  data's mean and covariance (same number of samples, at most 2,000): a
  single blob severs about as much as its Gaussian and gives one cluster,
  with a warning.

The documentation page "Unknown number of clusters" says when the rule is
reliable and lists its failure modes.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from numba import njit

from .._validation import l2_normalize, resolve_n_neighbors
from ._merge import cut_hierarchy
from ._merge_kernels import join_members

__all__ = ["modularity_curve", "choose_n_clusters", "threshold_cut"]

# Clusters smaller than this fraction of the mean cluster size at the
# modularity cut are fragments (outliers and pieces), not clusters.
FRAGMENT_FRACTION = 0.25
# The structure check compares the data with a Gaussian on this many samples,
# NULL_SUBSETS times (the median ratio decides): a single unlucky subset can
# make clustered data look like one blob.
NULL_SAMPLES = 2000
NULL_SUBSETS = 3
# The data have clusters when their best cut severs less than this share of
# the graph weight that the same cut of a Gaussian severs.
CUT_RATIO = 0.6
# n_neighbors="auto" needs K: the first pass uses the paper's Ks.
_FIRST_PASS_NEIGHBORS = 20


@njit(cache=True)
def _modularity_after_merges(indptr, indices, data, children, n):
    """Modularity of the partition after each merge of ``children``.

    Starts from singletons; returns ``q`` of length ``n_merges + 1`` where
    ``q[r]`` is the modularity after the first ``r`` merges. Between-cluster
    edge weight is found by scanning the smaller cluster's edges (small into
    large), so the whole curve costs ``O(nnz * log n)``.
    """
    total = 0.0
    deg = np.zeros(n)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            deg[i] += data[p]
        total += deg[i]
    m = children.shape[0]
    q = np.empty(m + 1)
    if total <= 0.0:
        q[:] = 0.0
        return q
    slot = np.empty(n + m, dtype=np.int64)
    lab = np.arange(n)
    head = np.arange(n)
    tail = np.arange(n)
    nxt = np.full(n, -1, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    d = deg.copy()
    cur = 0.0
    for i in range(n):
        slot[i] = i
        for p in range(indptr[i], indptr[i + 1]):
            if indices[p] == i:
                cur += data[p] / total
        cur -= (deg[i] / total) ** 2
    q[0] = cur
    for r in range(m):
        a = slot[children[r, 0]]
        b = slot[children[r, 1]]
        if size[a] > size[b]:
            a, b = b, a
        w = 0.0
        x = head[a]
        while x >= 0:
            for p in range(indptr[x], indptr[x + 1]):
                if lab[indices[p]] == b:
                    w += data[p]
            x = nxt[x]
        cur += 2.0 * w / total - 2.0 * d[a] * d[b] / (total * total)
        join_members(a, b, lab, head, tail, nxt)
        size[b] += size[a]
        d[b] += d[a]
        slot[n + r] = b
        q[r + 1] = cur
    return q


def modularity_curve(graph, children, n_samples):
    """Modularity of every cut of a hierarchy on a kNN graph.

    Parameters
    ----------
    graph : KNNGraph
        The graph the hierarchy was built on; its eq. 4 weights are
        symmetrised (``W + W.T``).
    children : ndarray of shape (n_merges, 2)
        Merges in order, as :attr:`GDLClustering.children_`.
    n_samples : int

    Returns
    -------
    q : ndarray of shape (n_merges + 1,)
        ``q[r]`` is the modularity after ``r`` merges, i.e. of the cut at
        ``n_samples - r`` clusters.
    """
    A = graph.to_csr()
    S = (A + A.T).tocsr()
    S.sort_indices()
    return _modularity_after_merges(
        S.indptr.astype(np.int64),
        S.indices.astype(np.int64),
        S.data.astype(np.float64),
        np.asarray(children, dtype=np.int64),
        int(n_samples),
    )


def full_hierarchy(engine, X, graph=None):
    """Run ``engine`` on ``X`` down to one cluster, without the K-dependent
    steps (attaching isolated clusters early, the small-cluster cut)."""
    n = X.shape[0]
    engine.start(X, graph=graph)
    engine.merge_until(1, n_final=n)
    return engine


def _modularity_by_k(engine):
    """``q_by_k[k - 1]``: modularity of the cut at ``k`` clusters, for ``k`` up
    to the initial over-clustering (finer cuts split 1-NN chains arbitrarily)."""
    n = engine.n_samples_
    r = engine.n_merged_
    q = modularity_curve(engine.graph_, engine.children_, n)
    k_max = engine.n_initial_clusters_
    k_min = n - r
    out = np.full(k_max, np.nan)
    ks = np.arange(k_min, k_max + 1)
    out[ks - 1] = q[n - ks]
    return out


def _best_modularity(make_engine, X, n_neighbors):
    engine = full_hierarchy(make_engine(min(n_neighbors, X.shape[0] - 1)), X)
    q_by_k = _modularity_by_k(engine)
    return engine, q_by_k, int(np.nanargmax(q_by_k)) + 1


def gaussian_reference(X, rng):
    """Samples of a Gaussian with the mean and covariance of ``X`` (same shape).

    ``mu + G @ (X - mu) / sqrt(n - 1)`` with ``G`` standard normal ``(n, n)``
    has exactly the sample covariance of ``X``, without a decomposition
    (``n <= 2000`` here, so ``G`` is small).
    """
    n = X.shape[0]
    mu = X.mean(axis=0)
    g = rng.standard_normal((n, n)).astype(X.dtype)
    return (g @ (X - mu) / np.sqrt(max(n - 1, 1)) + mu).astype(X.dtype)


def cut_fraction(engine, n_clusters):
    """Share of the kNN graph's edge weight between clusters of the cut of
    ``engine``'s hierarchy at ``n_clusters``."""
    labels = cut_hierarchy(engine.children_, engine.n_samples_, n_clusters)
    g = engine.graph_
    total = g.weights.sum()
    if total <= 0:
        return 0.0
    return float(g.weights[labels[:, None] != labels[g.indices]].sum() / total)


def structure_check(
    make_engine,
    X,
    n_neighbors,
    rng,
    n_samples=NULL_SAMPLES,
    on_sphere=False,
    n_subsets=NULL_SUBSETS,
):
    """How much less graph weight the data's best cut severs than a Gaussian's.

    The median of :func:`_structure_ratio` over ``n_subsets`` random subsets
    (one when ``X`` has at most ``n_samples`` samples).
    """
    if X.shape[0] <= n_samples:
        n_subsets = 1
    ratios = [
        _structure_ratio(make_engine, X, n_neighbors, rng, n_samples, on_sphere)
        for _ in range(n_subsets)
    ]
    return float(np.median(ratios))


def _structure_ratio(make_engine, X, n_neighbors, rng, n_samples, on_sphere):
    """On a random subset of at most ``n_samples`` samples: the share of kNN
    edge weight between the clusters of the most modular cut of the data's
    hierarchy (at ``k`` clusters), divided by the same share for the cut at
    ``k`` clusters of the hierarchy of a Gaussian with the data's mean and
    covariance (same engine settings), projected onto the unit sphere when
    the data were (``on_sphere``: the estimators' ``normalize=True``).
    Well separated clusters give about 0; a single blob about 1.
    """
    if X.shape[0] > n_samples:
        X = X[np.sort(rng.choice(X.shape[0], n_samples, replace=False))]
    data, _, k = _best_modularity(make_engine, X, n_neighbors)
    reference = gaussian_reference(X, rng)
    if on_sphere:
        reference = l2_normalize(reference)
    ref, q_ref, _ = _best_modularity(make_engine, reference, n_neighbors)
    k_ref = min(k, ref.n_samples_)
    cut_ref = cut_fraction(ref, max(k_ref, ref.n_samples_ - ref.n_merged_))
    cut_data = cut_fraction(data, k)
    return cut_data / cut_ref if cut_ref > 0 else (0.0 if cut_data == 0 else np.inf)


@dataclass
class Choice:
    """What :func:`choose_n_clusters` decided, and the evidence."""

    n_clusters: int
    engine: object
    n_neighbors: int
    modularity: np.ndarray
    k_modularity: int
    cut_ratio: float
    cut: int = None


def threshold_cut(engine, distance_threshold):
    """Number of merges made before the first whose loss is >= the threshold.

    Only merges after the initial 1-NN links count; merges by centroid
    distance (loss 0, clusters without any affinity) and the end of the
    hierarchy stop the cut too when the threshold is <= 0.
    """
    n = engine.n_samples_
    r = engine.n_merged_
    first = n - engine.n_initial_clusters_
    losses = engine.merge_losses_[first:r]
    stop = np.flatnonzero(~(losses < distance_threshold))
    return first + (int(stop[0]) if stop.size else losses.size)


def choose_n_clusters(
    make_engine, X, n_neighbors, *, distance_threshold=None, rng, on_sphere=False
):
    """Pick the number of clusters of ``X`` from the engine's merge history.

    Parameters
    ----------
    make_engine : callable
        ``make_engine(n_neighbors)`` returns a fresh :class:`MergeEngine`.
    X : ndarray of shape (n_samples, n_features)
        The features the engine clusters (already normalised if it should be).
    n_neighbors : int or "auto"
        ``"auto"``: a first pass with 20 neighbours picks ``K0``, the second
        uses ``resolve_n_neighbors("auto", n, K0)``.
    distance_threshold : float or None
        Cut at the first merge whose loss is at or above it (no modularity).
    rng : RandomState
    on_sphere : bool
        ``X`` was L2-normalised: the single-blob check's Gaussian reference
        is projected onto the unit sphere too (2-D data, for one, become a
        circle, whose kNN graph a filled Gaussian does not resemble).

    Returns
    -------
    Choice
        ``engine`` holds the full hierarchy the choice was made on.
    """
    n = X.shape[0]
    first = _FIRST_PASS_NEIGHBORS if n_neighbors == "auto" else int(n_neighbors)
    engine, q_by_k, k_mod = _best_modularity(make_engine, X, first)
    if n_neighbors == "auto":
        ks = min(resolve_n_neighbors("auto", n, k_mod), n - 1)
        if ks != engine.graph_.n_neighbors:
            engine, q_by_k, k_mod = _best_modularity(make_engine, X, ks)
    ks = engine.graph_.n_neighbors
    if distance_threshold is not None:
        cut = threshold_cut(engine, distance_threshold)
        return Choice(n - cut, engine, ks, q_by_k, k_mod, np.nan, cut)

    labels = cut_hierarchy(engine.children_, n, k_mod)
    sizes = np.bincount(labels)
    k = max(1, int(np.count_nonzero(sizes >= FRAGMENT_FRACTION * n / k_mod)))
    ratio = structure_check(make_engine, X, ks, rng, on_sphere=on_sphere)
    if not ratio < CUT_RATIO:
        warnings.warn(
            f"No cluster structure found: the best cut of the merge hierarchy "
            f"({k_mod} clusters) severs {ratio:.2f} times the kNN-graph weight that "
            "the same cut of a single Gaussian with the data's mean and covariance "
            f"severs (clusters need < {CUT_RATIO}). Returning one cluster; pass "
            "n_clusters (or distance_threshold) to split the data anyway.",
            UserWarning,
            stacklevel=4,
        )
        k = 1
    return Choice(k, engine, ks, q_by_k, k_mod, ratio)
