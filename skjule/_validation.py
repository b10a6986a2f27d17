"""Input checks shared by every estimator.

Every failure is a ``ValueError`` or ``TypeError`` that says what is wrong and
what to do; nothing reaches torch or numba unchecked.
"""

import numbers
import warnings
from contextlib import contextmanager

import numpy as np
from scipy import sparse
from sklearn.utils import check_array
from sklearn.utils.validation import _check_feature_names, _check_n_features

__all__ = [
    "check_features",
    "check_finite_training",
    "check_n_clusters",
    "check_threshold_params",
    "fit_guard",
    "count_distinct_rows",
    "diverged_error",
    "l2_normalize",
    "resolve_n_neighbors",
    "warn_if_few_distinct",
]


def _check_raw(X, name):
    if sparse.issparse(X):
        raise TypeError(
            f"{name} is a sparse matrix; skjule needs dense data. Convert it with "
            f"{name}.toarray() (or reduce it first, e.g. with TruncatedSVD)."
        )
    arr = np.asarray(X) if not hasattr(X, "dtype") else X
    ndim = getattr(arr, "ndim", None)
    if ndim is not None and ndim > 4:
        raise ValueError(
            f"{name} has {ndim} dimensions; expected (n_samples, n_features), "
            "(n_samples, height, width) or (n_samples, height, width, channels)."
        )
    if ndim == 1:
        raise ValueError(
            f"Expected a 2-D array for {name}, got a 1-D array of shape {arr.shape}. "
            "Reshape your data with X.reshape(-1, 1) if it has a single feature or "
            "X.reshape(1, -1) if it contains a single sample."
        )
    if ndim == 0:
        raise ValueError(f"Expected a 2-D array for {name}, got a scalar.")
    dtype = getattr(arr, "dtype", None)
    if dtype is not None and dtype.kind in "USV":
        raise TypeError(
            f"{name} has dtype {dtype}; skjule needs numbers. Encode strings or "
            "bytes as numbers first."
        )
    if dtype is not None and dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {dtype}; pass real numbers "
            f"(for example {name}.real or np.abs({name}))."
        )


def check_features(estimator, X, *, reset, min_samples=1, name="X"):
    """Validate ``X`` and flatten images: returns ``(X2d, sample_shape)``.

    ``X`` may be ``(n, d)``, ``(n, H, W)`` or ``(n, H, W, C)``; the result is a
    C-contiguous float32/float64 ``(n, prod(sample_shape))`` array (a copy
    whenever a conversion was needed; never the caller's buffer modified).

    When ``reset``, sets ``n_features_in_`` (flattened size) and, as
    scikit-learn's ``validate_data`` does, ``feature_names_in_`` when ``X``
    has string column names (a pandas DataFrame, for example); otherwise
    removes a stale ``feature_names_in_``. When not ``reset``, checks both:
    column names that differ from the fitted ones (missing, unseen or
    reordered) raise ``ValueError``, and names on only one side warn. The
    names are read from ``X`` as given, before it is converted and flattened
    (a flattened array has no names, which is why this cannot simply be
    ``validate_data`` on the flat array).
    """
    _check_raw(X, name)
    _check_feature_names(estimator, X, reset=reset)
    try:
        arr = check_array(
            X,
            allow_nd=True,
            dtype=[np.float64, np.float32],
            ensure_min_samples=min_samples,
            ensure_all_finite=True,
            input_name=name,
            estimator=estimator,
        )
    except ValueError as exc:
        msg = str(exc)
        if "could not convert" in msg or "Unable to convert" in msg:
            raise TypeError(
                f"{name} must contain numbers only; could not convert it to float: {msg}"
            ) from exc
        raise
    sample_shape = arr.shape[1:]
    flat = arr.reshape(arr.shape[0], -1)
    if flat.shape[1] == 0:
        raise ValueError(
            f"{name} has 0 features per sample (shape {arr.shape}); at least one is required."
        )
    _check_n_features(estimator, flat, reset=reset)
    return np.ascontiguousarray(flat), sample_shape


def diverged_error(learning_rate, *, what="The network's embeddings", where=""):
    """The one divergence error of the network estimators, as a ``ValueError``.

    NaN or infinite embeddings, losses or weights mean training diverged; the
    remedy is a smaller ``learning_rate``.
    """
    return ValueError(
        f"{what} became NaN or infinite{where}: training diverged. "
        f"Use a smaller learning_rate (now {learning_rate})."
    )


def check_finite_training(values, learning_rate, *, what="The network's embeddings", where=""):
    """``values`` unchanged, or :func:`diverged_error` when any is NaN or infinite."""
    if not np.isfinite(values).all():
        raise diverged_error(learning_rate, what=what, where=where)
    return values


