"""n_clusters=None: the number of clusters chosen from the merge history."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from skjule import GDLClustering, JULEClustering, cut_hierarchy
from skjule._engine._graph import knn_graph
from skjule._engine._nclusters import gaussian_reference, modularity_curve


@parametrize_with_checks([GDLClustering(n_clusters=None, random_state=0)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        # Random test data has no clusters; the warning saying so is expected.
        warnings.filterwarnings("ignore", message="No cluster structure")
        check(estimator)


def _modularity(S, labels):
    """Newman's Q straight from the definition (dense, for small tests)."""
    A = S.toarray()
    W = A.sum()
    q = 0.0
    for c in np.unique(labels):
        m = labels == c
        q += A[np.ix_(m, m)].sum() / W - (A[m].sum() / W) ** 2
    return q


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(12, 60), k=st.integers(2, 6))
def test_modularity_curve_matches_definition(seed, n, k):
    X = np.random.default_rng(seed).normal(size=(n, 3))
    g = GDLClustering(
        n_clusters=1, normalize=False, small_cluster_fraction=None, n_neighbors=k
    ).fit(X)
    graph = knn_graph(X, k)
    q = modularity_curve(graph, g.children_, n)
    A = graph.to_csr()
    S = A + A.T
    assert q.shape == (g.children_.shape[0] + 1,)
    for n_c in sorted({n, n - 1, n // 2, 3, 2, 1}):
        if n - n_c <= g.children_.shape[0]:
            labels = cut_hierarchy(g.children_, n, n_c)
            assert q[n - n_c] == pytest.approx(_modularity(S, labels), abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("centers", [3, 5])
def test_separated_blobs_give_their_number(seed, centers):
    X, y = make_blobs(150 * centers, n_features=10, centers=centers, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no structure" warning either
        gdl = GDLClustering(n_clusters=None, random_state=0).fit(X)
    assert gdl.n_clusters_ == centers
    assert adjusted_rand_score(y, gdl.labels_) == 1.0
    assert gdl.cut_ratio_ < 0.05
    assert gdl.modularity_.shape == (gdl.n_initial_clusters_,)
    # The same as asking for that K.
    known = GDLClustering(n_clusters=centers).fit(X)
    np.testing.assert_array_equal(known.labels_, gdl.labels_)


@pytest.mark.parametrize(
    "n_features, normalize", [(10, True), (2, True), (3, True), (2, False), (30, False)]
)
def test_one_blob_is_one_cluster_with_a_warning(n_features, normalize):
    X, _ = make_blobs(500, n_features=n_features, centers=1, random_state=0)
    with pytest.warns(UserWarning, match="No cluster structure found"):
        gdl = GDLClustering(n_clusters=None, normalize=normalize, random_state=0).fit(X)
    assert gdl.n_clusters_ == 1
    assert np.all(gdl.labels_ == 0)
    assert np.all(gdl.predict(X[:5]) == 0)


def test_auto_neighbors_with_unknown_k():
    X, y = make_blobs(400, n_features=8, centers=4, random_state=3)
    gdl = GDLClustering(n_clusters=None, n_neighbors="auto", random_state=0).fit(X)
    assert gdl.n_clusters_ == 4
    # Ks from the first pass's K: 400 / 4 / 7 -> 14.
    assert gdl.n_neighbors_ == 14


def test_reproducible():
    X, _ = make_blobs(300, n_features=6, centers=3, random_state=0)
    a = GDLClustering(n_clusters=None, random_state=7).fit(X)
    b = GDLClustering(n_clusters=None, random_state=7).fit(X)
    assert a.n_clusters_ == b.n_clusters_
    assert a.cut_ratio_ == b.cut_ratio_
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_distance_threshold_cuts_at_the_first_weak_merge():
    X, _ = load_digits(return_X_y=True)
    full = GDLClustering(n_clusters=None, distance_threshold=0.0).fit(X)
    first = full.n_leaves_ - full.n_initial_clusters_
    losses = full.merge_losses_[first:]
    assert np.all(losses < 0.0)
    t = float(np.median(losses))
    cut = GDLClustering(n_clusters=None, distance_threshold=t).fit(X)
    r = cut.children_.shape[0]
    assert np.all(cut.merge_losses_[first:] < t)
    # The full hierarchy's next merge is the first at or above the threshold.
    assert full.merge_losses_[r] >= t
    np.testing.assert_array_equal(cut.children_, full.children_[:r])
    assert cut.n_clusters_ == full.n_leaves_ - r == np.unique(cut.labels_).size
    np.testing.assert_array_equal(
        cut.labels_, cut_hierarchy(full.children_, full.n_leaves_, cut.n_clusters_)
    )
    assert not hasattr(cut, "cut_ratio_")
    # Below every loss: no merge after the 1-NN over-clustering.
    none = GDLClustering(n_clusters=None, distance_threshold=2 * losses.min()).fit(X)
    assert none.n_clusters_ == none.n_initial_clusters_


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_clusters=3, distance_threshold=-0.1), "set n_clusters=None"),
        (dict(n_clusters=None, distance_threshold=np.nan), "must be finite"),
        (dict(n_clusters=None, distance_threshold=-np.inf), "must be finite"),
    ],
)
def test_bad_threshold_parameters(params, match):
    X, _ = make_blobs(50, n_features=3, random_state=0)
    with pytest.raises(ValueError, match=match):
        GDLClustering(**params).fit(X)


