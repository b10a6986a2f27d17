"""What to look at after a clustering: noise, the least typical members, near-duplicates.

* :func:`small_clusters_as_noise` gives the members of clusters smaller than
  ``min_cluster_size`` the label ``-1`` ("noise", as HDBSCAN does) instead of
  forcing them into a large cluster.
* :func:`least_typical` scores every sample by its distance to the centroid
  of its cluster (in the feature space the clustering used) and marks the
  farthest members of each cluster.
* :func:`find_near_duplicates` groups near-identical images (bursts of the
  same shot, re-encoded or slightly edited copies) by a perceptual difference
  hash, or near-identical feature vectors by cosine distance. Candidate pairs
  come from a k-nearest-neighbour query (exact and blocked for small sets,
  NN-descent beyond: ``O(n * k)`` memory, never an ``n x n`` matrix).
"""

import numpy as np

__all__ = [
    "difference_hash",
    "find_near_duplicates",
    "least_typical",
    "small_clusters_as_noise",
]

#: Levels of the brightness code appended to the difference hash (see
#: :func:`_codes`): two images whose mean grey levels are more than
#: ``_MAX_LEVEL_STEPS`` levels apart are never near-duplicates, so a black and a
#: white picture (both without any gradient: the same hash) are told apart.
_N_LEVELS = 16
_MAX_LEVEL_STEPS = 2
#: ... and their shrunk grey images must correlate at least this much (Pearson).
#: Near-duplicates measured 0.99 or more (bursts, edits, re-encodings, EXIF-turned
#: copies); different pictures whose hashes happen to be close, far less.
_MIN_CORRELATION = 0.9


def small_clusters_as_noise(labels, min_cluster_size):
    """Members of clusters smaller than ``min_cluster_size`` become noise (-1).

    Parameters
    ----------
    labels : array-like of int, shape (n_samples,)
        Cluster labels; ``-1`` (already noise) is kept.
    min_cluster_size : int
        Clusters with fewer members lose them to the noise label. 1 changes
        nothing.

    Returns
    -------
    labels : ndarray of int64, shape (n_samples,)
        The clusters that are kept, renumbered ``0, 1, ...`` in the order of
        their old labels; ``-1`` for noise.
    """
    labels = np.asarray(labels).astype(np.int64, copy=False)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shape {labels.shape}.")
    if int(min_cluster_size) != min_cluster_size or min_cluster_size < 1:
        raise ValueError(f"min_cluster_size must be a positive integer; got {min_cluster_size!r}.")
    out = np.full(labels.shape, -1, dtype=np.int64)
    if labels.size == 0:
        return out
    kept = labels >= 0
    _, inverse, counts = np.unique(labels[kept], return_inverse=True, return_counts=True)
    big = counts >= min_cluster_size
    new_id = np.where(big, np.cumsum(big) - 1, -1)
    out[kept] = new_id[inverse]
    return out


def _as_rows(X):
    """One sample per row, float32 or float64 (a view when it already is one)."""
    X = np.asarray(X)
    if X.ndim < 2:
        raise ValueError(f"X must hold one sample per row; got shape {X.shape}.")
    X = X.reshape(len(X), -1)
    return X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)


