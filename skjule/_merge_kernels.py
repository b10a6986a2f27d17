"""Numba kernels of the graph-degree-linkage merge engine.

Notation (JULE eq. 4 and Zhang et al., ECCV 2012). For a sample ``x`` and a
cluster ``C`` not containing ``x``::

    in_C(x)  = sum_{i in C} W(i, x)      out_C(x) = sum_{i in C} W(x, i)
    P(x, C)  = in_C(x) * out_C(x)

and for two clusters ``a`` and ``b``::

    S(b <- a) = sum_{x in b} P(x, a)
    A(a, b)   = S(b <- a) / |a|^2 + S(a <- b) / |b|^2

which is the GDL affinity ``1' W[a,b] W[b,a] 1 / |a|^2 + 1' W[b,a] W[a,b] 1 / |b|^2``.
``S`` is kept sparse: ``S[a]`` is a dict ``{b: S(b <- a)}`` over the clusters
``b`` adjacent to ``a``; the key sets are kept symmetric (``b in S[a]`` iff
``a in S[b]``). Only pairs with a positive affinity are stored, so memory is
``O(n * k)``.

When ``b`` is merged into ``a`` (``c = a u b``)::

    S(c <- C) = S(a <- C) + S(b <- C)                       (additive)
    S(C <- c) = S(C <- a) + sum_{x in C adjacent to b}
                [(in_a + in_b)(out_a + out_b) - in_a out_a](x)  (exact)

The second line touches only the samples adjacent to ``b``; merging the
smaller cluster into the larger keeps the total work ``O(n k log n)`` for
bounded in-degrees. ``fast=True`` drops the cross terms
(``S(C <- c) ~ S(C <- a) + S(C <- b)``), the approximation of the authors' code.

Each live cluster keeps its eq. 7 loss and a sorted list of its most affine
neighbours (``top_idx``, ``top_val``: descending, ties to the smaller index),
``B >= Kc`` long, with a bound ``floor`` (an affinity and its index) that every
neighbour missing from the list is worse than. A merge ``a u b`` changes the
affinities of a neighbour ``c`` only towards ``a`` and ``b``, so ``c``'s list
is updated in place - drop ``a`` and ``b``, insert ``a u b`` if it beats the
floor - and is rebuilt from ``S[c]`` only when fewer than ``Kc`` entries are
known to be exact. Without the buffer every neighbour that had ``a`` or ``b``
among its ``Kc`` best was rebuilt at every merge, which made merges into a
large hub cluster cost ``O(sum of neighbour degrees)`` each. The first ``Kc``
entries are always the exact ``Kc`` best. A segment tree gives the cluster of
smallest loss in ``O(1)`` and updates in ``O(log n)``.
"""

import numpy as np
from numba import njit, types
from numba.typed import Dict, List

_KEY = types.int64
_VAL = types.float64
_DICT_TYPE = types.DictType(_KEY, _VAL)

_NJIT = dict(cache=True, nogil=True)
# Small helpers called per neighbour are inlined in numba's IR, so that the
# reference counts of the arrays and rows they take are pruned with the
# caller's (an atomic increment and decrement per argument and call otherwise).
_INLINE = dict(_NJIT, inline="always")


@njit(**_NJIT)
def _new_dict():
    return Dict.empty(key_type=_KEY, value_type=_VAL)


@njit(**_NJIT)
def build_affinities(out_idx, out_w, in_ptr, in_idx, in_w, label, n_clusters):
    """``S`` from scratch for the partition ``label`` (values in [0, n_clusters))."""
    n, k = out_idx.shape
    S = List.empty_list(_DICT_TYPE)
    for _ in range(n_clusters):
        S.append(_new_dict())
    cin = np.zeros(n_clusters)
    cout = np.zeros(n_clusters)
    cmark = np.zeros(n_clusters, dtype=np.bool_)
    max_in = 0
    for x in range(n):
        max_in = max(max_in, in_ptr[x + 1] - in_ptr[x])
    touched = np.empty(k + max_in + 1, dtype=np.int64)
    for x in range(n):
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
                Sc = S[c]
                Sc[lx] = Sc.get(lx, 0.0) + p
                Sl = S[lx]
                if c not in Sl:
                    Sl[c] = 0.0
            cin[c] = 0.0
            cout[c] = 0.0
            cmark[c] = False
    return S


