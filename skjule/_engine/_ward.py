"""Size-weighted Ward merges of cluster centroids (the engine's collapse guard).

Graph-degree linkage has no size penalty: on data whose classes overlap, one
cluster's boundary ends up touching every other cluster, it becomes everyone's
nearest neighbour and absorbs the rest (chaining). Ward's criterion,

    cost(a, b) = |a| |b| / (|a| + |b|) * ||c_a - c_b||^2,

grows with both sizes, so two large clusters merge only when nothing cheaper
is left. :func:`ward_merges` applies it to the clusters of an over-clustering
(their centroids and sizes) with the nearest-neighbour chain algorithm: Ward
is reducible, so the chain finds exactly the merges of the greedy Ward
hierarchy (in another order: they are sorted by cost afterwards, as scipy
does), in ``O(m^2 d)`` time and ``O(m d)`` memory for ``m`` clusters of ``d``
features.
"""

import numpy as np

__all__ = ["ward_merges"]


def ward_merges(centroids, sizes, n_stop):
    """Greedy Ward merges of clusters until ``n_stop`` remain.

    Parameters
    ----------
    centroids : ndarray of shape (m, d)
    sizes : ndarray of shape (m,)
        Positive cluster sizes (weights).
    n_stop : int

    Returns
    -------
    merges : list of (int, int, float)
        ``(a, b, cost)`` in merge order: cluster ``b`` joins cluster ``a``
        (indices into the input; the merged cluster keeps index ``a``).
    """
    c = np.array(centroids, dtype=np.float64)
    s = np.array(sizes, dtype=np.float64)
    m = c.shape[0]
    active = np.ones(m, dtype=bool)
    sq = np.einsum("ij,ij->i", c, c)
    merges, chain, n_active = [], [], m
    while n_active > 1:
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        a = chain[-1]
        d2 = np.maximum(sq + sq[a] - 2.0 * (c @ c[a]), 0.0)
        cost = s * s[a] / (s + s[a]) * d2
        cost[~active] = np.inf
        cost[a] = np.inf
        b = int(np.argmin(cost))
        if len(chain) > 1 and cost[chain[-2]] <= cost[b]:
            b = chain[-2]  # reciprocal nearest neighbours: merge them
            chain.pop()
            chain.pop()
            keep, gone = (a, b) if a < b else (b, a)
            merges.append((keep, gone, float(cost[b])))
            total = s[a] + s[b]
            c[keep] = (s[a] * c[a] + s[b] * c[b]) / total
            s[keep] = total
            sq[keep] = c[keep] @ c[keep]
            active[gone] = False
            n_active -= 1
        else:
            chain.append(b)
    # Costs never decrease from a merge to the merge that uses its result, so
    # a stable sort by cost is the greedy order with children before parents.
    merges.sort(key=lambda merge: merge[2])
    return merges[: max(m - int(n_stop), 0)]
