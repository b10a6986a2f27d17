"""Plain dense reference implementations, written from the formulas.

Slow (n x n), for small test data only.
"""

import numpy as np


def dense_weights(X, n_neighbors, a=1.0):
    """W of eq. 4 by brute force: neighbours by (distance, index), self excluded."""
    n = X.shape[0]
    D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    W = np.zeros((n, n))
    dists = []
    nbrs = []
    for i in range(n):
        order = sorted((D[i, j], j) for j in range(n) if j != i)[:n_neighbors]
        nbrs.append([j for _, j in order])
        dists.extend(d for d, _ in order)
    sigma2 = a * np.mean(dists)
    for i in range(n):
        for j in nbrs[i]:
            W[i, j] = np.exp(-D[i, j] / sigma2) if sigma2 > 0 else 1.0
    return W, np.array(nbrs), sigma2


def dense_from_graph(graph):
    n, k = graph.indices.shape
    W = np.zeros((n, n))
    W[np.repeat(np.arange(n), k), graph.indices.ravel()] = graph.weights.ravel()
    return W


def gdl_affinity(W, members_a, members_b):
    """A(Ca, Cb) = 1'W[a,b]W[b,a]1/|a|^2 + 1'W[b,a]W[a,b]1/|b|^2 (Zhang et al. 2012)."""
    Wab = W[np.ix_(members_a, members_b)]
    Wba = W[np.ix_(members_b, members_a)]
    ones_a = np.ones(len(members_a))
    ones_b = np.ones(len(members_b))
    return (ones_a @ Wab @ Wba @ ones_a) / len(members_a) ** 2 + (
        ones_b @ Wba @ Wab @ ones_b
    ) / len(members_b) ** 2


def dense_cluster_affinities(W, labels):
    """Dict slot -> members, and the dense matrix of A over those slots."""
    slots = np.unique(labels)
    members = {s: np.flatnonzero(labels == s) for s in slots}
    A = np.zeros((len(slots), len(slots)))
    for p, s in enumerate(slots):
        for q, t in enumerate(slots):
            if p != q:
                A[p, q] = gdl_affinity(W, members[s], members[t])
    return slots, A


def eq7_losses(A, kc, lam):
    """Eq. 7 for every cluster: its Kc largest affinities (missing ones are 0)."""
    m = A.shape[0]
    losses = np.zeros(m)
    for i in range(m):
        row = np.sort(np.delete(A[i], i))[::-1]
        top = np.zeros(kc)
        top[: min(kc, row.size)] = row[:kc]
        second = lam / (kc - 1) * np.sum(top[0] - top[1:]) if kc > 1 else 0.0
        losses[i] = -top[0] - second
    return losses
