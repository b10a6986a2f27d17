"""Numba kernels of the graph-degree-linkage merge engine.

Notation (JULE eq. 4 and Zhang et al., ECCV 2012). For a sample ``x`` and a
cluster ``C`` not containing ``x``::

    in_C(x)  = sum_{i in C} W(i, x)      out_C(x) = sum_{i in C} W(x, i)
    P(x, C)  = in_C(x) * out_C(x)

and for two clusters ``a`` and ``b``::

    S(b <- a) = sum_{x in b} P(x, a)
    A(a, b)   = S(b <- a) / |a|^2 + S(a <- b) / |b|^2

which is the GDL affinity ``1' W[a,b] W[b,a] 1 / |a|^2 + 1' W[b,a] W[a,b] 1 / |b|^2``.
``S`` is kept sparse: row ``a`` maps the clusters ``b`` adjacent to ``a`` to
``S(b <- a)``; the key sets are kept symmetric (``b`` in row ``a`` iff ``a``
in row ``b``). Only pairs with a positive affinity are stored, so memory is
``O(n * k)``. The rows are hash tables in one flat pool; ``S`` here is that
pool, a :class:`skjule._engine._rows.Rows`.

When ``b`` is merged into ``a`` (``c = a u b``)::

    S(c <- C) = S(a <- C) + S(b <- C)                       (additive)
    S(C <- c) = S(C <- a) + sum_{x in C adjacent to b}
                [(in_a + in_b)(out_a + out_b) - in_a out_a](x)  (exact)

The second line touches only the samples adjacent to ``b``; merging the
smaller cluster into the larger keeps the total work ``O(n k log n)`` for
bounded in-degrees. ``fast=True`` drops the cross terms
(``S(C <- c) ~ S(C <- a) + S(C <- b)``), the approximation of the authors' code.

Each live cluster keeps its eq. 7 loss and a sorted list of its most affine
neighbours (:class:`TopLists` ``idx``, ``val``: descending, ties to the
smaller index), ``B >= Kc`` long, with a bound ``floor`` (an affinity and its
index) that every neighbour missing from the list is worse than. A merge
``a u b`` changes the affinities of a neighbour ``c`` only towards ``a`` and
``b``, so ``c``'s list is updated in place - drop ``a`` and ``b``, insert
``a u b`` if it beats the floor - and is rebuilt from ``S[c]`` only when
fewer than ``Kc`` entries are known to be exact. Without the buffer every
neighbour that had ``a`` or ``b`` among its ``Kc`` best was rebuilt at every
merge, which made merges into a large hub cluster cost ``O(sum of neighbour
degrees)`` each. The first ``Kc`` entries are always the exact ``Kc`` best.
A segment tree gives the cluster of smallest loss in ``O(1)`` and updates in
``O(log n)``.

The kernels take their state as named tuples of arrays (:class:`State` and
its parts: :class:`~skjule._engine._rows.Rows`, :class:`Partition`, :class:`Graph`,
:class:`TopLists`, :class:`Criterion`, :class:`Work`), which numba compiles
as plain tuples (an attribute is a tuple item). :func:`merge` runs its steps
as kernels of their own, each called once per merge: :func:`_cross_terms`,
:func:`_make_room`, :func:`_fold_rows`, :func:`_join`, :func:`_drop_list`,
:func:`_relist_merged`, :func:`_relist_neighbours`, :func:`_update_tree`.

Written for numba's costs: every array numba takes from a tuple or passes
to a function is an atomic reference-count increment and decrement, which
inside a loop costs more than the work (a hash lookup, a list entry), and
numba's pruning of those counts fails across loops and several returns.
So the kernels compiled with numba's runtime unpack their tuples once, at
the top, never inside a loop, and call only row operations of
:mod:`skjule._engine._rows` simple enough for the pruning. The steps of
:func:`merge` (all but :func:`_make_room`, whose compaction allocates) never
allocate and are compiled without the runtime (``_nrt=False``): they, and
what they call, hold no reference counts at all, so their per-entry
neighbour-list helpers (:func:`_place` ...) are module-level functions
taking the named tuples. Compiled with the runtime, the split into step
kernels cost 4-8 % of the ``fast=True`` merge time (n = 100k), and such
helpers (in place of closures over unpacked arrays) 22 % more instructions,
a third of them reference counts.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from . import _rows

_NJIT = dict(cache=True, nogil=True)
# Small helpers called per neighbour are inlined in numba's IR, so that the
# reference counts of the arrays and rows they take are pruned with the
# caller's (an atomic increment and decrement per argument and call otherwise).
_INLINE = dict(_NJIT, inline="always")
# The steps of :func:`merge` never allocate: compiled without numba's runtime
# (NRT), they and everything they call hold no reference counts at all (see
# the module docstring). A step that allocates does not compile this way.
_NO_NRT = dict(_NJIT, _nrt=False)


# ----------------------------------------------------------------- the state
class Graph(NamedTuple):
    """The kNN graph as the kernels read it (from a :class:`skjule._engine._graph.KNNGraph`)."""

    out_idx: np.ndarray  # (n, k) int64: out-neighbours of each sample
    out_w: np.ndarray  # (n, k) float64: their weights W(x, .)
    in_ptr: np.ndarray  # (n + 1,) int64: in-edges of x are in_idx[in_ptr[x]:in_ptr[x + 1]]
    in_idx: np.ndarray  # in-neighbours (int64)
    in_w: np.ndarray  # their weights W(., x)

    @classmethod
    def of(cls, g):
        return cls(g.indices, g.weights, g.in_indptr, g.in_indices, g.in_weights)


class Partition(NamedTuple):
    """The clusters: per sample its slot, per slot its members as a linked list."""

    label: np.ndarray  # (n,) int64: slot of each sample
    size: np.ndarray  # (n_slots,) int64: members of each slot (0 once merged away)
    head: np.ndarray  # (n_slots,) int64: first member, -1 if none
    tail: np.ndarray  # (n_slots,) int64: last member, -1 if none
    nxt: np.ndarray  # (n,) int64: next member of the same cluster, -1 at the end
    alive: np.ndarray  # (n_slots,) bool


class TopLists(NamedTuple):
    """The neighbour lists (:func:`make_top`): per slot the sorted entries
    (neighbour, affinity and its two terms ``A = u / |i|^2 + w``) and the
    bounds of the entries left out (``floor_idx = -1``: none left out)."""

    idx: np.ndarray  # (n_slots, width) int64: neighbours, -1 past the end
    val: np.ndarray  # (n_slots, width) float64: their affinities, descending
    u: np.ndarray  # (n_slots, width): S[i][j]
    w: np.ndarray  # (n_slots, width): S[j][i] / |j|^2
    floor_idx: np.ndarray  # (n_slots,) int64: the best entry left out (0: a strict bound)
    floor_val: np.ndarray  # (n_slots,): its affinity, or a bound on it
    floor_u: np.ndarray  # (n_slots,): the largest u left out
    floor_w: np.ndarray  # (n_slots,): the largest w left out


class Criterion(NamedTuple):
    """The parameters of the merges."""

    kc: int  # Kc, neighbours in the eq. 7 loss
    lam: float  # lambda of eq. 7
    fast: bool  # drop the cross terms of the S update


#: The work counters of :attr:`Work.count`, in order (``MergeEngine.work_counts``).
WORK_COUNTERS = (
    "merges",  # graph merges since the last (re)start
    "member_edges",  # out- and in-edges of the absorbed cluster's samples
    "cross_term_in_edges",  # in-edges of their neighbours read for the cross terms
    "neighbour_walk",  # neighbouring clusters of the merged cluster visited
    "lists_updated",  # of those, neighbour lists that may have changed
    "flagged",  # clusters whose S entries with the merged cluster grew
    "absorbed_neighbours",  # neighbouring clusters of the absorbed cluster
    "lists_rebuilt",  # neighbour lists rebuilt from a whole S row
    "rebuild_entries",  # S entries read by those rebuilds
)
(
    MERGES,
    MEMBER_EDGES,
    CROSS_TERM_IN_EDGES,
    NEIGHBOUR_WALK,
    LISTS_UPDATED,
    FLAGGED,
    ABSORBED_NEIGHBOURS,
    LISTS_REBUILT,
    REBUILD_ENTRIES,
) = range(len(WORK_COUNTERS))


class Work(NamedTuple):
    """Scratch arrays of :func:`merge` (:func:`make_work`; all zero / False
    between merges) and the work counters."""

    in_acc: np.ndarray  # (n,) in_b(y) of the samples y adjacent to b
    out_acc: np.ndarray  # (n,) out_b(y)
    smark: np.ndarray  # (n,) bool: y is in `touched`
    touched: np.ndarray  # (n,) int64: the samples adjacent to b
    gain: np.ndarray  # (n_slots,) the cross-term gain of S(C <- a u b)
    cmark: np.ndarray  # (n_slots,) bool: C is in `flagged`
    flagged: np.ndarray  # (n_slots,) int64: clusters whose S entries with a grew
    old: np.ndarray  # (width,) int64: a's list before the merge
    changed: np.ndarray  # (n_slots,) int64: slots whose loss changed
    count: np.ndarray  # (len(WORK_COUNTERS),) int64: count[MERGES], ...


class State(NamedTuple):
    """All the kernels of a merge read and change. ``S`` is replaced (a new
    tuple) when its pool grows; everything else is changed in place."""

    S: _rows.Rows
    part: Partition
    graph: Graph
    top: TopLists
    loss: np.ndarray  # (n_slots,) eq. 7 loss of each slot (inf when dead)
    tree: np.ndarray  # segment tree over `loss` (:func:`tree_init`)
    crit: Criterion
    work: Work


class History(NamedTuple):
    """The merges recorded by :func:`merge_loop` (``MergeEngine``'s arrays)."""

    node: np.ndarray  # (n_slots,) int64: hierarchy node of each slot
    children: np.ndarray  # (n - 1, 2) int64: as AgglomerativeClustering.children_
    merge_loss: np.ndarray  # (n - 1,) float64: eq. 7 loss of each merge


def make_work(n_samples, n_slots, width):
    """Scratch arrays for :func:`merge` (all zero / False between calls);
    ``width`` is the width of the neighbour lists. ``count`` counts the
    work done (see ``MergeEngine.work_counts``)."""
    return Work(
        in_acc=np.zeros(n_samples),
        out_acc=np.zeros(n_samples),
        smark=np.zeros(n_samples, dtype=np.bool_),
        touched=np.empty(n_samples, dtype=np.int64),
        gain=np.zeros(n_slots),
        cmark=np.zeros(n_slots, dtype=np.bool_),
        flagged=np.empty(n_slots, dtype=np.int64),
        old=np.empty(width, dtype=np.int64),
        changed=np.empty(n_slots, dtype=np.int64),
        count=np.zeros(len(WORK_COUNTERS), dtype=np.int64),
    )


def make_top(n_slots, kc, buffer=None):
    """Empty neighbour lists, ``kc + buffer`` wide (``buffer=None``: ``max(kc, 5)``)."""
    width = kc + (max(kc, 5) if buffer is None else int(buffer))
    return TopLists(
        idx=np.full((n_slots, width), -1, dtype=np.int64),
        val=np.zeros((n_slots, width)),
        u=np.zeros((n_slots, width)),
        w=np.zeros((n_slots, width)),
        floor_idx=np.full(n_slots, -1, dtype=np.int64),
        floor_val=np.zeros(n_slots),
        floor_u=np.zeros(n_slots),
        floor_w=np.zeros(n_slots),
    )


# ----------------------------------------------------------------- affinities
@njit(**_NJIT)
def _scan_columns(graph, label, n_clusters, S, deg, fill):
    """Every positive ``S(c <- l)``, cluster by cluster.

    Samples are taken cluster by cluster (in sample order within each, so
    every sum is taken in the same order as a pass over the samples); the
    column ``S(. <- l)`` is summed in a dense buffer. ``fill=False`` counts
    the keys each row will hold (``deg``: at most twice the exact count,
    a pair is counted from both of its clusters); ``fill=True`` writes the
    columns into ``S`` with the symmetric zero keys.
    """
    out_idx, out_w, in_ptr, in_idx, in_w = graph
    off, cap, cnt, keys, vals, meta = S
    n, k = out_idx.shape
    order = np.argsort(label, kind="mergesort")
    cin = np.zeros(n_clusters)
    cout = np.zeros(n_clusters)
    cmark = np.zeros(n_clusters, dtype=np.bool_)
    col = np.zeros(n_clusters)
    col_mark = np.zeros(n_clusters, dtype=np.bool_)
    col_list = np.empty(n_clusters, dtype=np.int64)
    max_in = 0
    for x in range(n):
        max_in = max(max_in, in_ptr[x + 1] - in_ptr[x])
    touched = np.empty(k + max_in + 1, dtype=np.int64)
    nc = 0
    for r in range(n):
        x = order[r]
        lx = label[x]
        nt = 0
        for e in range(k):
            c = label[out_idx[x, e]]
            if c == lx:
                continue
            if not cmark[c]:
                cmark[c] = True
                touched[nt] = c
                nt += 1
            cout[c] += out_w[x, e]
        for e in range(in_ptr[x], in_ptr[x + 1]):
            c = label[in_idx[e]]
            if c == lx:
                continue
            if not cmark[c]:
                cmark[c] = True
                touched[nt] = c
                nt += 1
            cin[c] += in_w[e]
        for t in range(nt):
            c = touched[t]
            p = cin[c] * cout[c]
            if p > 0.0:
                if not col_mark[c]:
                    col_mark[c] = True
                    col_list[nc] = c
                    nc += 1
                col[c] += p
            cin[c] = 0.0
            cout[c] = 0.0
            cmark[c] = False
        if r + 1 == n or label[order[r + 1]] != lx:
            for t in range(nc):
                c = col_list[t]
                if fill:
                    _rows.add(off, cap, cnt, keys, vals, c, lx, col[c])
                    _rows.add(off, cap, cnt, keys, vals, lx, c, 0.0)
                else:
                    deg[c] += 1
                    deg[lx] += 1
                col[c] = 0.0
                col_mark[c] = False
            nc = 0


def build_affinities(graph, label, n_clusters):
    """``S`` from scratch for the partition ``label`` (values in [0, n_clusters))
    on the :class:`Graph` ``graph``.

    Two scans: one counts the keys of each row, so that filling never moves one."""
    deg = np.zeros(n_clusters, dtype=np.int64)
    _scan_columns(graph, label, n_clusters, _rows.empty(0, np.zeros(0, dtype=np.int64)), deg, False)
    S = _rows.empty(n_clusters, _caps(deg))
    _scan_columns(graph, label, n_clusters, S, deg, True)
    return S


@njit(**_NJIT)
def _caps(deg):
    out = np.empty_like(deg)
    for i in range(deg.shape[0]):
        out[i] = _rows.cap_for(deg[i])
    return out


@njit(**_NJIT)
def affinity(S, size, a, b):
    """GDL affinity ``A(a, b)`` (0 when the clusters are not adjacent)."""
    off, cap, cnt, keys, vals, meta = S
    if _rows.find(off, cap, keys, a, b) < 0:
        return 0.0
    return _terms(off, cap, keys, vals, size, a, b)[0]


@njit(**_INLINE)
def _terms(off, cap, keys, vals, size, i, j):
    """``A(i, j) = u / |i|^2 + w`` with ``u = S[i][j]`` and ``w = S[j][i] / |j|^2``."""
    u = _rows.get(off, cap, keys, vals, i, j)
    sj = float(size[j])
    w = _rows.get(off, cap, keys, vals, j, i) / (sj * sj)
    si = float(size[i])
    return u / (si * si) + w, u, w


@njit(**_NJIT)
def recompute_top(S, size, i, top):
    """Rebuild the list of cluster ``i`` and its bounds from row ``i`` of ``S``;
    returns the number of ``S`` entries read.

    One pass: an entry that beats the last of the list is inserted (the one
    it pushes out, or itself, goes to the bounds). The insertion is written
    out here, not a helper (see the module docstring on why).
    """
    off, cap, cnt, keys, vals, meta = S
    idx, val, tu, tw, f_idx, f_val, f_u, f_w = top
    width = idx.shape[1]
    idx[i, :] = -1
    val[i, :] = 0.0
    tu[i, :] = 0.0
    tw[i, :] = 0.0
    fj = -1
    fv = 0.0
    fu = 0.0
    fw = 0.0
    n = 0
    si = float(size[i])
    o = off[i]
    for s in range(o, o + cap[i]):
        j = keys[s]
        if j < 0:
            continue
        u = vals[s]
        sj = float(size[j])
        wj = _rows.get(off, cap, keys, vals, j, i)
        w = wj / (sj * sj)
        v = u / (si * si) + w
        if v <= 0.0:
            continue
        ov = ou = ow = 0.0
        # Left out: j itself when the list is full and j does not beat its
        # last entry (affinity descending, ties to the smaller index) ...
        if n == width and not (v > val[i, n - 1] or (v == val[i, n - 1] and j < idx[i, n - 1])):
            oj_, ov, ou, ow = j, v, u, w
        else:
            # ... else j goes in and the last entry (if the list was full) goes out.
            oj_ = -1
            if n == width:
                oj_ = idx[i, n - 1]
                ov = val[i, n - 1]
                ou = tu[i, n - 1]
                ow = tw[i, n - 1]
                n -= 1
            pos = n
            while pos > 0 and (
                v > val[i, pos - 1] or (v == val[i, pos - 1] and j < idx[i, pos - 1])
            ):
                idx[i, pos] = idx[i, pos - 1]
                val[i, pos] = val[i, pos - 1]
                tu[i, pos] = tu[i, pos - 1]
                tw[i, pos] = tw[i, pos - 1]
                pos -= 1
            idx[i, pos] = j
            val[i, pos] = v
            tu[i, pos] = u
            tw[i, pos] = w
            n += 1
        if oj_ >= 0:
            if fj < 0 or ov > fv or (ov == fv and oj_ < fj):
                fj = oj_
                fv = ov
            fu = max(fu, ou)
            fw = max(fw, ow)
    f_idx[i] = fj
    f_val[i] = fv
    f_u[i] = fu
    f_w[i] = fw
    return cnt[i]


@njit(**_INLINE)
def loss_of(top_val, i, lam, kc):
    """Eq. 7: ``-A1 - lam / (Kc - 1) * sum_{k >= 2} (A1 - Ak)``; missing neighbours count as 0."""
    a1 = top_val[i, 0]
    if kc < 2:
        return -a1
    s = 0.0
    for q in range(1, kc):
        s += a1 - top_val[i, q]
    return -a1 - lam / (kc - 1) * s


@njit(**_NJIT)
def init_losses(S, part, top, crit):
    """Every live cluster's list (from its row of ``S``) and eq. 7 loss."""
    size, alive = part.size, part.alive
    lam, kc = crit.lam, crit.kc
    m = size.shape[0]
    loss = np.full(m, np.inf)
    top_val = top.val
    for i in range(m):
        if alive[i]:
            recompute_top(S, size, i, top)
            loss[i] = loss_of(top_val, i, lam, kc)
    return loss


# ----------------------------------------------------------------- segment tree
@njit(**_NJIT)
def tree_init(loss):
    m = loss.shape[0]
    size = 1
    while size < m:
        size *= 2
    tree = np.full(2 * size, -1, dtype=np.int64)
    for i in range(m):
        tree[size + i] = i
    for p in range(size - 1, 0, -1):
        tree[p] = _tree_pick(loss, tree[2 * p], tree[2 * p + 1])
    return tree


@njit(**_INLINE)
def _tree_pick(loss, i, j):
    if i < 0:
        return j
    if j < 0:
        return i
    if loss[j] < loss[i] or (loss[j] == loss[i] and j < i):
        return j
    return i


@njit(**_NO_NRT)
def _update_tree(tree, loss, slots, n):
    """Step 8 of :func:`merge`: the paths of the leaves ``slots[:n]`` (whose
    losses changed), bottom-up.

    The tree is the same whatever the order of the leaves: the last path
    through a node recomputes it from children that are final by then."""
    half = tree.shape[0] // 2
    for t in range(n):
        p = (half + slots[t]) // 2
        while p >= 1:
            left = tree[2 * p]
            r = tree[2 * p + 1]
            if left < 0 or (
                r >= 0 and (loss[r] < loss[left] or (loss[r] == loss[left] and r < left))
            ):
                tree[p] = r
            else:
                tree[p] = left
            p //= 2


# ----------------------------------------------------------------- the merge
@njit(**_NJIT)
def join_members(src, dst, label, head, tail, nxt):
    """Relabel the members of cluster ``src`` as ``dst`` and append ``src``'s
    member list (``head``/``tail``/``nxt`` linked lists) to ``dst``'s."""
    x = head[src]
    while x >= 0:
        label[x] = dst
        x = nxt[x]
    nxt[tail[dst]] = head[src]
    tail[dst] = tail[src]


@njit(**_NJIT)
def merge(a, b, st):
    """Merge clusters ``a`` and ``b`` of the :class:`State` ``st``; the larger
    keeps its slot, which is returned.

    Returns -1, having changed nothing, when the pool of ``S`` lacks the room
    the merged row needs (``S.meta[ASKED]`` says how much): grow it
    (:func:`skjule._engine._rows.grow`) and call again.

    The steps, each a kernel of its own (called once per merge):

    1. :func:`_cross_terms` - the exact cross terms (not with ``fast``);
    2. :func:`_make_room` - room in ``S`` for the merged row, or return -1;
    3. :func:`_fold_rows` - ``b``'s row into ``a``'s, ``b`` out of every row;
    4. :func:`_join` - ``b``'s members join ``a``;
    5. :func:`_drop_list` - ``b`` leaves the lists;
    6. :func:`_relist_merged` - ``a``'s list and loss;
    7. :func:`_relist_neighbours` - the lists and losses of ``a``'s neighbours;
    8. :func:`_update_tree` - the loss tree at the slots whose loss changed.
    """
    size = st.part.size
    if size[b] > size[a] or (size[b] == size[a] and b < a):
        a, b = b, a
    work = st.work
    count = work.count
    member_edges = count[MEMBER_EDGES]
    cross_term_in_edges = count[CROSS_TERM_IN_EDGES]
    n_gain = 0
    if not st.crit.fast:
        n_gain = _cross_terms(a, b, st.part, st.graph, work)
    if not _make_room(a, b, n_gain, st.S, work):
        count[MEMBER_EDGES] = member_edges
        count[CROSS_TERM_IN_EDGES] = cross_term_in_edges
        return -1
    count[MERGES] += 1
    n_flagged = _fold_rows(a, b, n_gain, st.S, work, st.crit.fast)
    _join(a, b, st.part)
    _drop_list(b, st.top, st.loss)
    _relist_merged(a, b, n_flagged, st.S, size, st.top, st.loss, st.crit, work)
    changed = work.changed
    changed[0] = b
    changed[1] = a
    n_changed = _relist_neighbours(a, b, n_flagged, st.S, size, st.top, st.loss, st.crit, work, 2)
    _update_tree(st.tree, st.loss, changed, n_changed)
    cmark, flagged = work.cmark, work.flagged
    for t in range(n_flagged):
        cmark[flagged[t]] = False
    return a


@njit(**_NO_NRT)
def _cross_terms(a, b, part, graph, work):
    """Step 1: the cross terms of ``S(C <- a u b)``, summed per cluster ``C``
    into ``work.gain`` for the clusters ``work.flagged[:n_gain]`` (also marked
    in ``work.cmark``); returns ``n_gain``. Nothing else changes.

    ``in_b`` / ``out_b`` of every sample adjacent to ``b``, outside ``a`` and
    ``b``; the change of ``P(y, .)`` from ``a`` to ``a u b`` is
    ``(ia + ib)(oa + ob) - ia oa = ib ob + ia ob + ib oa``, so ``y``'s
    in-edges (which can be thousands for a hub sample) are read only when
    ``y`` points to ``b``, and its out-edges only when ``b`` points to ``y``.
    """
    label, head, nxt = part.label, part.head, part.nxt
    out_idx, out_w, in_ptr, in_idx, in_w = graph
    in_acc, out_acc, smark, touched = work.in_acc, work.out_acc, work.smark, work.touched
    gain, cmark, flagged, count = work.gain, work.cmark, work.flagged, work.count
    k = out_idx.shape[1]
    nt = 0
    x = head[b]
    while x >= 0:
        count[MEMBER_EDGES] += k + in_ptr[x + 1] - in_ptr[x]
        for e in range(k):
            y = out_idx[x, e]
            ly = label[y]
            if ly == a or ly == b:
                continue
            if not smark[y]:
                smark[y] = True
                touched[nt] = y
                nt += 1
            in_acc[y] += out_w[x, e]
        for e in range(in_ptr[x], in_ptr[x + 1]):
            y = in_idx[e]
            ly = label[y]
            if ly == a or ly == b:
                continue
            if not smark[y]:
                smark[y] = True
                touched[nt] = y
                nt += 1
            out_acc[y] += in_w[e]
        x = nxt[x]
    ng = 0
    for t in range(nt):
        y = touched[t]
        ib = in_acc[y]
        ob = out_acc[y]
        ia = 0.0
        oa = 0.0
        if ib != 0.0:
            for e in range(k):
                if label[out_idx[y, e]] == a:
                    oa += out_w[y, e]
        if ob != 0.0:
            count[CROSS_TERM_IN_EDGES] += in_ptr[y + 1] - in_ptr[y]
            for e in range(in_ptr[y], in_ptr[y + 1]):
                if label[in_idx[e]] == a:
                    ia += in_w[e]
        delta = ib * ob + ia * ob + ib * oa
        in_acc[y] = 0.0
        out_acc[y] = 0.0
        smark[y] = False
        if delta != 0.0:
            c = label[y]
            if not cmark[c]:
                cmark[c] = True
                flagged[ng] = c
                ng += 1
            gain[c] += delta
    return ng


@njit(**_NJIT)  # with the runtime: the compaction in _rows.room allocates
def _make_room(a, b, n_gain, S, work):
    """Step 2: room in ``S`` for the merge (row ``a`` made large enough).

    Row ``a`` takes at most the keys of row ``b`` and the gain clusters; a
    gain cluster adjacent to neither ``a`` nor ``b`` gains key ``a``. When
    the pool lacks the room, the gains of step 1 are cleared and False is
    returned, nothing changed.
    """
    off, cap, cnt, keys = S.off, S.cap, S.cnt, S.keys
    gain, cmark, flagged = work.gain, work.cmark, work.flagged
    extra = cnt[b] + n_gain
    request = _rows.need(cap, cnt, a, extra)
    for t in range(n_gain):
        c = flagged[t]
        if _rows.find(off, cap, keys, c, a) < 0 and _rows.find(off, cap, keys, c, b) < 0:
            request += _rows.need(cap, cnt, c, 1)
    if request > 0 and not _rows.room(S, request):
        for t in range(n_gain):
            c = flagged[t]
            gain[c] = 0.0
            cmark[c] = False
        return False
    _rows.ensure(S, a, extra)
    return True


@njit(**_NO_NRT)
def _fold_rows(a, b, n_gain, S, work, fast):
    """Step 3: ``S(c <- C) = S(a <- C) + S(b <- C)`` (with ``fast`` also
    ``S(C <- c) = S(C <- a) + S(C <- b)``), ``b`` leaves every row, and the
    exact cross terms ``S(C <- c) = S(C <- a) + gain`` are added.

    ``work.cmark`` flags the clusters whose ``S`` entries with ``a`` grew:
    ``work.flagged`` lists them (the gain clusters first); returns how many.
    """
    off, cap, cnt, keys, vals, meta = S
    gain, cmark, flagged, count = work.gain, work.cmark, work.flagged, work.count

    def find(i, key):
        return _rows.find(off, cap, keys, i, key)

    def add(i, key, v):
        _rows.add(off, cap, cnt, keys, vals, i, key, v)

    def pop(i, key):
        return _rows.pop(off, cap, cnt, keys, vals, i, key)

    ng = n_gain
    count[ABSORBED_NEIGHBOURS] += cnt[b]
    o = off[b]
    for s in range(o, o + cap[b]):
        c = keys[s]
        if c < 0 or c == a:
            continue
        if not cmark[c]:
            cmark[c] = True
            flagged[ng] = c
            ng += 1
        add(a, c, vals[s] if fast else 0.0)
        add(c, a, pop(c, b))
    pop(a, b)
    _rows.release(S, b)
    for t in range(n_gain):
        c = flagged[t]
        add(a, c, gain[c])
        if find(c, a) < 0:
            _rows.ensure(S, c, 1)
            add(c, a, 0.0)
        gain[c] = 0.0
    return ng


@njit(**_NO_NRT)
def _join(a, b, part):
    """Step 4: the members of ``b`` join ``a``; ``b``'s slot dies."""
    label, size, head, tail, nxt, alive = part
    join_members(b, a, label, head, tail, nxt)
    head[b] = -1
    tail[b] = -1
    size[a] += size[b]
    size[b] = 0
    alive[b] = False


@njit(**_NO_NRT)
def _drop_list(b, top, loss):
    """Step 5: ``b`` leaves the lists (its loss becomes inf)."""
    loss[b] = np.inf
    top.idx[b, :] = -1
    top.val[b, :] = 0.0
    top.u[b, :] = 0.0
    top.w[b, :] = 0.0
    top.floor_idx[b] = -1


# ---- per-entry neighbour-list helpers (inlined into the NRT-free steps)
@njit(**_INLINE)
def _better(v1, i1, v2, i2):
    """Affinity ``v1`` of ``i1`` ranks before ``v2`` of ``i2`` (ties: smaller index)."""
    return v1 > v2 or (v1 == v2 and i1 < i2)


@njit(**_INLINE)
def _insert_top(top, i, j, v, u, w):
    """Insert entry ``j`` into ``i``'s list; returns the entry that no longer
    fits (``j`` itself when it does not beat the last entry of a full list),
    or ``j = -1``."""
    idx, val, tu, tw = top.idx, top.val, top.u, top.w
    width = idx.shape[1]
    pos = width
    while pos > 0:
        pj = idx[i, pos - 1]
        if pj >= 0 and not _better(v, j, val[i, pos - 1], pj):
            break
        pos -= 1
    if pos >= width:
        return j, v, u, w
    q = width - 1
    out = (idx[i, q], val[i, q], tu[i, q], tw[i, q])
    for q in range(width - 1, pos, -1):
        idx[i, q] = idx[i, q - 1]
        val[i, q] = val[i, q - 1]
        tu[i, q] = tu[i, q - 1]
        tw[i, q] = tw[i, q - 1]
    idx[i, pos] = j
    val[i, pos] = v
    tu[i, pos] = u
    tw[i, pos] = w
    return out


@njit(**_INLINE)
def _unlist(top, i, j, v, u, w):
    """Entry ``j`` is left out of ``i``'s list: raise the bounds of the missing entries."""
    if j < 0:
        return
    f_idx, f_val, f_u, f_w = top.floor_idx, top.floor_val, top.floor_u, top.floor_w
    if f_idx[i] < 0 or _better(v, j, f_val[i], f_idx[i]):
        f_idx[i] = j
        f_val[i] = v
    f_u[i] = max(f_u[i], u)
    f_w[i] = max(f_w[i], w)


@njit(**_INLINE)
def _place(S, size, top, i, j):
    """Insert ``j`` into ``i``'s list if it beats the floor of ``i``, else
    leave it out (bounds raised)."""
    v, u, w = _terms(S.off, S.cap, S.keys, S.vals, size, i, j)
    if v <= 0.0:
        return
    f_idx = top.floor_idx
    if f_idx[i] < 0 or _better(v, j, top.floor_val[i], f_idx[i]):
        oj, ov, ou, ow = _insert_top(top, i, j, v, u, w)
        _unlist(top, i, oj, ov, ou, ow)
    else:
        _unlist(top, i, j, v, u, w)


@njit(**_INLINE)
def _n_listed(idx, i):
    n = 0
    while n < idx.shape[1] and idx[i, n] >= 0:
        n += 1
    return n


@njit(**_NO_NRT)
def _relist_merged(a, b, n_flagged, S, size, top, loss, crit, work):
    """Step 6: ``a``'s own list and loss, without reading all of row ``a``.

    ``A(a, j) = S[a][j] / |a|^2 + S[j][a] / |j|^2``. For a neighbour ``j``
    whose ``S`` entries with ``a`` did not grow (not flagged), only ``|a|``
    changed, so every missing one is at most ``floor_u / |a|^2 + floor_w``
    (the largest ``u`` and ``w`` among them) and at most its old value. The
    old entries and the flagged neighbours are re-evaluated; the list is
    rebuilt from row ``a`` only when fewer than ``kc`` entries are certain.
    """
    idx, val, tu, tw = top.idx, top.val, top.u, top.w
    f_idx, f_val = top.floor_idx, top.floor_val
    kc = crit.kc
    flagged, old, count = work.flagged, work.old, work.count
    width = idx.shape[1]
    if f_idx[a] >= 0:
        sa = float(size[a])
        bound = top.floor_u[a] / (sa * sa) + top.floor_w[a]
        if bound < f_val[a]:
            # A strict bound: index 0 never beats a real slot on ties.
            f_val[a] = bound
            f_idx[a] = 0
    for q in range(width):
        old[q] = idx[a, q]
    idx[a, :] = -1
    val[a, :] = 0.0
    tu[a, :] = 0.0
    tw[a, :] = 0.0
    for q in range(width):
        j = old[q]
        if j < 0:
            break
        if j != b:
            _place(S, size, top, a, j)
    for r in range(n_flagged):
        j = flagged[r]
        seen = False
        for q in range(width):
            if old[q] == j:
                seen = True
                break
        if not seen:
            _place(S, size, top, a, j)
    if _n_listed(idx, a) < kc and f_idx[a] >= 0:
        count[LISTS_REBUILT] += 1
        count[REBUILD_ENTRIES] += recompute_top(S, size, a, top)
    loss[a] = loss_of(val, a, crit.lam, kc)


@njit(**_NO_NRT)
def _relist_neighbours(a, b, n_flagged, S, size, top, loss, crit, work, n_changed):
    """Step 7: the lists and losses of ``a``'s neighbours; the slots whose
    loss changed are appended to ``work.changed[:n_changed]``, the new count
    is returned.

    The affinities of ``c`` to clusters other than ``a`` and ``b`` did not
    change. Unless flagged, ``A(c, a u b) <= A(c, a)`` and only a list
    holding ``a`` or ``b`` changes: drop ``a`` and ``b``, insert ``a u b`` if
    it beats the floor, rebuild from row ``c`` when fewer than ``kc`` entries
    are certain.
    """
    off, cap, cnt, keys = S.off, S.cap, S.cnt, S.keys
    idx, val, tu, tw, f_idx = top.idx, top.val, top.u, top.w, top.floor_idx
    kc, lam = crit.kc, crit.lam
    cmark, changed, count = work.cmark, work.changed, work.count
    width = idx.shape[1]
    count[NEIGHBOUR_WALK] += cnt[a]
    count[FLAGGED] += n_flagged
    o = off[a]
    for s in range(o, o + cap[a]):
        c = keys[s]
        if c < 0:
            continue
        if not cmark[c]:
            listed = False
            for q in range(width):
                t = idx[c, q]
                if t < 0:
                    break
                if t == a or t == b:
                    listed = True
                    break
            if not listed:
                continue
        count[LISTS_UPDATED] += 1
        n = 0
        for q in range(width):
            t = idx[c, q]
            if t < 0:
                break
            if t == a or t == b:
                continue
            idx[c, n] = t
            val[c, n] = val[c, q]
            tu[c, n] = tu[c, q]
            tw[c, n] = tw[c, q]
            n += 1
        for q in range(n, width):
            idx[c, q] = -1
            val[c, q] = 0.0
        _place(S, size, top, c, a)
        if _n_listed(idx, c) < kc and f_idx[c] >= 0:
            count[LISTS_REBUILT] += 1
            count[REBUILD_ENTRIES] += recompute_top(S, size, c, top)
        new_loss = loss_of(val, c, lam, kc)
        if new_loss != loss[c]:
            loss[c] = new_loss
            changed[n_changed] = c
            n_changed += 1
    return n_changed


@njit(**_NJIT)
def merge_loop(
    st, hist, n_alive, next_node, n_merged, n_stop, large_min_size, n_large_stop, max_steps
):
    """Greedy eq. 7 merges of the :class:`State` ``st`` while more than
    ``n_stop`` clusters are alive, recorded in the :class:`History` ``hist``.

    Also stops once at most ``n_large_stop`` clusters hold ``large_min_size``
    samples or more (``n_large_stop < 0`` disables that), after ``max_steps``
    merges, or when no cluster has a positive affinity to any other
    (returned status 1: the caller then falls back to centroids).

    Returns
    -------
    status, n_alive, next_node, n_merged
        ``status`` 2: the pool of ``S`` is full (see :func:`merge`).
    """
    size, alive = st.part.size, st.part.alive
    loss, tree, top_idx = st.loss, st.tree, st.top.idx
    node, children, merge_loss = hist
    n_large = 0
    if n_large_stop >= 0:
        for i in range(size.shape[0]):
            if alive[i] and size[i] >= large_min_size:
                n_large += 1
    steps = 0
    while n_alive > n_stop and steps < max_steps:
        if n_large_stop >= 0 and n_large <= n_large_stop:
            return 0, n_alive, next_node, n_merged
        i = tree[1]
        j = top_idx[i, 0]
        if loss[i] >= 0.0 or j < 0:
            return 1, n_alive, next_node, n_merged
        was = 0
        if n_large_stop >= 0:
            if size[i] >= large_min_size:
                was += 1
            if size[j] >= large_min_size:
                was += 1
        li = loss[i]
        kept = merge(i, j, st)
        if kept < 0:
            return 2, n_alive, next_node, n_merged
        children[n_merged, 0] = node[i]
        children[n_merged, 1] = node[j]
        merge_loss[n_merged] = li
        n_merged += 1
        node[kept] = next_node
        next_node += 1
        n_alive -= 1
        steps += 1
        if n_large_stop >= 0:
            if size[kept] >= large_min_size:
                n_large += 1
            n_large -= was
    return 0, n_alive, next_node, n_merged


@njit(**_NJIT)
def best_partner(S, size, i, allowed):
    """The cluster ``j`` with ``allowed[j]`` of highest ``A(i, j) > 0`` (-1 if none)."""
    best = -1
    best_v = 0.0
    off, cap, cnt, keys, vals, meta = S
    o = off[i]
    for s in range(o, o + cap[i]):
        j = keys[s]
        if j < 0 or not allowed[j]:
            continue
        v = _terms(off, cap, keys, vals, size, i, j)[0]
        if v > best_v or (v == best_v and v > 0.0 and j < best):
            best = j
            best_v = v
    return best, best_v
