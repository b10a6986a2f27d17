import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from skjule import GDLClustering, cut_hierarchy


# scikit-learn's estimator checks, all of them. The only skips come from scikit-learn
# itself: check_array_api_input is skipped unless SCIPY_ARRAY_API=1 is set. It does
# not apply: skjule estimators take numpy-convertible input (torch and numba kernels
# run on numpy/CPU tensors) and do not declare array-API support.
@parametrize_with_checks([GDLClustering()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def test_digits_quality(digits):
    X, y = digits
    labels = GDLClustering(n_clusters=10).fit_predict(X)
    nmi = normalized_mutual_info_score(y, labels)
    km = KMeans(10, n_init=10, random_state=0).fit_predict(X)
    assert nmi >= 0.80
    assert nmi > normalized_mutual_info_score(y, km) + 0.05


def test_images_are_flattened(digits):
    X, _ = digits
    flat = GDLClustering(n_clusters=10).fit(X)
    img = GDLClustering(n_clusters=10).fit(X.reshape(-1, 8, 8))
    img4 = GDLClustering(n_clusters=10).fit(X.reshape(-1, 8, 8, 1))
    np.testing.assert_array_equal(flat.labels_, img.labels_)
    np.testing.assert_array_equal(flat.labels_, img4.labels_)
    assert img.n_features_in_ == 64


def test_hierarchy_attributes(digits):
    X, _ = digits
    gdl = GDLClustering(n_clusters=10).fit(X)
    n = X.shape[0]
    assert gdl.children_.shape == (n - 10, 2)
    assert gdl.merge_losses_.shape == (n - 10,)
    n_init_links = n - gdl.n_initial_clusters_
    assert np.isnan(gdl.merge_losses_[:n_init_links]).all()
    assert (gdl.merge_losses_[n_init_links:] <= 0).all()
    np.testing.assert_array_equal(cut_hierarchy(gdl.children_, n, 10), gdl.labels_)
    # A cut at more clusters refines the final partition.
    fine = cut_hierarchy(gdl.children_, n, 50)
    assert np.unique(fine).size == 50
    for c in np.unique(fine):
        assert np.unique(gdl.labels_[fine == c]).size == 1


def test_normalize_parameter():
    # Three blobs along one ray from the origin: L2 normalisation maps them
    # onto the same direction, the raw features keep them apart.
    centers = np.array([[5.0, 5.0], [15.0, 15.0], [25.0, 25.0]])
    X, y = make_blobs(300, centers=centers, cluster_std=0.5, random_state=0)
    raw = GDLClustering(n_clusters=3, normalize=False).fit_predict(X)
    normed = GDLClustering(n_clusters=3, normalize=True).fit_predict(X)
    assert adjusted_rand_score(y, raw) == 1.0
    assert adjusted_rand_score(y, normed) < 0.5


def test_edge_numbers_of_clusters():
    X, _ = make_blobs(30, centers=3, random_state=0)
    assert np.unique(GDLClustering(n_clusters=1).fit_predict(X)).size == 1
    labels = GDLClustering(n_clusters=30).fit_predict(X)
    assert np.unique(labels).size == 30
    labels = GDLClustering(n_clusters=25).fit_predict(X)
    assert np.unique(labels).size == 25
    with pytest.raises(ValueError, match="larger than the number of samples"):
        GDLClustering(n_clusters=31).fit(X)


def test_does_not_modify_input_and_is_deterministic(digits):
    X, _ = digits
    X = X.astype(np.float64)
    X0 = X.copy()
    a = GDLClustering(n_clusters=10).fit_predict(X)
    b = GDLClustering(n_clusters=10).fit_predict(X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(a, b)


def test_fast_update_option_runs(digits):
    X, y = digits
    labels = GDLClustering(n_clusters=10, affinity_update="fast").fit_predict(X)
    assert np.unique(labels).size == 10
    assert normalized_mutual_info_score(y, labels) > 0.6


@pytest.mark.parametrize(
    "X, err, match",
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), ValueError, "infinity"),
        (np.zeros((0, 3)), ValueError, "0 sample"),
        (np.zeros(5), ValueError, "2-D array"),
        (np.zeros((3, 2, 2, 2, 2)), ValueError, "5 dimensions"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "numbers"),
    ],
)
def test_bad_input_messages(X, err, match):
    with pytest.raises(err, match=match):
        GDLClustering(n_clusters=2).fit(X)


def test_sparse_input_is_refused_with_advice():
    from scipy import sparse

    with pytest.raises(TypeError, match="toarray"):
        GDLClustering(n_clusters=2).fit(sparse.random(20, 5, density=0.5, format="csr"))


def test_all_identical_samples():
    X = np.ones((20, 4))
    with pytest.warns(UserWarning, match="only 1 distinct"):
        labels = GDLClustering(n_clusters=3).fit_predict(X)
    assert np.unique(labels).size == 3


def test_auto_n_neighbors():
    X, y = make_blobs(600, centers=20, cluster_std=0.3, center_box=(-30, 30), random_state=0)
    gdl = GDLClustering(n_clusters=20, n_neighbors="auto").fit(X)
    assert gdl.n_neighbors_ == 10  # 600 / 20 / 7 = 4.3 -> clipped to 10
    X2, _ = load_digits(return_X_y=True)
    assert GDLClustering(10, n_neighbors="auto").fit(X2).n_neighbors_ == 20
    assert GDLClustering(3, n_neighbors=20).fit(X[:10]).n_neighbors_ == 9  # at most n - 1
    assert GDLClustering(3).fit(X[:10]).n_neighbors_ == 9  # "auto" (10), at most n - 1
    with pytest.raises(ValueError, match="n_neighbors"):
        GDLClustering(3, n_neighbors="many").fit(X)


def test_predict_training_and_held_out_samples():
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(0)
    held = rng.rand(len(X)) < 0.2
    gdl = GDLClustering(10).fit(X[~held])
    # Training samples get (almost always) their own cluster back.
    assert np.mean(gdl.predict(X[~held]) == gdl.labels_) > 0.97
    # Held-out samples land in the cluster that holds their class.
    pred = gdl.predict(X[held])
    assert normalized_mutual_info_score(y[held], pred) > 0.75
    # One sample at a time, as dask_ml's ParallelPostFit probes it.
    assert gdl.predict(X[:1]).shape == (1,)
    with pytest.raises(ValueError, match="features"):
        gdl.predict(X[:5, :10])
