"""A sample order that keeps near samples at near positions in memory.

The kNN search and the merge engine read the data, the graph and the
per-sample labels at the positions of each sample's neighbours. In the order
a user gives (often random with respect to the geometry) those reads miss the
CPU caches once the arrays outgrow them, and the time per unit of work rises
with ``n``. Fitting on the samples in the leaf order of a random-projection
tree puts the neighbours of most samples a few rows away.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["locality_order"]


def locality_order(X, random_state=None, leaf_size=256):
    """Leaf order of one random-projection tree on ``X``.

    Each node splits its samples at the median of their projection on the
    difference of two of them chosen at random (as in pynndescent's and
    Annoy's trees), until at most ``leaf_size`` remain. The work is
    ``O(n d log(n / leaf_size))`` and the extra memory one copy of the rows
    of the largest node (at most ``X`` itself).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    random_state : int, RandomState instance or None, default=None
    leaf_size : int, default=256

    Returns
    -------
    order : ndarray of shape (n_samples,), int64
        A permutation: ``X[order]`` is ``X`` in tree order.
    """
    rng = check_random_state(random_state)
    n = X.shape[0]
    order = np.arange(n, dtype=np.int64)
    stack = [(0, n)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo <= leaf_size:
            continue
        seg = order[lo:hi]
        rows = X[seg]
        i, j = rng.randint(hi - lo, size=2)
        direction = rows[i] - rows[j]
        if not np.any(direction):
            direction = rng.standard_normal(X.shape[1]).astype(rows.dtype)
        mid = (hi - lo) // 2
        order[lo:hi] = seg[np.argpartition(rows @ direction, mid)]
        stack.append((lo, lo + mid))
        stack.append((lo + mid, hi))
    return order


def inverse_permutation(order):
    """``inv`` with ``inv[order[i]] = i``."""
    inv = np.empty_like(order)
    inv[order] = np.arange(order.shape[0], dtype=order.dtype)
    return inv