@njit(**_NJIT)
def affinity(S, size, a, b):
    """GDL affinity ``A(a, b)`` (0 when the clusters are not adjacent)."""
    Sa = S[a]
    if b not in Sa:
        return 0.0
    return _terms(Sa, S[b], size, a, b)[0]


@njit(**_INLINE)
def _better(v1, i1, v2, i2):
    return v1 > v2 or (v1 == v2 and i1 < i2)


@njit(**_INLINE)
def _terms(Si, Sj, size, i, j):
    """``A(i, j) = u / |i|^2 + w`` with ``u = S[i][j]`` and ``w = S[j][i] / |j|^2``,
    given the rows ``Si = S[i]`` and ``Sj = S[j]``.

    Callers fetch each row once: every ``S[i]`` and every operation on a row
    costs an atomic reference-count increment and decrement on the row's
    memory, often a cache miss for a random row (a large share of the merge
    time under ``perf``; docs/scaling.rst)."""
    u = Si[j]
    sj = float(size[j])
    w = Sj[i] / (sj * sj)
    si = float(size[i])
    return u / (si * si) + w, u, w


@njit(**_INLINE)
def _insert_top(top, i, j, v, u, w):
    """Insert neighbour ``j`` (affinity ``v = u / |i|^2 + w``) into ``i``'s list.

    Returns the entry that no longer fits (``j`` itself when it does not beat
    the last entry of a full list), or ``j = -1``.
    """
    top_idx, top_val, top_u, top_w = top[0], top[1], top[2], top[3]
    width = top_idx.shape[1]
    pos = width
    while pos > 0:
        pj = top_idx[i, pos - 1]
        if pj >= 0 and not _better(v, j, top_val[i, pos - 1], pj):
            break
        pos -= 1
    if pos >= width:
        return j, v, u, w
    q = width - 1
    out = (top_idx[i, q], top_val[i, q], top_u[i, q], top_w[i, q])
    for q in range(width - 1, pos, -1):
        top_idx[i, q] = top_idx[i, q - 1]
        top_val[i, q] = top_val[i, q - 1]
        top_u[i, q] = top_u[i, q - 1]
        top_w[i, q] = top_w[i, q - 1]
    top_idx[i, pos] = j
    top_val[i, pos] = v
    top_u[i, pos] = u
    top_w[i, pos] = w
    return out


@njit(**_INLINE)
def _unlist(top, i, j, v, u, w):
    """Entry ``j`` is left out of ``i``'s list: raise the bounds of the missing entries."""
    if j < 0:
        return
    floor_idx, floor_val, floor_u, floor_w = top[4], top[5], top[6], top[7]
    if floor_idx[i] < 0 or _better(v, j, floor_val[i], floor_idx[i]):
        floor_idx[i] = j
        floor_val[i] = v
    floor_u[i] = max(floor_u[i], u)
    floor_w[i] = max(floor_w[i], w)


@njit(**_INLINE)
def _place(top, i, j, v, u, w):
    """Insert ``j`` if it beats the floor of ``i``, else leave it out (bounds raised)."""
    if v <= 0.0:
        return
    floor_idx = top[4]
    if floor_idx[i] < 0 or _better(v, j, top[5][i], floor_idx[i]):
        oj, ov, ou, ow = _insert_top(top, i, j, v, u, w)
        _unlist(top, i, oj, ov, ou, ow)
    else:
        _unlist(top, i, j, v, u, w)


@njit(**_INLINE)
def _clear_row(top, i):
    top[0][i, :] = -1
    top[1][i, :] = 0.0
    top[2][i, :] = 0.0
    top[3][i, :] = 0.0