def check_n_clusters(n_clusters, n_samples, name="n_clusters"):
    if n_clusters is None:
        return None
    if not isinstance(n_clusters, numbers.Integral) or isinstance(n_clusters, bool):
        raise TypeError(f"{name} must be an int; got {n_clusters!r}.")
    if n_clusters < 1:
        raise ValueError(f"{name} must be at least 1; got {n_clusters}.")
    if n_clusters > n_samples:
        raise ValueError(
            f"{name}={n_clusters} is larger than the number of samples ({n_samples}); "
            f"use n_clusters <= {n_samples}."
        )
    return int(n_clusters)


def count_distinct_rows(X):
    """Number of distinct rows of ``X``, in O(n d) without copying ``X``.

    Rows are compared through two random projections, so exact duplicates
    always coincide and distinct rows coincide with probability zero. The
    projection vectors are divided by the largest magnitude of ``X`` (not
    ``X`` itself), so data near the float limits neither overflows nor needs
    a scaled copy.
    """
    R = np.random.RandomState(12345).standard_normal((X.shape[1], 2))
    scale = float(np.max(np.abs(X))) if X.size else 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        keys = X @ (R / (scale if scale > 0 else 1.0)).astype(X.dtype)
    return np.unique(keys, axis=0).shape[0]


def check_threshold_params(n_clusters, distance_threshold):
    """``distance_threshold`` only makes sense with ``n_clusters=None``."""
    if distance_threshold is not None and n_clusters is not None:
        raise ValueError(
            f"n_clusters={n_clusters} and distance_threshold={distance_threshold} were "
            "both given: set n_clusters=None to cut the hierarchy at the threshold, or "
            "distance_threshold=None to get n_clusters clusters."
        )
    if distance_threshold is not None and not np.isfinite(distance_threshold):
        raise ValueError(f"distance_threshold must be finite; got {distance_threshold}.")


def warn_if_few_distinct(X, n_clusters):
    """Warn when ``X`` has fewer distinct samples than clusters are asked for."""
    if n_clusters is None or n_clusters <= 1:
        return
    m = count_distinct_rows(X)
    if m < n_clusters:
        warnings.warn(
            f"X holds only {m} distinct samples, fewer than n_clusters={n_clusters}: "
            "some identical samples are split between clusters. Use n_clusters <= "
            f"{m} for a meaningful result.",
            UserWarning,
            stacklevel=3,
        )


def l2_normalize(X):
    """Rows scaled to unit L2 norm in a new array; all-zero rows stay zero.

    Each row is first divided by its largest magnitude, so rows near the
    float limits (1e300 or 1e-300) neither overflow nor underflow.
    """
    peak = np.max(np.abs(X), axis=1) if X.shape[1] else np.zeros(X.shape[0])
    peak[peak == 0] = 1.0
    Xs = X / peak[:, None].astype(X.dtype)
    norms = np.sqrt(np.einsum("ij,ij->i", Xs, Xs, dtype=np.float64))
    norms[norms == 0] = 1.0
    return (Xs / norms[:, None]).astype(X.dtype, copy=False)


def resolve_n_neighbors(n_neighbors, n_samples, n_clusters):
    """``Ks`` for a data set: an int as given, or ``"auto"``.

    ``"auto"`` keeps a sample's neighbourhood well inside its cluster: the
    expected cluster size ``n_samples / n_clusters`` divided by 7, clipped to
    [10, 20] (20 is the paper's value, reached from 140 samples per cluster).
    """
    if n_neighbors == "auto":
        return int(np.clip(round(n_samples / max(n_clusters, 1) / 7), 10, 20))
    return int(n_neighbors)


_INPUT_ATTRS = ("n_features_in_", "feature_names_in_")


@contextmanager
def fit_guard(estimator):
    """Undo the input attributes ``validate_data`` sets if ``fit`` does not finish.

    Estimators assign their fitted attributes only at the end of ``fit``; this
    restores ``n_features_in_`` / ``feature_names_in_`` to what they were
    before (or removes them), so a fit interrupted by an error or Ctrl-C never
    leaves an estimator that looks fitted, nor a refitted one whose input
    attributes disagree with its model.
    """
    saved = {a: getattr(estimator, a) for a in _INPUT_ATTRS if hasattr(estimator, a)}
    try:
        yield
    except BaseException:
        for a in _INPUT_ATTRS:
            if a in saved:
                setattr(estimator, a, saved[a])
            elif hasattr(estimator, a):
                delattr(estimator, a)
        raise
