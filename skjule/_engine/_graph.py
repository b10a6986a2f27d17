"""Directed k-nearest-neighbour graph and its edge weights (JULE eq. 4).

The graph is stored sparse: ``n_neighbors`` out-edges per sample (a dense
``(n, k)`` block, i.e. CSR with a constant row length) and the reverse
adjacency in CSC form, so memory is ``O(n * k)``. Nothing here is ``n x n``.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

__all__ = ["KNNGraph", "knn_search", "knn_graph", "knn_query", "knn_vote", "initial_clusters"]

# Exact search costs about 2 * n^2 * d flops; below this budget a blocked
# matrix product beats NN-descent (whose first call in a process also spends
# ~35 s compiling numba code). 4e11 flops is ~10 s on 2 cores.
_EXACT_FLOP_BUDGET = 4e11
_BLOCK_BYTES = 128 * 2**20


@dataclass
class KNNGraph:
    """A directed kNN graph with the weights of JULE eq. 4.

    Attributes
    ----------
    indices : ndarray of shape (n_samples, n_neighbors), int64
        ``indices[i]`` are the neighbours of sample ``i`` (self excluded),
        nearest first.
    sqdist : ndarray of shape (n_samples, n_neighbors), float64
        Squared Euclidean distances to those neighbours.
    weights : ndarray of shape (n_samples, n_neighbors), float64
        ``W(i, indices[i, j]) = exp(-sqdist[i, j] / sigma2)``.
    sigma2 : float
        ``a / (n * k) * sum(sqdist)``; see :func:`knn_graph` for the case 0.
    in_indptr, in_indices, in_weights : ndarray
        The reverse adjacency (CSC of W): the samples ``j`` with an edge
        ``j -> i`` are ``in_indices[in_indptr[i]:in_indptr[i + 1]]``.
    """

    indices: np.ndarray
    sqdist: np.ndarray
    weights: np.ndarray
    sigma2: float
    in_indptr: np.ndarray
    in_indices: np.ndarray
    in_weights: np.ndarray

    @property
    def n_samples(self):
        return self.indices.shape[0]

    @property
    def n_neighbors(self):
        return self.indices.shape[1]

    def to_csr(self):
        """W as a ``scipy.sparse.csr_array`` of shape (n_samples, n_samples)."""
        n, k = self.indices.shape
        indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
        return sparse.csr_array((self.weights.ravel(), self.indices.ravel(), indptr), shape=(n, n))


def _drop_self(cand, cand_d, k):
    """From ``k + 1`` candidates per row, drop the row's own index.

    If a row's own index is not among its candidates (more than ``k`` exact
    duplicates of the point), the farthest candidate is dropped instead.
    """
    n = cand.shape[0]
    is_self = cand == np.arange(n)[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    keep = ~is_self
    return cand[keep].reshape(n, k), cand_d[keep].reshape(n, k)


def _sort_rows(idx, dist):
    """Sort each row by (distance, index), so ties are broken the same way always."""
    order = np.lexsort((idx, dist), axis=-1)
    return (
        np.take_along_axis(idx, order, axis=1),
        np.take_along_axis(dist, order, axis=1),
    )


def _exact_sqdist_pairs(X, idx, R=None):
    """Squared distances ``||X[i] - R[idx[i, j]]||^2`` in float64, in blocks (R defaults to X)."""
    R = X if R is None else R
    n, k = idx.shape
    d = X.shape[1]
    out = np.empty((n, k), dtype=np.float64)
    step = max(1, _BLOCK_BYTES // (8 * k * max(d, 1)))
    for start in range(0, n, step):
        stop = min(n, start + step)
        diff = X[start:stop, None, :].astype(np.float64) - R[idx[start:stop]]
        out[start:stop] = np.einsum("ijk,ijk->ij", diff, diff)
    return out


def _exact_knn(X, k):
    """Exact k+1 nearest candidates by a blocked matrix product."""
    n = X.shape[0]
    sq = np.einsum("ij,ij->i", X, X)
    step = max(1, _BLOCK_BYTES // (8 * n))
    kk = min(k + 1, n)
    cand = np.empty((n, kk), dtype=np.int64)
    for start in range(0, n, step):
        stop = min(n, start + step)
        d = sq[start:stop, None] + sq[None, :] - 2.0 * (X[start:stop] @ X.T)
        np.maximum(d, 0.0, out=d)
        if kk < n:
            part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        else:
            part = np.broadcast_to(np.arange(n), (stop - start, n)).copy()
        cand[start:stop] = part
    return cand


def _nndescent_knn(X, k, random_state, n_jobs, verbose):
    """Approximate k+1 nearest candidates with pynndescent (imported lazily)."""
    from pynndescent import NNDescent

    seed = None if random_state is None else int(random_state.randint(2**31 - 1))
    index = NNDescent(
        X,
        metric="euclidean",
        n_neighbors=k + 1,
        random_state=seed,
        n_jobs=n_jobs,
        low_memory=True,
        verbose=bool(verbose),
        compressed=True,
    )
    cand, _ = index.neighbor_graph
    cand = np.asarray(cand, dtype=np.int64)
    # NN-descent can leave a slot empty (-1) on heavily duplicated data; fill
    # it with the row's first neighbour so every row keeps k + 1 candidates.
    bad = cand < 0
    if bad.any():
        rows = np.nonzero(bad)[0]
        cand[bad] = cand[rows, 0]
    return cand


def _resolve_method(method, n, d):
    if method == "auto":
        return "exact" if 2.0 * n * n * d <= _EXACT_FLOP_BUDGET else "nndescent"
    return method


def knn_search(X, n_neighbors, *, method="auto", random_state=None, n_jobs=None, verbose=False):
    """Nearest neighbours of every row of ``X`` among the other rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Float data (float32 or float64).
    n_neighbors : int
        Neighbours per sample, self excluded. Must be < n_samples.
    method : {"auto", "exact", "nndescent"}, default="auto"
        ``"exact"`` is a blocked matrix product (memory ``O(block * n)``),
        ``"nndescent"`` uses pynndescent; ``"auto"`` takes exact search when
        ``2 n^2 d`` is at most 4e11 flops.
    random_state : RandomState instance or None
        Seeds NN-descent.
    n_jobs : int or None
        Threads for NN-descent.
    verbose : bool
        Passed to NN-descent.

    Returns
    -------
    indices : ndarray of shape (n_samples, n_neighbors), int64
    sqdist : ndarray of shape (n_samples, n_neighbors), float64
        Squared Euclidean distances, computed in float64 for the chosen pairs.
        Rows are sorted by (distance, index).
    """
    X = np.ascontiguousarray(X)
    n, d = X.shape
    if not 1 <= n_neighbors < n:
        raise ValueError(f"n_neighbors={n_neighbors} must be in [1, n_samples - 1] = [1, {n - 1}].")
    method = _resolve_method(method, n, d)
    if method == "exact" or n_neighbors + 1 >= n:
        cand = _exact_knn(X, n_neighbors)
    elif method == "nndescent":
        cand = _nndescent_knn(X, n_neighbors, random_state, n_jobs, verbose)
    else:
        raise ValueError(f"Unknown knn method {method!r}; use 'auto', 'exact' or 'nndescent'.")
    cand_d = _exact_sqdist_pairs(X, cand)
    cand, cand_d = _sort_rows(cand, cand_d)
    idx, dist = _drop_self(cand, cand_d, n_neighbors)
    return _sort_rows(idx, dist)


def knn_graph(
    X, n_neighbors=20, *, a=1.0, method="auto", random_state=None, n_jobs=None, verbose=False
):
    """Directed kNN graph of ``X`` with the weights of JULE eq. 4.

    ``W(i, j) = exp(-||x_i - x_j||^2 / sigma2)`` for the ``n_neighbors``
    nearest ``x_j`` of ``x_i`` and 0 otherwise, with
    ``sigma2 = a / (n * n_neighbors) * sum of those squared distances``.

    When every neighbour distance is 0 (all samples identical, or only exact
    duplicates in each neighbourhood), ``sigma2`` is 0 and the limit of the
    formula is used: every edge gets weight 1. Exact duplicates elsewhere get
    weight ``exp(0) = 1``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_neighbors : int, default=20
        ``Ks``; clipped to ``n_samples - 1``.
    a : float, default=1.0
        Scale of ``sigma2``.
    method, random_state, n_jobs, verbose
        See :func:`knn_search`.

    Returns
    -------
    graph : KNNGraph
    """
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"A kNN graph needs at least 2 samples; got {n}.")
    if not np.isfinite(X).all():
        # NaN distances would make the merge loop spin: refuse them here,
        # whoever the caller is.
        raise ValueError("A kNN graph needs finite features; X holds NaN or infinite values.")
    k = min(int(n_neighbors), n - 1)
    indices, sqdist = knn_search(
        X, k, method=method, random_state=random_state, n_jobs=n_jobs, verbose=verbose
    )
    return graph_from_neighbors(indices, sqdist, a=a)


def graph_from_neighbors(indices, sqdist, *, a=1.0):
    """Build a :class:`KNNGraph` from neighbour indices and squared distances."""
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    sqdist = np.ascontiguousarray(sqdist, dtype=np.float64)
    n, k = indices.shape
    sigma2 = float(a) * float(sqdist.mean()) if sqdist.size else 0.0
    if sigma2 > 0 and np.isfinite(sigma2):
        weights = np.exp(-sqdist / sigma2)
    else:
        sigma2 = 0.0
        weights = np.ones_like(sqdist)
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    csc = sparse.csc_array((weights.ravel(), (rows, indices.ravel())), shape=(n, n))
    csc.sort_indices()
    return KNNGraph(
        indices=indices,
        sqdist=sqdist,
        weights=weights,
        sigma2=sigma2,
        in_indptr=csc.indptr.astype(np.int64),
        in_indices=csc.indices.astype(np.int64),
        in_weights=csc.data.astype(np.float64),
    )


def initial_clusters(indices):
    """Weakly connected components of the 1-NN graph (AC-PIC initialisation).

    Parameters
    ----------
    indices : ndarray of shape (n_samples, k)
        Neighbour lists, nearest first; only the first column is used.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
        Component labels ``0 .. n_components - 1``, numbered in order of
        their smallest sample index.
    """
    n = indices.shape[0]
    first = indices[:, 0]
    adj = sparse.csr_array((np.ones(n, dtype=np.int8), (np.arange(n), first)), shape=(n, n))
    _, labels = connected_components(adj, directed=True, connection="weak")
    return relabel_first_appearance(labels)


def relabel_first_appearance(labels):
    """Labels renumbered ``0, 1, ...`` in order of first appearance (canonical form)."""
    _, first_pos, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty_like(first_pos)
    rank[np.argsort(first_pos, kind="stable")] = np.arange(first_pos.size)
    return rank[inverse].astype(np.int64)


def knn_query(Q, R, n_neighbors):
    """Exact nearest rows of ``R`` for every row of ``Q`` (blocked; memory O(block * n_R)).

    Returns
    -------
    indices : ndarray of shape (n_Q, k), int64
    sqdist : ndarray of shape (n_Q, k), float64
        Sorted by (distance, index). ``k = min(n_neighbors, n_R)``.
    """
    Q = np.ascontiguousarray(Q)
    R = np.ascontiguousarray(R, dtype=Q.dtype)
    nq, nr = Q.shape[0], R.shape[0]
    k = min(int(n_neighbors), nr)
    sq_r = np.einsum("ij,ij->i", R, R)
    step = max(1, _BLOCK_BYTES // (8 * max(nr, 1)))
    idx = np.empty((nq, k), dtype=np.int64)
    for start in range(0, nq, step):
        stop = min(nq, start + step)
        d = sq_r[None, :] - 2.0 * (Q[start:stop] @ R.T)
        if k < nr:
            idx[start:stop] = np.argpartition(d, k - 1, axis=1)[:, :k]
        else:
            idx[start:stop] = np.arange(nr)
    return _sort_rows(idx, _exact_sqdist_pairs(Q, idx, R))


def knn_vote(Z, ref, ref_labels, n_labels, n_neighbors, sigma2):
    """Label of each row of ``Z``: the largest sum of eq. 4 weights
    ``exp(-d^2 / sigma2)`` over its ``n_neighbors`` nearest rows of ``ref``."""
    idx, d2 = knn_query(Z, ref, n_neighbors)
    w = np.exp(-d2 / sigma2) if sigma2 > 0 else np.ones_like(d2)
    # Guard against all-zero weights (far outliers): fall back to the nearest.
    w[:, 0] = np.maximum(w[:, 0], 1e-300)
    votes = np.zeros((Z.shape[0], n_labels))
    np.add.at(
        votes, (np.repeat(np.arange(Z.shape[0]), idx.shape[1]), ref_labels[idx].ravel()), w.ravel()
    )
    return votes.argmax(axis=1).astype(np.int64)
