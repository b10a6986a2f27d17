"""The flat pool of hash rows behind the merge engine's S (skjule._engine._rows)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skjule import MergeEngine
from skjule._engine import _rows

OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "pop", "compact", "release"]),
        st.integers(0, 3),
        st.integers(0, 40),
        st.floats(-2.0, 2.0),
    ),
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_rows_behave_like_dicts(ops):
    """Random inserts, updates, deletions, compactions and releases in a pool
    with no spare room (so rows move, the pool compacts and grows) agree with
    a dict per row."""
    S = _rows.empty(4, np.zeros(4, dtype=np.int64), slack=0.0, spare=0)
    model = [dict() for _ in range(4)]
    for op, i, key, v in ops:
        off, cap, cnt, keys, vals, meta = S
        if op == "add":
            if _rows.find(off, cap, keys, i, key) < 0:
                need = _rows.need(cap, cnt, i, 1)
                while need and not _rows.room(S, need):
                    S = _rows.grow(S)
                _rows.ensure(S, i, 1)
            off, cap, cnt, keys, vals, meta = S
            _rows.add(off, cap, cnt, keys, vals, i, key, v)
            model[i][key] = model[i].get(key, 0.0) + v
        elif op == "pop":
            got = _rows.pop(off, cap, cnt, keys, vals, i, key)
            assert got == model[i].pop(key, 0.0)
        elif op == "compact":
            _rows.compact(S)
        else:
            _rows.release(S, i)
            model[i].clear()
        for r in range(4):
            assert _rows.row_dict(S, r) == pytest.approx(model[r])
            assert S.cnt[r] == len(model[r])
            assert 2 * S.cnt[r] <= S.cap[r] or S.cnt[r] == 0
            for key_, val_ in model[r].items():
                assert _rows.get(S.off, S.cap, S.keys, S.vals, r, key_) == val_
        # Everything outside the rows is empty.
        used = np.zeros(S.keys.shape[0], dtype=bool)
        for r in range(4):
            used[S.off[r] : S.off[r] + S.cap[r]] = True
        assert np.all(S.keys[~used] == -1)
        assert S.meta[_rows.END] <= S.keys.shape[0]


@pytest.mark.parametrize("fast", [False, True])
def test_engine_with_a_full_pool_gives_the_same_hierarchy(fast):
    """Merges that run out of pool (the kernel returns, Python grows the pool,
    the merge is redone) give the same hierarchy as a roomy pool."""
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.randn(150, 5) + 4 * rng.randn(1, 5) for _ in range(6)])
    ref = MergeEngine(n_neighbors=8, fast=fast, knn_method="exact").start(X).merge_until(2)
    e = MergeEngine(n_neighbors=8, fast=fast, knn_method="exact").start(X)
    # Repack every row at its smallest capacity, in a pool with no room left.
    m = e._S.off.shape[0]
    rows = [_rows.row_dict(e._S, i) for i in range(m)]
    S = _rows.empty(m, [_rows.cap_for(len(r)) for r in rows], slack=0.0, spare=0)
    for i, r in enumerate(rows):
        for key, v in r.items():
            _rows.add(S.off, S.cap, S.cnt, S.keys, S.vals, i, key, v)
    e._S = S
    size0 = S.keys.shape[0]
    e.merge_until(2)
    assert e._S.keys.shape[0] > size0  # it did grow
    r = ref.n_merged_
    assert e.n_merged_ == r
    np.testing.assert_array_equal(e.children_[:r], ref.children_[:r])
    np.testing.assert_array_equal(e.merge_losses_[:r], ref.merge_losses_[:r])
