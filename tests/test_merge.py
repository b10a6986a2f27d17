import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skjule import MergeEngine, cut_hierarchy
from skjule._engine import _merge_kernels as K
from skjule._engine._rows import row_dict

from _reference import dense_cluster_affinities, dense_from_graph, eq7_losses

TOL = 1e-9

settings.register_profile(
    "default",
    deadline=None,
    max_examples=int(__import__("os").environ.get("SKJULE_HYPOTHESIS_EXAMPLES", 40)),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("default")


def small_data():
    """Small float data sets, duplicates allowed, generic or not."""
    return st.integers(3, 30).flatmap(
        lambda n: st.integers(1, 4).flatmap(
            lambda d: arrays(
                np.float64,
                (n, d),
                elements=st.floats(-10, 10, allow_nan=False, width=32),
            )
        )
    )


def engine_affinities(engine, slots):
    m = len(slots)
    A = np.zeros((m, m))
    for p, s in enumerate(slots):
        for q, t in enumerate(slots):
            if p != q:
                A[p, q] = engine.affinity(s, t)
    return A


def merged_slots(before, after):
    """The two slots of ``before`` that ``after`` has joined."""
    changed = np.flatnonzero(before != after)
    gone = np.unique(before[changed])
    assert gone.size == 1
    kept = np.unique(after[changed])
    assert kept.size == 1
    return int(gone[0]), int(kept[0])


@given(
    X=small_data(),
    ks=st.integers(1, 6),
    kc=st.integers(1, 5),
    lam=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
)
def test_merges_match_dense_reference(X, ks, kc, lam):
    """Every merge the engine makes is an optimal eq. 7 merge of the dense reference,
    and after every merge all cluster affinities equal the dense formulas."""
    ks = min(ks, X.shape[0] - 1)
    engine = MergeEngine(n_neighbors=ks, n_cluster_neighbors=kc, lam=lam, knn_method="exact").start(
        X
    )
    W = dense_from_graph(engine.graph_)
    while engine.n_clusters_ > 1:
        labels = engine._label.copy()
        slots, A_ref = dense_cluster_affinities(W, labels)
        np.testing.assert_allclose(engine_affinities(engine, slots), A_ref, rtol=1e-9, atol=1e-12)
        losses = eq7_losses(A_ref, kc, lam)
        n_before = engine.n_merged_
        assert engine.step()
        loss = engine.merge_losses_[n_before]
        gone, kept = merged_slots(labels, engine._label)
        pos = {s: p for p, s in enumerate(slots)}
        if losses.min() >= 0:
            # No affinity anywhere: the centroid fallback, recorded with loss 0.
            assert loss == 0.0
            continue
        assert loss == pytest.approx(losses.min(), rel=1e-9, abs=1e-12)
        # One of the two is a cluster of minimal loss, the other its nearest
        # neighbour cluster by affinity (ties allowed).
        ok = False
        for i, j in ((gone, kept), (kept, gone)):
            pi, pj = pos[i], pos[j]
            if losses[pi] <= losses.min() + TOL * (1 + abs(losses.min())) and A_ref[
                pi, pj
            ] >= A_ref[pi].max() - TOL * (1 + A_ref[pi].max()):
                ok = True
        assert ok


@given(X=small_data(), ks=st.integers(1, 6), fast=st.booleans())
def test_incremental_equals_recomputation(X, ks, fast):
    ks = min(ks, X.shape[0] - 1)
    engine = MergeEngine(n_neighbors=ks, fast=fast, knn_method="exact").start(X)
    g = engine.graph_
    while engine.step():
        if fast:
            continue
        fresh = K.build_affinities(K.Graph.of(g), engine._label, engine._size.shape[0])
        for a in np.flatnonzero(engine._alive):
            row, ref = engine.s_row(a), row_dict(fresh, a)
            for b in set(row) | set(ref):
                assert row.get(b, 0.0) == pytest.approx(ref.get(b, 0.0), rel=1e-9, abs=1e-12)


def exact_top(engine, i, kc):
    """The ``kc`` best (index, affinity) of slot ``i``, from S, by brute force."""
    cand = [(-engine.affinity(i, j), j) for j in engine.s_row(i)]
    cand = sorted(c for c in cand if c[0] < 0)[:kc]
    return [j for _, j in cand], [-v for v, _ in cand]


def check_lists_exact(e, kc):
    for i in np.flatnonzero(e._alive):
        idx, val = exact_top(e, i, kc)
        got = e._top.idx[i, :kc]
        np.testing.assert_array_equal(got[got >= 0], idx)
        np.testing.assert_allclose(e._top.val[i, : len(val)], val, rtol=1e-12)


@given(
    X=small_data(),
    ks=st.integers(1, 6),
    kc=st.integers(1, 5),
    buffer=st.integers(0, 6),
    fast=st.booleans(),
)
def test_buffered_neighbour_lists_stay_exact(X, ks, kc, buffer, fast):
    """Lists updated in place keep the exact Kc best neighbours after every
    merge, and give the same hierarchy as rebuilding every touched list."""
    ks = min(ks, X.shape[0] - 1)
    runs = []
    for buf in (0, buffer):
        e = MergeEngine(n_neighbors=ks, n_cluster_neighbors=kc, fast=fast, knn_method="exact")
        e._top_buffer = buf
        e.start(X)
        assert e._top.idx.shape[1] == kc + buf
        while e.step():
            check_lists_exact(e, kc)
        runs.append(e)
    r = runs[0].n_merged_
    assert runs[1].n_merged_ == r
    np.testing.assert_array_equal(runs[0].children_[:r], runs[1].children_[:r])
    np.testing.assert_array_equal(runs[0].merge_losses_[:r], runs[1].merge_losses_[:r])


@pytest.mark.parametrize("seed", [0, 1])
def test_buffered_lists_on_larger_data(seed):
    """Clusters with many neighbour clusters, a dense hub among sparse points:
    the in-place path and its rebuild fallback both run, and stay exact."""
    rng = np.random.RandomState(seed)
    X = np.vstack([rng.randn(150, 4) * 0.3, rng.randn(250, 4) * 2.0])
    runs = []
    for buf in (0, 1, 5):
        e = MergeEngine(n_neighbors=10, n_cluster_neighbors=5, knn_method="exact")
        e._top_buffer = buf
        e.start(X)
        while e.n_clusters_ > 1:
            assert e.step()
            check_lists_exact(e, 5)
        runs.append(e)
    for e in runs[1:]:
        np.testing.assert_array_equal(e.children_, runs[0].children_)
        np.testing.assert_array_equal(e.merge_losses_, runs[0].merge_losses_)


def test_fast_mode_drops_cross_terms():
    """With fast=True, S(C <- a u b) = S(C <- a) + S(C <- b): affinities differ
    from the exact ones as soon as a sample links to both merged clusters."""
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    exact = MergeEngine(n_neighbors=6, knn_method="exact").start(X).merge_until(5)
    fast = MergeEngine(n_neighbors=6, fast=True, knn_method="exact").start(X).merge_until(5)
    assert not np.allclose(
        exact.merge_losses_[~np.isnan(exact.merge_losses_)][:60],
        fast.merge_losses_[~np.isnan(fast.merge_losses_)][:60],
    )


def blobs(n_per=40, centers=((0, 0), (10, 0), (0, 10)), seed=0, outliers=0):
    rng = np.random.RandomState(seed)
    parts = [rng.randn(n_per, 2) + c for c in centers]
    y = np.repeat(np.arange(len(centers)), n_per)
    if outliers:
        far = rng.randn(outliers, 2) * 0.01 + np.array([[40, 40]])
        # pairs of outliers far from everything and from each other
        far += np.repeat(np.arange(outliers // 2), 2)[:, None] * np.array([[25, -25]])
        parts.append(far)
        y = np.r_[y, np.full(outliers, -1)]
    return np.vstack(parts), y


def test_recovers_separated_blobs():
    X, y = blobs()
    e = MergeEngine(n_neighbors=10).start(X).merge_until(3)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(y, e.labels_) == 1.0
    assert e.n_clusters_ == 3


def test_small_cluster_cut_absorbs_tiny_clusters():
    """On digits with Ks=10 plain merging keeps a 2-sample cluster as one of
    the ten; the small-cluster cut attaches it and recovers a real class."""
    from sklearn.datasets import load_digits
    from sklearn.metrics import normalized_mutual_info_score

    X, y = load_digits(return_X_y=True)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    plain = MergeEngine(n_neighbors=10).start(X).merge_until(10)
    cut = MergeEngine(n_neighbors=10).start(X).merge_until(10, small_cluster_fraction=0.05)
    assert cut.n_clusters_ == 10
    assert np.bincount(plain.labels_).min() <= 2
    assert np.bincount(cut.labels_).min() >= 0.05 * len(X) / 10
    assert (
        normalized_mutual_info_score(y, cut.labels_)
        > normalized_mutual_info_score(y, plain.labels_) + 0.02
    )
    # The attachments are recorded like any other merge.
    assert cut.n_merged_ == len(X) - 10


def test_hierarchy_cuts_reproduce_every_state():
    rng = np.random.RandomState(1)
    X = rng.randn(80, 3)
    e = MergeEngine(n_neighbors=5).start(X)
    states = {e.n_clusters_: e.labels_}
    while e.step():
        states[e.n_clusters_] = e.labels_
    children = e.children_[: e.n_merged_]
    assert children.shape == (79, 2)
    # A valid tree: each node is a child at most once, children precede parents.
    flat = children.ravel()
    assert np.unique(flat).size == flat.size
    assert np.all(children < 80 + np.arange(79)[:, None])
    for k, labels in states.items():
        np.testing.assert_array_equal(cut_hierarchy(children, 80, k), labels)
    with pytest.raises(ValueError, match="n_clusters"):
        cut_hierarchy(children, 80, 0)


def test_rebuild_keeps_clusters_and_uses_new_features():
    X, y = blobs()
    e = MergeEngine(n_neighbors=10).start(X).merge_until(20)
    labels = e.labels_
    rng = np.random.RandomState(0)
    X2 = X + 0.01 * rng.randn(*X.shape)
    e.rebuild(X2)
    np.testing.assert_array_equal(e.labels_, labels)
    assert e.graph_.indices.shape == (X.shape[0], 10)
    # State equals a fresh computation on the new graph.
    g = e.graph_
    fresh = K.build_affinities(K.Graph.of(g), e._label, e._size.shape[0])
    for a in range(e._size.shape[0]):
        assert e.s_row(a) == pytest.approx(row_dict(fresh, a))
    e.merge_until(3)
    assert e.n_clusters_ == 3
    # The hierarchy continues across the rebuild.
    assert e.n_merged_ == X.shape[0] - 3


def test_isolated_clusters_fall_back_to_centroids():
    """Far-apart groups of exact duplicates have no affinity between them."""
    X = np.repeat(np.array([[0.0], [1.0], [5.0], [20.0]]), 6, axis=0)
    e = MergeEngine(n_neighbors=3).start(X)
    e.merge_until(2)
    assert e.n_clusters_ == 2
    labels = e.labels_
    # the three close groups go together, the far one stays alone
    assert len(set(labels[:18])) == 1 and labels[18:].tolist() == [labels[18]] * 6
    assert labels[0] != labels[18]


def test_singletons_init():
    X, _ = blobs(n_per=10)
    e = MergeEngine(n_neighbors=5).start(X, init="singletons")
    assert e.n_clusters_ == 30
    e.merge_until(3)
    assert e.n_clusters_ == 3


@pytest.mark.parametrize("fast", [False, True])
def test_work_counts_follow_the_merges(fast):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(80, 5) + 10 * c for c in range(4)])
    engine = MergeEngine(n_neighbors=8, fast=fast)
    engine.start(X)
    assert set(engine.work_counts().values()) == {0}
    n0 = engine.n_clusters_
    engine.merge_until(4)
    counts = engine.work_counts()
    assert set(counts) == set(MergeEngine.WORK_COUNTERS)
    assert counts["merges"] == n0 - 4  # the merges after the initial partition
    assert counts["lists_updated"] <= counts["neighbour_walk"]
    # a rebuild is of a list that was updated or of the merged cluster's own
    assert counts["lists_rebuilt"] <= counts["lists_updated"] + counts["merges"]
    assert counts["rebuild_entries"] >= counts["lists_rebuilt"]
    if fast:  # the fast mode reads no sample edges
        assert counts["member_edges"] == counts["cross_term_in_edges"] == 0
    else:  # every absorbed sample's 8 out-edges at least
        assert counts["member_edges"] >= 8 * counts["merges"]
        assert counts["cross_term_in_edges"] > 0
    engine.start(X)  # a new start counts from zero
    assert engine.work_counts()["merges"] == 0