@njit(**_INLINE)
def _n_listed(top_idx, i):
    n = 0
    while n < top_idx.shape[1] and top_idx[i, n] >= 0:
        n += 1
    return n


@njit(**_NJIT)
def recompute_top(S, size, i, top):
    """Rebuild the list of cluster ``i`` and its bounds from ``S``; returns
    the number of ``S`` entries read."""
    _clear_row(top, i)
    top[4][i] = -1
    top[5][i] = 0.0
    top[6][i] = 0.0
    top[7][i] = 0.0
    si = float(size[i])
    Si = S[i]
    for j, u in Si.items():
        sj = float(size[j])
        w = S[j][i] / (sj * sj)
        v = u / (si * si) + w
        if v > 0.0:
            oj, ov, ou, ow = _insert_top(top, i, j, v, u, w)
            _unlist(top, i, oj, ov, ou, ow)
    return len(Si)


@njit(**_INLINE)
def _rebuild_counted(S, size, i, top, count):
    """:func:`recompute_top`, counted in the work counters 7 and 8."""
    count[7] += 1
    count[8] += recompute_top(S, size, i, top)


@njit(**_INLINE)
def _update_top(S, Sa, size, c, a, b, top, kc, may_rise, count):
    """``a`` and ``b`` were merged into slot ``a``: update ``c``'s list in place.

    Exact: the affinities of ``c`` to clusters other than ``a`` and ``b`` did
    not change. ``may_rise`` is False when ``A(c, a u b) <= A(c, a)`` is known
    (no ``S`` entry between ``c`` and ``a`` grew): then a list holding neither
    ``a`` nor ``b`` stays as it is. Rebuilds from ``S[c]`` when fewer than
    ``kc`` entries are certain. ``Sa`` is ``S[a]``. Returns whether the
    list may have changed.
    """
    top_idx = top[0]
    width = top_idx.shape[1]
    if not may_rise:
        listed = False
        for q in range(width):
            t = top_idx[c, q]
            if t < 0:
                break
            if t == a or t == b:
                listed = True
                break
        if not listed:
            return False
    # Drop a and b, keeping the list packed.
    n = 0
    for q in range(width):
        t = top_idx[c, q]
        if t < 0:
            break
        if t == a or t == b:
            continue
        top_idx[c, n] = t
        top[1][c, n] = top[1][c, q]
        top[2][c, n] = top[2][c, q]
        top[3][c, n] = top[3][c, q]
        n += 1
    for q in range(n, width):
        top_idx[c, q] = -1
        top[1][c, q] = 0.0
    v, u, w = _terms(S[c], Sa, size, c, a)
    _place(top, c, a, v, u, w)
    if _n_listed(top_idx, c) < kc and top[4][c] >= 0:
        _rebuild_counted(S, size, c, top, count)
    return True


@njit(**_NJIT)
def _regrow_top(S, size, a, b, top, kc, flagged, n_flagged, old, count):
    """``a`` absorbed ``b``: update ``a``'s own list without reading all of ``S[a]``.

    ``A(a, j) = S[a][j] / |a|^2 + S[j][a] / |j|^2``. For a neighbour ``j``
    whose ``S`` entries with ``a`` did not grow (not in ``flagged``), only
    ``|a|`` changed, so every missing one is at most
    ``floor_u / |a|^2 + floor_w`` (the largest ``u`` and ``w`` among them) and
    at most its old value. The old entries and the flagged neighbours are
    re-evaluated; the list is rebuilt from ``S[a]`` only when fewer than
    ``kc`` entries are certain.
    """
    top_idx = top[0]
    width = top_idx.shape[1]
    floor_idx = top[4]
    if floor_idx[a] >= 0:
        sa = float(size[a])
        bound = top[6][a] / (sa * sa) + top[7][a]
        if bound < top[5][a]:
            # A strict bound: index 0 never beats a real slot on ties.
            top[5][a] = bound
            floor_idx[a] = 0
    for q in range(width):
        old[q] = top_idx[a, q]
    _clear_row(top, a)
    Sa = S[a]
    for q in range(width):
        j = old[q]
        if j < 0:
            break
        if j == b:
            continue
        v, u, w = _terms(Sa, S[j], size, a, j)
        _place(top, a, j, v, u, w)
    for r in range(n_flagged):
        j = flagged[r]
        seen = False
        for q in range(width):
            if old[q] == j:
                seen = True
                break
        if seen:
            continue
        v, u, w = _terms(Sa, S[j], size, a, j)
        _place(top, a, j, v, u, w)
    if _n_listed(top_idx, a) < kc and floor_idx[a] >= 0:
        _rebuild_counted(S, size, a, top, count)


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


