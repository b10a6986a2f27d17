"""The locality order: a permutation, near samples near, and GDLClustering
fitted in that order gives the same clustering, reported in the given order."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_blobs

import skjule._engine._gdl as gdl_module
from skjule import GDLClustering, cut_hierarchy
from skjule._engine._locality import inverse_permutation, locality_order


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 700),
    d=st.integers(1, 5),
    leaf=st.integers(1, 64),
    seed=st.integers(0, 2**31 - 1),
    duplicates=st.booleans(),
)
def test_locality_order_is_a_permutation(n, d, leaf, seed, duplicates):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, d)
    if duplicates:  # identical rows give a zero split direction
        X[:] = X[0]
    order = locality_order(X, seed, leaf_size=leaf)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    np.testing.assert_array_equal(order[inverse_permutation(order)], np.arange(n))


def test_locality_order_puts_blobs_together():
    X, y = make_blobs(20_000, centers=50, n_features=10, random_state=0)
    order = locality_order(X, 0)
    # In the given order a blob changes at almost every step; in tree order
    # the runs of one blob are long.
    changes = np.count_nonzero(np.diff(y[order]))
    assert changes < 0.2 * np.count_nonzero(np.diff(y))


@pytest.mark.parametrize("n_clusters", [8, None])
def test_gdl_in_locality_order_matches_given_order(n_clusters):
    X, _ = make_blobs(3000, centers=8, n_features=5, cluster_std=1.5, random_state=1)
    params = dict(n_clusters=n_clusters, knn_method="exact", random_state=0)
    given_order = GDLClustering(sample_order="given", **params).fit(X)
    tree = GDLClustering(sample_order="locality", **params).fit(X)
    assert tree.n_clusters_ == given_order.n_clusters_
    np.testing.assert_array_equal(tree.labels_, given_order.labels_)
    # The same hierarchy: every cut gives the same partition, and the merge
    # losses are the same multiset.
    n = X.shape[0]
    for k in [k for k in [8, 20, 100, tree.n_initial_clusters_] if k >= tree.n_clusters_]:
        np.testing.assert_array_equal(
            cut_hierarchy(tree.children_, n, k), cut_hierarchy(given_order.children_, n, k)
        )
    np.testing.assert_allclose(
        np.sort(tree.merge_losses_), np.sort(given_order.merge_losses_), rtol=1e-9
    )
    # predict uses the training samples in the given order
    np.testing.assert_array_equal(tree.predict(X[:50]), given_order.predict(X[:50]))


def test_sample_order_auto_switches_at_the_threshold(monkeypatch):
    """``"auto"`` reorders from ``_LOCALITY_MIN_SAMPLES`` on, not below."""
    X, _ = make_blobs(600, centers=4, n_features=3, random_state=0)
    calls = []

    def spy(X, random_state=None):
        calls.append(X.shape[0])
        return locality_order(X, random_state)

    monkeypatch.setattr(gdl_module, "locality_order", spy)
    monkeypatch.setattr(gdl_module, "_LOCALITY_MIN_SAMPLES", 601)
    GDLClustering(4, knn_method="exact").fit(X)
    assert calls == []
    monkeypatch.setattr(gdl_module, "_LOCALITY_MIN_SAMPLES", 600)
    GDLClustering(4, knn_method="exact").fit(X)
    assert calls == [600]
    GDLClustering(4, knn_method="exact", sample_order="given").fit(X)
    assert calls == [600]


def test_sample_order_rejects_unknown_value():
    X, _ = make_blobs(100, centers=2, random_state=0)
    with pytest.raises(ValueError, match="sample_order"):
        GDLClustering(2, sample_order="tree").fit(X)
