"""Contact sheets: many small images tiled into one array (numpy only)."""

import math

import numpy as np


def to_uint8(images):
    """Images as uint8 for display: uint8 is kept, anything else is scaled to
    [0, 255] image by image (min-max), so float, standardised or 16-bit
    inputs all show their contrast."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    x = images.astype(np.float64)
    axes = tuple(range(1, x.ndim))
    lo = np.nanmin(x, axis=axes, keepdims=True)
    hi = np.nanmax(x, axis=axes, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.nan_to_num((x - lo) / span * 255.0).round().astype(np.uint8)


def make_montage(images, n_cols=None, min_cell=32, pad=2, background=255):
    """Tile images into one sheet.

    Parameters
    ----------
    images : array-like of shape (n, H, W) or (n, H, W, C) with C in {1, 3, 4}
        The images, any dtype (see :func:`to_uint8`).
    n_cols : int, default=None
        Columns of the grid; ``None`` makes it about square.
    min_cell : int, default=32
        Small images are enlarged (by an integer factor, nearest neighbour) to
        at least this many pixels on their shorter side.
    pad : int, default=2
        Pixels between cells.
    background : int, default=255
        Grey level of the padding.

    Returns
    -------
    sheet : ndarray of uint8, of shape (rows, cols) or (rows, cols, C)
    """
    images = to_uint8(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(
            f"A montage needs images of shape (n, H, W) or (n, H, W, C); "
            f"got an array of shape {images.shape}."
        )
    n, h, w = images.shape[:3]
    factor = max(1, math.ceil(min_cell / min(h, w)))
    if factor > 1:
        images = images.repeat(factor, axis=1).repeat(factor, axis=2)
        h, w = h * factor, w * factor
    n_cols = max(1, int(n_cols) if n_cols else math.ceil(math.sqrt(n)))
    n_rows = math.ceil(n / n_cols)
    shape = (n_rows * (h + pad) + pad, n_cols * (w + pad) + pad) + images.shape[3:]
    sheet = np.full(shape, background, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, n_cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y : y + h, x : x + w] = img
    return sheet


def cluster_samples(labels, per_cluster, random_state=None):
    """Indices of at most ``per_cluster`` samples of each cluster, by cluster
    (sorted labels), drawn at random without replacement."""
    rng = np.random.default_rng(random_state)
    labels = np.asarray(labels)
    out = {}
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        if len(idx) > per_cluster:
            idx = np.sort(rng.choice(idx, per_cluster, replace=False))
        out[k] = idx
    return out
