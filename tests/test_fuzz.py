"""Property-based fuzzing: random shapes, dtypes and values thrown at fit / predict.

Every call either succeeds with a well-formed result or raises ValueError /
TypeError with a message - never an IndexError, a numba or torch error, a hang
or a silent wrong shape.
"""

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from skjule import (
    AutoencoderTransformer,
    DeepGMMClustering,
    GDLClustering,
    JULEClustering,
    JULEMixture,
    JULETransformer,
)

FAST = dict(epochs_per_period=1, embedding_dim=4, n_neighbors=3, random_state=0)
ESTIMATORS = {
    "gdl": lambda k: GDLClustering(k, n_neighbors=3),
    "jule": lambda k: JULEClustering(k, **FAST),
    "jule-transformer": lambda k: JULETransformer(k, **FAST),
    "jule-mixture": lambda k: JULEMixture(k, **FAST),
    "deepgmm": lambda k: DeepGMMClustering(
        k,
        epochs=1,
        pseudo_label_epochs=1,
        random_state=0,
        autoencoder=AutoencoderTransformer(2, hidden_dims=(8,), epochs=1, random_state=0),
    ),
}

VALUES = st.sampled_from(
    [
        "uniform",
        "zeros",
        "ones",
        "huge",
        "tiny",
        "negative",
        "nan",
        "inf",
        "duplicates",
    ]
)
DTYPES = st.sampled_from(
    [
        np.float64,
        np.float64,
        np.float32,
        np.float32,
        np.float16,
        np.int64,
        np.uint8,
        np.bool_,
        np.complex128,
        object,
        "U3",
    ]
)


@st.composite
def arrays(draw, max_side=6):
    ndim = draw(st.sampled_from([0, 1, 2, 2, 2, 3, 3, 4, 5]))
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=ndim, max_size=ndim)))
    if ndim >= 1 and draw(st.integers(0, 3)):  # mostly enough samples to cluster
        shape = (draw(st.integers(2, 24)),) + shape[1:]
    kind = draw(VALUES)
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    X = rng.rand(*shape) if shape else np.float64(rng.rand())
    X = np.asarray(X)
    if kind == "zeros":
        X = np.zeros_like(X)
    elif kind == "ones":
        X = np.ones_like(X)
    elif kind == "huge":
        X = X * 1e300
    elif kind == "tiny":
        X = X * 1e-300
    elif kind == "negative":
        X = -X * 1e3
    elif kind in ("nan", "inf") and X.size:
        X.flat[draw(st.integers(0, X.size - 1))] = np.nan if kind == "nan" else np.inf
    elif kind == "duplicates" and X.ndim >= 1 and X.shape[0]:
        X = X[np.zeros(X.shape[0], dtype=int)]
    X = np.asarray(X)
    dtype = draw(DTYPES)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if dtype == "U3":
            X = X.astype(str).astype("U3")
        else:
            X = X.astype(dtype)
    return X


def _call(fn):
    """Run ``fn``; return its result, or None after an acceptable, explained error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except (ValueError, TypeError) as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@settings(
    max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(X=arrays(), X_new=arrays(), k=st.one_of(st.integers(1, 4), st.integers(-1, 26)))
def test_fit_predict_never_crash(name, X, X_new, k):
    est = ESTIMATORS[name](k)
    X_copy = X.copy()
    fitted = _call(lambda: est.fit(X))
    assert pickle.dumps(X) == pickle.dumps(X_copy)  # input never modified
    event("fit succeeded" if fitted is not None else "fit refused")
    if fitted is None:
        return
    n = X.shape[0]
    assert est.labels_.shape == (n,)
    if name in ("deepgmm", "jule-mixture"):  # a mixture may leave components empty
        assert 1 <= len(np.unique(est.labels_)) <= k
        proba = est.predict_proba(X[:3])
        assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(1), 1)
    else:
        assert est.n_clusters_ == k and len(np.unique(est.labels_)) == k
    for method in ("predict", "transform"):
        if not hasattr(est, method):
            continue
        # Samples like the training ones (also a single one), then arbitrary input.
        for Xp in (X[:1], X[: max(1, n // 2)], X_new):
            out = _call(lambda: getattr(est, method)(Xp))
            if Xp is not X_new:
                assert out is not None, f"{method} refused samples shaped like X"
            if out is None:
                continue
            assert out.shape[0] == Xp.shape[0]
            if method == "transform":
                assert np.isfinite(out).all()
            else:
                assert out.min() >= 0 and out.max() < k


@settings(
    max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(X=arrays(), X_new=arrays(), variational=st.booleans())
def test_autoencoder_never_crashes(X, X_new, variational):
    ae = AutoencoderTransformer(
        2, hidden_dims=(8,), epochs=1, variational=variational, random_state=0
    )
    X_copy = X.copy()
    fitted = _call(lambda: ae.fit(X))
    assert pickle.dumps(X) == pickle.dumps(X_copy)
    event("fit succeeded" if fitted is not None else "fit refused")
    if fitted is None:
        return
    for Xp in (X[:1], X_new):
        out = _call(lambda: ae.transform(Xp))
        if Xp is not X_new:
            assert out is not None
        if out is not None:
            assert out.shape == (Xp.shape[0], 2) and np.isfinite(out).all()
