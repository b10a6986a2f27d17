"""Degenerate data and bad input: each case has a defined, documented outcome
(the table in docs/reliability.rst)."""

import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import make_blobs

from skjule import (
    AutoencoderTransformer,
    DeepGMMClustering,
    GDLClustering,
    JULEClustering,
    JULETransformer,
)

FAST = dict(epochs_per_period=1, embedding_dim=8, n_neighbors=5, random_state=0)
MAKERS = {
    "gdl": lambda k, **kw: GDLClustering(k, n_neighbors=5, **kw),
    "jule": lambda k, **kw: JULEClustering(k, **FAST, **kw),
    "jule-transformer": lambda k, **kw: JULETransformer(k, **FAST, **kw),
}
SMALL_AE = dict(hidden_dims=(8,), epochs=1, random_state=0)
ALL = dict(
    MAKERS,
    **{
        "deepgmm": lambda k, **kw: DeepGMMClustering(
            k,
            epochs=1,
            pseudo_label_epochs=1,
            random_state=0,
            autoencoder=AutoencoderTransformer(2, **SMALL_AE),
            **kw,
        ),
        "autoencoder": lambda k, **kw: AutoencoderTransformer(2, **SMALL_AE, **kw),
    },
)


@pytest.fixture(params=sorted(MAKERS))
def make(request):
    return MAKERS[request.param]


def _blobs(n=60, k=3):
    X, y = make_blobs(n, n_features=6, centers=k, cluster_std=0.3, random_state=0)
    return X, y


# ----------------------------------------------------------------- degenerate data
def test_all_samples_identical(make):
    X = np.ones((40, 6))
    est = make(1).fit(X)
    np.testing.assert_array_equal(est.labels_, 0)
    # More clusters than distinct samples: a warning, and still K labels.
    with pytest.warns(UserWarning, match="only 1 distinct samples"):
        est = make(3).fit(X)
    assert len(np.unique(est.labels_)) == 3


def test_many_duplicates_keep_copies_together(make):
    X, y = _blobs(30)
    rep = np.repeat(np.arange(30), 4)  # every sample four times
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 30 distinct samples >= 3 clusters: no warning
        est = make(3).fit(X[rep])
    labels = est.labels_.reshape(30, 4)
    assert (labels == labels[:, :1]).all()  # the copies of a sample share a cluster


def test_single_class(make):
    X, _ = make_blobs(50, n_features=5, centers=1, random_state=1)
    assert np.all(make(1).fit(X).labels_ == 0)
    est = make(2).fit(X)  # K=2 on one blob: defined, two non-empty clusters
    assert sorted(np.bincount(est.labels_).nonzero()[0]) == [0, 1]


def test_n_clusters_one_and_n_samples(make):
    X, _ = _blobs(24)
    assert np.all(make(1).fit(X).labels_ == 0)
    est = make(24).fit(X)
    assert sorted(est.labels_) == list(range(24))


def test_two_samples(make):
    X = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert sorted(make(2).fit(X).labels_) == [0, 1]
    assert list(make(1).fit(X).labels_) == [0, 0]


def test_zero_rows_and_tiny_values(make):
    X, _ = _blobs(30)
    X[:5] = 0.0  # all-zero rows cannot be L2-normalised: they stay zero
    assert make(3).fit(X).labels_.shape == (30,)
    assert make(3).fit(X * 1e-300).labels_.shape == (30,)


def test_huge_values_are_scaled_not_overflowed():
    X, y = _blobs(60)
    a = JULEClustering(3, **FAST).fit(X)
    b = JULEClustering(3, **FAST).fit(X * 1e300)
    assert np.isfinite(b.embedding_).all()
    np.testing.assert_array_equal(a.labels_, b.labels_)  # scaling is invariant
    with pytest.raises(ValueError, match="too large"):
        a.predict(X[:3] * 1e300)


def test_tiny_images_get_a_padded_network():
    rng = np.random.RandomState(0)
    for shape in [(1, 1), (2, 3), (4, 4, 3)]:
        X = rng.rand(20, *shape)
        est = JULEClustering(2, **FAST).fit(X)
        assert est.transform(X[:2]).shape == (2, 8)


