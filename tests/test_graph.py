import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from skjule._engine._graph import initial_clusters, knn_graph, knn_search

from _reference import dense_weights


@settings(deadline=None, max_examples=60)
@given(
    X=st.integers(3, 40).flatmap(
        lambda n: arrays(np.float64, (n, 3), elements=st.floats(-5, 5, width=16))
    ),
    k=st.integers(1, 8),
    a=st.sampled_from([0.5, 1.0, 3.0]),
)
def test_weights_equal_dense_formula(X, k, a):
    """W of eq. 4 equals the brute-force reference; ties are broken by index."""
    k = min(k, X.shape[0] - 1)
    g = knn_graph(X, k, a=a, method="exact")
    W_ref, nbrs, sigma2 = dense_weights(X, k, a=a)
    assert g.sigma2 == pytest.approx(sigma2 if sigma2 > 0 else 0.0, rel=1e-9, abs=1e-12)
    W = g.to_csr().toarray()
    # Neighbour sets can differ only among exactly tied distances; the
    # weights of tied candidates are equal, so compare the sorted rows.
    np.testing.assert_allclose(np.sort(W, axis=1), np.sort(W_ref, axis=1), rtol=1e-9, atol=1e-12)
    assert not np.any(g.indices == np.arange(X.shape[0])[:, None])
    for i in range(X.shape[0]):
        assert len(set(g.indices[i])) == k


def test_exact_matches_sklearn():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.RandomState(0)
    X = rng.rand(500, 10)
    idx, d2 = knn_search(X, 7, method="exact")
    dist, ref = NearestNeighbors(n_neighbors=8).fit(X).kneighbors(X)
    np.testing.assert_array_equal(idx, ref[:, 1:])
    np.testing.assert_allclose(d2, dist[:, 1:] ** 2, rtol=1e-10, atol=1e-12)


def test_duplicates_and_zero_distances():
    rng = np.random.RandomState(0)
    base = rng.rand(10, 3)
    X = np.repeat(base, 30, axis=0)  # each point 30 times: more copies than k + 1
    g = knn_graph(X, 5, method="exact")
    assert not np.any(g.indices == np.arange(X.shape[0])[:, None])
    # every neighbour is an exact copy at distance 0 ...
    assert np.all(g.sqdist == 0.0)
    # ... sigma2 = 0 there, and the limit of eq. 4 gives weight 1
    assert g.sigma2 == 0.0
    assert np.all(g.weights == 1.0)


def test_all_identical_points_have_defined_weights():
    X = np.full((15, 4), 3.0)
    g = knn_graph(X, 20)
    assert g.indices.shape == (15, 14)
    assert g.sigma2 == 0.0 and np.all(g.weights == 1.0)


def test_two_samples_and_errors():
    g = knn_graph(np.array([[0.0], [1.0]]), 20)
    assert g.indices.tolist() == [[1], [0]]
    with pytest.raises(ValueError, match="at least 2 samples"):
        knn_graph(np.array([[0.0]]), 3)
    with pytest.raises(ValueError, match="Unknown knn method"):
        knn_search(np.random.rand(10, 2), 3, method="annoy")


def test_reverse_adjacency_is_the_transpose():
    rng = np.random.RandomState(1)
    X = rng.rand(200, 4)
    g = knn_graph(X, 6)
    W = g.to_csr()
    WT = sparse.csc_array((g.in_weights, g.in_indices, g.in_indptr), shape=W.shape)
    # column i of W (edges j -> i) in CSC equals the stored reverse lists
    assert abs(W.tocsc() - WT).sum() == 0


@settings(deadline=None, max_examples=50)
@given(
    X=st.integers(2, 60).flatmap(
        lambda n: arrays(np.float64, (n, 2), elements=st.floats(-3, 3, width=16))
    )
)
def test_initial_clusters_are_1nn_components(X):
    g = knn_graph(X, 1, method="exact")
    labels = initial_clusters(g.indices)
    n = X.shape[0]
    adj = sparse.csr_array((np.ones(n), (np.arange(n), g.indices[:, 0])), shape=(n, n))
    n_comp, ref = connected_components(adj, directed=True, connection="weak")
    assert labels.max() + 1 == n_comp
    # same partition
    pairs = {(a, b) for a, b in zip(labels, ref)}
    assert len(pairs) == n_comp
    # every sample links to another, so no component is a singleton
    assert np.bincount(labels).min() >= 2
    # labels numbered by first appearance
    _, first = np.unique(labels, return_index=True)
    assert np.all(np.diff(first) > 0)


@pytest.mark.slow
def test_nndescent_recall():
    """pynndescent path (slow: ~35 s of numba compilation on first use)."""
    rng = np.random.RandomState(0)
    centers = rng.randn(20, 30) * 3
    X = (centers[rng.randint(20, size=5000)] + rng.randn(5000, 30)).astype(np.float32)
    exact, _ = knn_search(X, 10, method="exact")
    approx, d2 = knn_search(X, 10, method="nndescent", random_state=np.random.RandomState(0))
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
    assert recall > 0.95
    assert not np.any(approx == np.arange(5000)[:, None])
    assert np.all(np.diff(d2, axis=1) >= 0)


def test_knn_graph_rejects_non_finite_features():
    X = np.random.RandomState(0).rand(30, 4)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="finite features"):
        knn_graph(X, 5)
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match="finite features"):
        knn_graph(X, 5)