def least_typical(X, labels, *, fraction=0.1, return_distances=False):
    """The members of each cluster farthest from its centroid.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        The samples in the feature space the clustering used (e.g.
        ``JULEClustering.embedding_``, or the L2-normalised rows
        :class:`GDLClustering` clusters); images are flattened.
    labels : array-like of int, shape (n_samples,)
        Cluster labels; noise (``-1``) is never marked.
    fraction : float in [0, 1], default=0.1
        In each cluster, the ``ceil(fraction * size)`` members farthest from
        the centroid (the mean of its members) are marked, while at least two
        members stay unmarked: clusters of one or two samples mark none. 0
        marks nothing.
    return_distances : bool, default=False
        Also return each sample's Euclidean distance to its cluster's
        centroid (NaN for noise).

    Returns
    -------
    mask : ndarray of bool, shape (n_samples,)
        True for the marked (least typical) members.
    distances : ndarray of float64, shape (n_samples,)
        Only with ``return_distances=True``.
    """
    from scipy import sparse

    labels = np.asarray(labels).astype(np.int64, copy=False)
    X = _as_rows(X)
    n = len(labels)
    if len(X) != n:
        raise ValueError(f"X has {len(X)} samples but labels has {n}.")
    if not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"fraction must be in [0, 1]; got {fraction!r}.")
    dist = np.full(n, np.nan)
    mask = np.zeros(n, dtype=bool)
    kept = np.flatnonzero(labels >= 0)
    if kept.size:
        ks, inverse = np.unique(labels[kept], return_inverse=True)
        inverse = inverse.ravel()
        counts = np.bincount(inverse, minlength=len(ks))
        member = sparse.csr_matrix((np.ones(kept.size), (inverse, kept)), shape=(len(ks), n))
        centroids = np.asarray(member @ X, dtype=np.float64) / counts[:, None]
        # in blocks of rows: no float64 copy of the whole data
        step = max(1, (32 << 20) // (8 * max(1, X.shape[1])))
        for start in range(0, kept.size, step):
            rows = kept[start : start + step]
            diff = X[rows] - centroids[inverse[start : start + step]]
            dist[rows] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        if fraction > 0:
            order = np.lexsort((-dist[kept], inverse))  # by cluster, farthest first
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            for start, size in zip(starts, counts):
                n_marked = min(int(np.ceil(fraction * size - 1e-9)), size - 2)
                if n_marked > 0:
                    mask[kept[order[start : start + n_marked]]] = True
    return (mask, dist) if return_distances else mask


# ------------------------------------------------------------ near-duplicates


def _grey(images, scale):
    """A chunk of images (m, H, W[, C]) as float32 grey levels 0..255.

    ``scale``: ``"uint8"`` (kept), a number (the pixels times it lie in
    0..255), or ``None`` (stretched to 0..255 image by image).
    """
    a = np.asarray(images)
    if a.ndim == 4:  # colour: luminance (alpha ignored); other channel counts: mean
        a = (
            a[..., :3].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
            if a.shape[-1] in (3, 4)
            else a.astype(np.float32).mean(axis=-1)
        )
    a = np.nan_to_num(a.astype(np.float32, copy=False))
    if scale is None:
        lo = a.min(axis=(1, 2), keepdims=True)
        hi = a.max(axis=(1, 2), keepdims=True)
        span = np.where(hi > lo, hi - lo, 1).astype(np.float32)
        a = (a - lo) * (np.float32(255) / span)
    elif scale != "uint8":
        a = a * np.float32(scale)
    return np.clip(a, 0, 255)


def _shrink(grey, height, width):
    """Images (m, H, W) shrunk to (m, height, width) by averaging boxes of pixels
    (vectorised); images smaller than that are enlarged by PIL instead."""
    _, H, W = grey.shape
    if H >= height and W >= width:
        rows = (np.arange(height) * H) // height
        cols = (np.arange(width) * W) // width
        s = np.add.reduceat(np.add.reduceat(grey, rows, axis=1, dtype=np.float64), cols, axis=2)
        area = np.diff(np.r_[rows, H])[:, None] * np.diff(np.r_[cols, W])[None, :]
        return s / area
    from PIL import Image

    return np.stack(
        [
            np.asarray(
                Image.fromarray(g).resize((width, height), Image.Resampling.BILINEAR),
                dtype=np.float64,
            )
            for g in grey
        ]
    )


def _pixel_scale(images):
    """How :func:`_grey` brings the pixels of ``images`` to 0..255."""
    if images.dtype == np.uint8:
        return "uint8"
    if images.dtype.kind not in "biuf" or images.size == 0:
        return None
    with np.errstate(all="ignore"):
        lo, hi = np.nanmin(images), np.nanmax(images)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0:
        return None
    if hi <= 1.0 and images.dtype.kind == "f":
        return 255.0
    if hi <= 255:
        return 1.0
    if hi <= 65535 and images.dtype.kind in "iu":
        return 255.0 / 65535.0
    return None


def difference_hash(images, hash_size=8):
    """Perceptual difference hashes ("dHash") of images.

    Each image is turned grey and shrunk (by averaging boxes of pixels) to
    ``hash_size`` rows of ``hash_size + 1`` pixels; bit ``(r, c)`` says
    whether pixel ``(r, c)`` is brighter than its right neighbour.
    Re-encoding, resizing, small edits and brightness changes keep most bits;
    different pictures differ in about half of them.

    Parameters
    ----------
    images : array-like of shape (n, H, W) or (n, H, W, C)
        Colour is converted to grey (alpha ignored). uint8 pixels are taken
        as they are, float pixels in [0, 1] as fractions of 255, other
        non-negative pixels up to 255 (or 65535 for integers) as grey levels,
        anything else stretched to 0..255 image by image.
    hash_size : int, default=8
        ``hash_size ** 2`` bits per image.

    Returns
    -------
    bits : ndarray of bool, shape (n, hash_size ** 2)
    means : ndarray of float64, shape (n,)
        The mean grey level (0..255) of each shrunk image.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (n, H, W) or (n, H, W, C); got {images.shape}.")
    hash_size = int(hash_size)
    if hash_size < 2:
        raise ValueError(f"hash_size must be at least 2; got {hash_size}.")
    bits, small = _hash_parts(images, hash_size)
    return bits, small.mean(axis=1)


def _hash_parts(images, hash_size):
    """(bits, shrunk grey images flattened to (n, hash_size * (hash_size + 1)))."""
    n = len(images)
    bits = np.empty((n, hash_size * hash_size), dtype=bool)
    shrunk = np.empty((n, hash_size * (hash_size + 1)))
    scale = _pixel_scale(images)
    per_image = max(1, int(np.prod(images.shape[1:])))
    chunk = max(1, (16 << 20) // (4 * per_image))  # about 16 MB of float32 at a time
    for start in range(0, n, chunk):
        small = _shrink(_grey(images[start : start + chunk], scale), hash_size, hash_size + 1)
        bits[start : start + chunk] = (small[:, :, 1:] < small[:, :, :-1]).reshape(len(small), -1)
        shrunk[start : start + chunk] = small.reshape(len(small), -1)
    return bits, shrunk


def _union_find_groups(n, pairs):
    """Connected components of ``pairs`` (an (m, 2) array) over ``n`` items."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    if len(pairs) == 0:
        return np.arange(n)
    g = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _groups_from_components(comp):
    """-1 for singletons; 0, 1, ... for groups of two or more, by first member."""
    comp = np.asarray(comp)
    _, first, inverse, counts = np.unique(
        comp, return_index=True, return_inverse=True, return_counts=True
    )
    multi = counts > 1
    order = np.argsort(first[multi], kind="stable")
    gid = np.full(len(counts), -1, dtype=np.int64)
    gid[np.flatnonzero(multi)[order]] = np.arange(multi.sum())
    return gid[inverse]


def _close_pairs(codes, n_neighbors, accept, random_state):
    """Pairs (i, j) of rows of ``codes`` among each row's nearest neighbours that
    ``accept(i, j, sqdist)`` keeps (a boolean array over the candidate pairs)."""
    from ._engine._graph import knn_search

    n = len(codes)
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    k = min(int(n_neighbors), n - 1)
    idx, sqd = knn_search(
        np.ascontiguousarray(codes, dtype=np.float32),
        k,
        random_state=np.random.RandomState(random_state),
    )
    rows = np.repeat(np.arange(n), k)
    cols, sqd = idx.ravel(), sqd.ravel()
    keep = accept(rows, cols, sqd)
    return np.stack([rows[keep], cols[keep]], axis=1)


def find_near_duplicates(X, *, max_distance=None, hash_size=8, n_neighbors=10, random_state=0):
    """Groups of near-duplicate samples.

    Parameters
    ----------
    X : array-like of shape (n, H, W[, C]) images, or (n, d) feature vectors
        Images are compared by their difference hash (see
        :func:`difference_hash`): two images are near-duplicates when their
        hashes differ in at most ``max_distance`` bits, the grey images the
        hashes are made from correlate (Pearson r >= 0.9) and their mean
        brightness differs by less than about 1/8 of the grey range (so two
        flat pictures of different brightness, which share the all-zero hash,
        are kept apart). Feature vectors are near-duplicates when their
        cosine distance is at most ``max_distance``.
    max_distance : float, default=None
        Images: bits out of ``hash_size ** 2`` (default 10 of 64, scaled for
        other hash sizes: about 15 %); 0 keeps only identical hashes.
        Feature vectors: cosine distance (default 1e-3).
    hash_size : int, default=8
        Side of the difference hash (images only).
    n_neighbors : int, default=10
        Candidate neighbours per distinct hash (or vector). Groups are the
        connected components of the accepted pairs, so a burst larger than
        this is still found as one group.
    random_state : int, default=0
        Seeds the approximate neighbour search used for large sets.

    Returns
    -------
    groups : ndarray of int64, shape (n,)
        ``-1`` for a sample without a near-duplicate; otherwise the number of
        its group, ``0, 1, ...`` in the order of each group's first member.
    """
    X = np.asarray(X)
    if X.ndim < 2 or X.ndim > 4:
        raise ValueError(
            f"X must be images (n, H, W[, C]) or feature vectors (n, d); got shape {X.shape}."
        )
    n = len(X)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if X.ndim >= 3:
        return _image_duplicates(X, max_distance, hash_size, n_neighbors, random_state)
    limit = 1e-3 if max_distance is None else float(max_distance)
    if not limit >= 0:
        raise ValueError(f"max_distance must be >= 0; got {max_distance!r}.")
    from ._validation import l2_normalize

    F = l2_normalize(_as_rows(X))
    # identical vectors first: one representative each, then neighbours among those
    uniq, inverse = np.unique(F, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    pairs = _close_pairs(
        uniq, n_neighbors, lambda i, j, sqd: sqd / 2.0 <= limit + 1e-12, random_state
    )
    return _groups_from_components(_union_find_groups(len(uniq), pairs)[inverse])


def _image_duplicates(images, max_distance, hash_size, n_neighbors, random_state):
    n_bits = int(hash_size) ** 2
    limit = round(n_bits * 10 / 64) if max_distance is None else max_distance
    if not 0 <= limit:
        raise ValueError(f"max_distance must be >= 0; got {max_distance!r}.")
    bits, small = _hash_parts(images, int(hash_size))
    means = small.mean(axis=1)
    level = np.minimum((means / 256.0 * _N_LEVELS).astype(np.int64), _N_LEVELS - 1)
    # the brightness level as a thermometer code: Hamming distance = level difference
    thermo = np.arange(_N_LEVELS)[None, :] < level[:, None]
    codes = np.concatenate([bits, thermo], axis=1)
    uniq, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    u_bits = uniq[:, :n_bits]
    u_level = uniq[:, n_bits:].sum(axis=1)
    # the shrunk images of the distinct codes, centred and scaled for correlations
    z = small[first] - small[first].mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", z, z))
    flat = norm < 1.0  # (almost) no structure: a flat picture
    z /= np.where(flat, 1.0, norm)[:, None]

    def accept(i, j, sqd):
        hamming = np.count_nonzero(u_bits[i] != u_bits[j], axis=1)
        corr = np.einsum("ij,ij->i", z[i], z[j])
        similar = np.where(flat[i] | flat[j], flat[i] & flat[j], corr >= _MIN_CORRELATION)
        return (hamming <= limit) & similar & (np.abs(u_level[i] - u_level[j]) <= _MAX_LEVEL_STEPS)

    pairs = _close_pairs(uniq, n_neighbors, accept, random_state)
    return _groups_from_components(_union_find_groups(len(uniq), pairs)[inverse])
