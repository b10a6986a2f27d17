"""The engine's collapse guard: graph-degree linkage must not chain into one cluster.

On heavily overlapping classes plain GDL lets one cluster absorb the others
(its boundary touches them all). The guard redoes the last merges with Ward's
size-weighted criterion (``skjule._engine._ward``); on data that does not collapse it
changes nothing.
"""

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from skjule import GDLClustering, MergeEngine
from skjule._engine._ward import ward_merges
from skjule._validation import l2_normalize


def overlapping_classes(n=4000, d=20, spread=0.3, k=10, seed=0):
    """k anisotropic Gaussian classes whose centres are closer than their spread."""
    rng = np.random.RandomState(seed)
    centres = rng.randn(k, d) * spread
    y = rng.randint(k, size=n)
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    return (centres[y] + rng.randn(n, d) * scales[y]).astype(np.float32), y


def _plain_gdl_sizes(X, k):
    engine = MergeEngine(
        n_neighbors=20, collapse_guard=False, random_state=np.random.RandomState(0)
    ).start(l2_normalize(X))
    engine.merge_until(k, small_cluster_fraction=0.05)
    return np.bincount(engine.labels_)


def test_overlapping_classes_collapse_without_the_guard_and_not_with_it():
    X, _ = overlapping_classes()
    n = len(X)
    assert _plain_gdl_sizes(X, 10).max() > n / 2  # the reproducer reproduces
    assert np.bincount(KMeans(10, n_init=1, random_state=0).fit_predict(X)).max() < n / 2
    gdl = GDLClustering(10, random_state=0).fit(X)
    sizes = np.bincount(gdl.labels_)
    assert sizes.size == 10 and sizes.max() < n / 2
    assert 10 < gdl.ward_from_ <= 2048
    # The result is still a hierarchy the labels come from.
    assert gdl.children_.shape == (n - 10, 2)
    from skjule import cut_hierarchy

    np.testing.assert_array_equal(cut_hierarchy(gdl.children_, n, 10), gdl.labels_)


def test_guard_changes_nothing_on_separated_clusters():
    X, _ = make_blobs(1500, centers=6, n_features=8, cluster_std=1.0, random_state=1)
    gdl = GDLClustering(6, random_state=0).fit(X)
    assert gdl.ward_from_ is None
    engine = MergeEngine(
        n_neighbors=gdl.n_neighbors_, collapse_guard=False, random_state=np.random.RandomState(0)
    ).start(l2_normalize(X))
    engine.merge_until(6, small_cluster_fraction=0.05)
    np.testing.assert_array_equal(gdl.children_, engine.children_[: engine.n_merged_])


def test_warning_when_k_comparable_clusters_do_not_exist():
    rng = np.random.RandomState(0)
    # 900 copies of one sample and 60 strays: no 4 clusters of comparable size exist
    X = np.r_[np.tile(rng.randn(1, 5), (900, 1)), rng.randn(60, 5) * 3.0 + 20]
    with pytest.warns(UserWarning, match="Could not find 4 clusters of comparable size"):
        labels = GDLClustering(4, random_state=0, normalize=False).fit_predict(X)
    assert np.unique(labels).size == 4


@pytest.mark.parametrize("seed", range(3))
def test_ward_merges_follow_scipy_ward(seed):
    rng = np.random.RandomState(seed)
    P = rng.randn(40, 3)
    merges = ward_merges(P, np.ones(len(P)), 1)
    parent = np.arange(len(P))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    Z = linkage(P, method="ward")
    for step, (a, b, cost) in enumerate(merges):
        parent[find(b)] = find(a)
        m = len(P) - step - 1
        ours = np.array([find(i) for i in range(len(P))])
        theirs = fcluster(Z, m, criterion="maxclust")
        assert adjusted_rand_score(ours, theirs) == 1.0
        # scipy's height is sqrt(2 * Ward cost)
        assert np.isclose(np.sqrt(2 * cost), Z[step, 2])


def test_ward_weights_act_like_repeated_points():
    rng = np.random.RandomState(3)
    P = rng.randn(15, 2)
    w = rng.randint(1, 4, size=15)
    weighted = ward_merges(P, w, 3)
    repeated = ward_merges(np.repeat(P, w, axis=0), np.ones(w.sum()), 3)
    owner = np.repeat(np.arange(15), w)

    def partition(merges, m):
        parent = np.arange(m)

        def find(i):
            while parent[i] != i:
                i = parent[i]
            return i

        for a, b, _ in merges:
            parent[find(b)] = find(a)
        return np.array([find(i) for i in range(m)])

    np.testing.assert_array_equal(
        adjusted_rand_score(partition(weighted, 15)[owner], partition(repeated, w.sum())), 1.0
    )