@njit(**_INLINE)
def tree_update(tree, loss, i):
    p = (tree.shape[0] // 2 + i) // 2
    while p >= 1:
        tree[p] = _tree_pick(loss, tree[2 * p], tree[2 * p + 1])
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
def merge(a, b, S, size, label, head, tail, nxt, alive,
          out_idx, out_w, in_ptr, in_idx, in_w,
          top, kc, loss, tree, lam,
          work, fast):
    """Merge clusters ``a`` and ``b``; the larger keeps its slot, which is returned."""
    if size[b] > size[a] or (size[b] == size[a] and b < a):
        a, b = b, a
    k = out_idx.shape[1]
    in_acc, out_acc, smark, touched, gain, cmark, gtouched, old, count = work
    count[0] += 1
    # The two rows are fetched once: see _terms.
    Sa = S[a]
    Sb = S[b]

    if not fast:
        # in_b / out_b of every sample adjacent to b, outside a and b.
        nt = 0
        x = head[b]
        while x >= 0:
            count[1] += k + in_ptr[x + 1] - in_ptr[x]
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
        # Change of P(y, .) from a to a u b, summed per cluster of y:
        # (ia + ib)(oa + ob) - ia oa = ib ob + ia ob + ib oa, so y's in-edges
        # (which can be thousands for a hub sample) are read only when y
        # points to b, and its out-edges only when b points to y.
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
                count[2] += in_ptr[y + 1] - in_ptr[y]
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
                    gtouched[ng] = c
                    ng += 1
                gain[c] += delta
        for t in range(ng):
            c = gtouched[t]
            Sa[c] = Sa.get(c, 0.0) + gain[c]
            Sc = S[c]
            if a not in Sc:
                Sc[a] = 0.0
            gain[c] = 0.0
    else:
        ng = 0
        for c, v in Sb.items():
            if c == a:
                continue
            Sa[c] = Sa.get(c, 0.0) + v
            Sc = S[c]
            if a not in Sc:
                Sc[a] = 0.0

    # S(c <- C) = S(a <- C) + S(b <- C), and b disappears from every dict.
    # cmark flags the clusters whose S entries with a grew (gtouched lists them).
    count[6] += len(Sb)
    for c in Sb:
        if c == a:
            continue
        if not cmark[c]:
            cmark[c] = True
            gtouched[ng] = c
            ng += 1
        Sc = S[c]
        v = Sc.pop(b)
        Sc[a] = Sc.get(a, 0.0) + v
        if c not in Sa:
            Sa[c] = 0.0
    if b in Sa:
        Sa.pop(b)
    S[b] = _new_dict()

    # Members of b join a.
    join_members(b, a, label, head, tail, nxt)
    head[b] = -1
    tail[b] = -1
    size[a] += size[b]
    size[b] = 0
    alive[b] = False

    # Losses: b leaves, a's list is regrown, a's neighbours are updated.
    top_val = top[1]
    loss[b] = np.inf
    _clear_row(top, b)
    top[4][b] = -1
    tree_update(tree, loss, b)
    _regrow_top(S, size, a, b, top, kc, gtouched, ng, old, count)
    loss[a] = loss_of(top_val, a, lam, kc)
    tree_update(tree, loss, a)
    count[3] += len(Sa)
    count[5] += ng
    for c in Sa:
        if _update_top(S, Sa, size, c, a, b, top, kc, cmark[c], count):
            count[4] += 1
            new_loss = loss_of(top_val, c, lam, kc)
            if new_loss != loss[c]:
                loss[c] = new_loss
                tree_update(tree, loss, c)
    for t in range(ng):
        cmark[gtouched[t]] = False
    return a


def make_work(n_samples, n_slots, width):
    """Scratch arrays for :func:`merge` (all zero / False between calls);
    ``width`` is the width of the neighbour lists. The last array counts the
    work done (see ``MergeEngine.work_counts``)."""
    return (
        np.zeros(n_samples),
        np.zeros(n_samples),
        np.zeros(n_samples, dtype=np.bool_),
        np.empty(n_samples, dtype=np.int64),
        np.zeros(n_slots),
        np.zeros(n_slots, dtype=np.bool_),
        np.empty(n_slots, dtype=np.int64),
        np.empty(width, dtype=np.int64),
        np.zeros(9, dtype=np.int64),
    )


def make_top(n_slots, kc, buffer=None):
    """Empty neighbour lists, ``kc + buffer`` wide (``buffer=None``: ``max(kc, 5)``).

    A tuple ``(idx, val, u, w, floor_idx, floor_val, floor_u, floor_w)``:
    per slot the sorted entries (neighbour, affinity and its two terms) and
    the bounds of the entries left out (``floor_idx = -1``: none left out).
    """
    width = kc + (max(kc, 5) if buffer is None else int(buffer))
    return (
        np.full((n_slots, width), -1, dtype=np.int64),
        np.zeros((n_slots, width)),
        np.zeros((n_slots, width)),
        np.zeros((n_slots, width)),
        np.full(n_slots, -1, dtype=np.int64),
        np.zeros(n_slots),
        np.zeros(n_slots),
        np.zeros(n_slots),
    )


@njit(**_NJIT)
def init_losses(S, size, alive, top, lam, kc):
    m = size.shape[0]
    loss = np.full(m, np.inf)
    for i in range(m):
        if alive[i]:
            recompute_top(S, size, i, top)
            loss[i] = loss_of(top[1], i, lam, kc)
    return loss


@njit(**_NJIT)
def merge_loop(n_stop, large_min_size, n_large_stop, max_steps,
               S, size, label, head, tail, nxt, alive,
               out_idx, out_w, in_ptr, in_idx, in_w,
               top, kc, loss, tree, lam,
               work, fast,
               n_alive, node, next_node, children, merge_loss, n_merged):
    """Greedy eq. 7 merges while more than ``n_stop`` clusters are alive.

    Also stops once at most ``n_large_stop`` clusters hold ``large_min_size``
    samples or more (``n_large_stop < 0`` disables that), after ``max_steps``
    merges, or when no cluster has a positive affinity to any other
    (returned status 1: the caller then falls back to centroids).

    Returns
    -------
    status, n_alive, next_node, n_merged
    """
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
        j = top[0][i, 0]
        if loss[i] >= 0.0 or j < 0:
            return 1, n_alive, next_node, n_merged
        was = 0
        if n_large_stop >= 0:
            if size[i] >= large_min_size:
                was += 1
            if size[j] >= large_min_size:
                was += 1
        children[n_merged, 0] = node[i]
        children[n_merged, 1] = node[j]
        merge_loss[n_merged] = loss[i]
        n_merged += 1
        kept = merge(i, j, S, size, label, head, tail, nxt, alive,
                     out_idx, out_w, in_ptr, in_idx, in_w,
                     top, kc, loss, tree, lam,
                     work, fast)
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
    Si = S[i]
    for j in Si:
        if not allowed[j]:
            continue
        v = _terms(Si, S[j], size, i, j)[0]
        if v > best_v or (v == best_v and v > 0.0 and j < best):
            best = j
            best_v = v
    return best, best_v