def test_gaussian_reference_has_the_data_covariance():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(1500, 3)) @ np.array([[2.0, 0, 0], [1.0, 1.0, 0], [0, 0, 0.1]]) + 5
    R = gaussian_reference(X, np.random.RandomState(1))
    assert R.shape == X.shape
    np.testing.assert_allclose(R.mean(0), X.mean(0), atol=0.2)
    np.testing.assert_allclose(np.cov(R.T), np.cov(X.T), rtol=0.15, atol=0.05)


# ---------------------------------------------------------------- JULE

JULE_FAST = dict(epochs_per_period=2, embedding_dim=16, random_state=0)


@pytest.fixture(scope="module")
def blobs3():
    return make_blobs(360, n_features=10, centers=3, random_state=1)


def test_jule_unknown_k_on_separated_blobs(blobs3):
    X, y = blobs3
    jule = JULEClustering(n_clusters=None, **JULE_FAST).fit(X)
    assert jule.n_clusters_ == 3
    assert adjusted_rand_score(y, jule.labels_) == 1.0
    assert jule.cut_ratio_ < 0.6
    assert jule.modularity_.ndim == 1
    # The periods trained towards the K chosen on the raw inputs (3 here),
    # which is the answer: the same as a fit with n_clusters=3.
    assert jule.history_[-2]["n_clusters_end"] == 3
    known = JULEClustering(n_clusters=3, **JULE_FAST).fit(X)
    np.testing.assert_array_equal(known.labels_, jule.labels_)
    assert jule.history_[-1]["period"] == "RC"
    assert jule.history_[-1]["n_clusters_end"] == jule.n_clusters_
    assert set(jule.predict(X[:20])) <= set(range(3))


def test_jule_unknown_k_without_recluster_keeps_the_training_target(blobs3):
    X, _ = blobs3
    jule = JULEClustering(n_clusters=None, recluster=False, **JULE_FAST).fit(X)
    assert jule.n_clusters_ == 3
    np.testing.assert_array_equal(jule.labels_, jule.labels_sf_)
    assert jule.cut_ratio_ < 0.6  # the choice on the raw inputs


def test_jule_distance_threshold(blobs3):
    X, _ = blobs3
    full = JULEClustering(n_clusters=None, distance_threshold=0.0, **JULE_FAST).fit(X)
    n = X.shape[0]
    first = n - full.history_[-1]["n_clusters_start"]
    t = float(np.median(full.merge_losses_[first:][full.merge_losses_[first:] < 0]))
    cut = JULEClustering(n_clusters=None, distance_threshold=t, **JULE_FAST).fit(X)
    assert np.all(cut.merge_losses_[first:] < t)
    assert cut.n_clusters_ == n - cut.children_.shape[0]
    np.testing.assert_array_equal(cut.labels_, cut_hierarchy(cut.children_, n, cut.n_clusters_))
    assert not hasattr(cut, "cut_ratio_")


def test_jule_threshold_needs_n_clusters_none_and_recluster(blobs3):
    X, _ = blobs3
    with pytest.raises(ValueError, match="set n_clusters=None"):
        JULEClustering(n_clusters=3, distance_threshold=-1.0, **JULE_FAST).fit(X)
    with pytest.raises(ValueError, match="needs recluster=True"):
        JULEClustering(n_clusters=None, distance_threshold=-1.0, recluster=False, **JULE_FAST).fit(
            X
        )