# ----------------------------------------------------------------- bad input
BAD_INPUT = [
    (np.array([[1.0, np.nan], [2.0, 3.0], [0.0, 1.0]]), ValueError, "NaN"),
    (np.array([[1.0, np.inf], [2.0, 3.0], [0.0, 1.0]]), ValueError, "infinity"),
    (np.zeros((0, 4)), ValueError, "0 sample"),
    (np.zeros((5, 0)), ValueError, "0 feature"),
    (np.arange(6.0), ValueError, "2-D array"),
    (np.float64(3.0), ValueError, "scalar"),
    (np.zeros((3, 2, 2, 2, 2)), ValueError, "5 dimensions"),
    (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), TypeError, "numbers"),
    (np.array([[1 + 1j, 2], [3, 4], [5, 6]]), ValueError, "Complex"),
    (sparse.random(10, 4, density=0.5, format="csr", random_state=0), TypeError, "sparse"),
    ([[1.0, "x"], [2.0, 3.0], [0.0, 1.0]], TypeError, "numbers"),
    (np.zeros((1, 4)), ValueError, "minimum of 2"),
]


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("X, exc, match", BAD_INPUT)
def test_bad_input_is_explained(name, X, exc, match):
    with pytest.raises(exc, match=match):
        ALL[name](1).fit(X)


@pytest.mark.parametrize("name", ["deepgmm", "autoencoder"])
def test_deep_gmm_and_autoencoder_degenerate_data(name):
    X, _ = _blobs(30)
    est = ALL[name](1).fit(np.ones((30, 6)))  # all identical
    out = est.transform(X[:3])
    assert out.shape == (3, 2) and np.isfinite(out).all()
    if name == "deepgmm":
        np.testing.assert_array_equal(est.labels_, 0)
        with pytest.warns(UserWarning, match="distinct"):
            ALL[name](3).fit(np.ones((30, 6)))
        labels = ALL[name](30).fit(X).labels_  # n_clusters = n_samples: defined
        assert labels.shape == (30,)


@pytest.mark.parametrize(
    "k, match",
    [
        (0, "n_clusters"),
        (-2, "n_clusters"),
        (61, "larger than the number of samples"),
        (2.5, "n_clusters"),
    ],
)
def test_bad_n_clusters(make, k, match):
    X, _ = _blobs(60)
    with pytest.raises((ValueError, TypeError), match=match):
        make(k).fit(X)


def test_predict_with_other_sizes_or_shapes():
    X, _ = _blobs(60)
    rng = np.random.RandomState(0)
    for est in (MAKERS["gdl"](3).fit(X), MAKERS["jule"](3).fit(X)):
        with pytest.raises(ValueError, match="features"):
            est.predict(X[:, :4])
    images = rng.rand(40, 6, 6)
    jule = JULEClustering(2, **FAST).fit(images)
    with pytest.raises(ValueError, match="shape"):
        jule.predict(rng.rand(3, 4, 9))  # 36 values, but not 6x6 images
    assert jule.predict(images[:3].reshape(3, 36)).shape == (3,)  # flat rows are fine
    with pytest.raises(ValueError, match="does not match"):
        JULEClustering(2, image_shape=(4, 9), **FAST).fit(images)
    with pytest.raises(ValueError, match="holds 30 values"):
        JULEClustering(2, image_shape=(5, 6), **FAST).fit(images.reshape(40, 36))


def test_unfitted_estimators_say_so(make):
    from sklearn.exceptions import NotFittedError

    est = make(2)
    for method in ("predict", "transform"):
        if hasattr(est, method):
            with pytest.raises(NotFittedError):
                getattr(est, method)(np.zeros((2, 3)))


def test_seeded_gdl_repeats_and_inputs_untouched():
    X, _ = _blobs(200, 4)
    X32 = X.astype(np.float32)
    for data in (X, X32):
        before = data.copy()
        a = GDLClustering(4, random_state=0).fit(data).labels_
        b = GDLClustering(4, random_state=0).fit(data).labels_
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(data, before)


def test_gdl_is_scale_invariant_near_float_limits():
    X, _ = _blobs(90)
    ref = GDLClustering(3).fit(X).labels_
    for scale in (1e300, 1e-300):
        np.testing.assert_array_equal(GDLClustering(3).fit(X * scale).labels_, ref)
