"""Sparse rows in one flat pool: a small hash table per row, numba kernels.

The merge engine keeps, for every cluster ``i``, the map ``{j: S(j <- i)}``
over its neighbouring clusters (see :mod:`skjule._engine._merge_kernels`). It used to
be a numba typed ``Dict`` per cluster; every lookup then went through the
dict's C runtime and atomic reference counts on the dict. Here all rows live in
two flat arrays (int32 keys,
float64 values: 12 bytes a slot), held by the named tuple
:class:`Rows` ``R = Rows(off, cap, cnt, keys, vals, meta)``:

* row ``i`` is an open-addressing table (linear probing, backward-shift
  deletion, so no tombstones) of ``cap[i]`` slots (a power of two, or 0) at
  ``keys[off[i]:off[i] + cap[i]]`` / ``vals[...]``, holding ``cnt[i]`` keys,
  at most half full; an empty slot has key ``-1``;
* ``meta[END]`` is the end of the used part of the pool, ``meta[ASKED]`` the
  space a failed :func:`room` asked for.

A row that must grow moves to the end of the pool (its old slots become a
hole); :func:`room` compacts the pool in place when the end is reached, and
says so when even that is not enough - the caller then returns to Python,
which enlarges the arrays (:func:`grow`) and calls again. Keys are ints >= 0.
Iteration is over slots: ``for s in range(off[i], off[i] + cap[i])`` with
``keys[s] >= 0``.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

_NJIT = dict(cache=True, nogil=True)
_INLINE = dict(_NJIT, inline="always")

_MIN_CAP = 4
# Keys are row numbers (clusters): 32 bits, 12 bytes a slot with the value.
KEY_DTYPE = np.int32
# What ``Rows.meta`` holds.
END = 0  # end of the used part of the pool
ASKED = 1  # pool slots a failed :func:`room` asked for


class Rows(NamedTuple):
    """The pool (numba takes it as a tuple; attribute access compiles to
    tuple indexing). The arrays are changed in place; :func:`grow` returns a
    new ``Rows`` with larger ``keys`` / ``vals``."""

    off: np.ndarray  # (n_rows,) int64: first pool slot of each row
    cap: np.ndarray  # (n_rows,) int64: slots of each row (a power of two, or 0)
    cnt: np.ndarray  # (n_rows,) int64: keys in each row
    keys: np.ndarray  # (pool,) KEY_DTYPE: the key of each slot, -1 if empty
    vals: np.ndarray  # (pool,) float64: the value of each slot
    meta: np.ndarray  # (2,) int64: meta[END], meta[ASKED]


@njit(**_INLINE)
def cap_for(n):
    """Slots for ``n`` keys at most half full (0 for 0 keys)."""
    if n <= 0:
        return 0
    c = _MIN_CAP
    while c < 2 * n:
        c *= 2
    return c


@njit(**_INLINE)
def _home(key, cap):
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64(h >> np.uint64(32)) & (cap - 1)


# The per-key kernels take the arrays, not the tuple: every item taken from
# a tuple is an atomic reference-count increment and decrement, which inside
# a loop costs more than the lookup. Callers unpack
# ``off, cap, cnt, keys, vals, meta = S`` (or take ``S.keys``) once,
# outside their loops.
@njit(**_INLINE)
def find(off, cap, keys, i, key):
    """Pool slot of ``key`` in row ``i``, or -1."""
    c = cap[i]
    if c == 0:
        return -1
    o = off[i]
    mask = c - 1
    s = _home(key, c)
    while True:
        k = keys[o + s]
        if k == key:
            return o + s
        if k < 0:
            return -1
        s = (s + 1) & mask


@njit(**_INLINE)
def get(off, cap, keys, vals, i, key):
    """``row_i[key]``, 0.0 when absent."""
    s = find(off, cap, keys, i, key)
    if s < 0:
        return 0.0
    return vals[s]


@njit(**_INLINE)
def _insert_new(keys, vals, o, c, key, v):
    mask = c - 1
    s = _home(key, c)
    while keys[o + s] >= 0:
        s = (s + 1) & mask
    keys[o + s] = key
    vals[o + s] = v


@njit(**_INLINE)
def add(off, cap, cnt, keys, vals, i, key, v):
    """``row_i[key] += v``, inserting ``key`` (at ``v``) when absent.

    The row must have room (:func:`ensure`)."""
    s = find(off, cap, keys, i, key)
    if s >= 0:
        vals[s] += v
        return
    _insert_new(keys, vals, off[i], cap[i], key, v)
    cnt[i] += 1


@njit(**_INLINE)
def pop(off, cap, cnt, keys, vals, i, key):
    """Remove ``key`` from row ``i``; returns its value (0.0 when absent)."""
    s = find(off, cap, keys, i, key)
    if s < 0:
        return 0.0
    o = off[i]
    c = cap[i]
    mask = c - 1
    out = vals[s]
    hole = s - o
    j = hole
    while True:
        j = (j + 1) & mask
        k = keys[o + j]
        if k < 0:
            break
        h = _home(k, c)
        # The entry at j may fill the hole unless its home lies cyclically in (hole, j].
        if hole <= j:
            stays = hole < h and h <= j
        else:
            stays = h > hole or h <= j
        if not stays:
            keys[o + hole] = k
            vals[o + hole] = vals[o + j]
            hole = j
    keys[o + hole] = -1
    vals[o + hole] = 0.0
    cnt[i] -= 1
    return out


@njit(**_INLINE)
def need(cap, cnt, i, extra):
    """Pool slots that :func:`ensure` ``(S, i, extra)`` would take (0: fits)."""
    n = cnt[i] + extra
    if 2 * n <= cap[i]:
        return 0
    return cap_for(2 * n)


@njit(**_NJIT)
def ensure(R, i, extra):
    """Make room in row ``i`` for ``extra`` more keys, moving it to the end of
    the pool when it is too small (twice the room needed, so a row that keeps
    growing moves O(log size) times). The space must have been checked with
    :func:`room`."""
    off, cap, cnt, keys, vals, meta = R
    c_new = need(cap, cnt, i, extra)
    if c_new == 0:
        return
    o_new = meta[END]
    meta[END] = o_new + c_new
    o = off[i]
    for s in range(o, o + cap[i]):
        k = keys[s]
        if k >= 0:
            _insert_new(keys, vals, o_new, c_new, k, vals[s])
            keys[s] = -1
            vals[s] = 0.0
    off[i] = o_new
    cap[i] = c_new


@njit(**_NJIT)
def release(R, i):
    """Empty row ``i`` and give up its slots (a hole until the next compaction)."""
    off, cap, cnt, keys, vals, meta = R
    o = off[i]
    keys[o : o + cap[i]] = -1
    vals[o : o + cap[i]] = 0.0
    cap[i] = 0
    cnt[i] = 0


@njit(**_NJIT)
def compact(R):
    """Close the holes: rows move down in pool order; a row more than 8x
    too large shrinks to :func:`cap_for` its count."""
    off, cap, cnt, keys, vals, meta = R
    rows = np.flatnonzero(cap > 0)
    order = rows[np.argsort(off[rows], kind="mergesort")]
    pos = 0
    for i in order:
        o = off[i]
        c = cap[i]
        c_new = cap_for(cnt[i])
        if c_new * 8 <= c and c_new > 0:
            tk = np.empty(cnt[i], dtype=keys.dtype)
            tv = np.empty(cnt[i])
            t = 0
            for s in range(o, o + c):
                if keys[s] >= 0:
                    tk[t] = keys[s]
                    tv[t] = vals[s]
                    t += 1
            keys[pos : pos + c_new] = -1
            vals[pos : pos + c_new] = 0.0
            for t in range(tk.shape[0]):
                _insert_new(keys, vals, pos, c_new, tk[t], tv[t])
            c = c_new
        elif pos != o:
            for s in range(c):  # pos < o: a forward copy is safe
                keys[pos + s] = keys[o + s]
                vals[pos + s] = vals[o + s]
        off[i] = pos
        cap[i] = c
        pos += c
    keys[pos : meta[END]] = -1
    vals[pos : meta[END]] = 0.0
    meta[END] = pos


@njit(**_NJIT)
def room(R, n_slots):
    """Whether ``n_slots`` free slots are at the end of the pool, compacting
    it if needed; when not, ``meta[ASKED]`` records the request."""
    keys, meta = R.keys, R.meta
    if meta[END] + n_slots <= keys.shape[0]:
        return True
    compact(R)
    if meta[END] + n_slots <= keys.shape[0]:
        return True
    meta[ASKED] = n_slots
    return False


def empty(n_rows, caps, slack=0.25, spare=1024):
    """Rows with the given capacities (powers of two or 0), laid out in
    order, in a pool ``1 + slack`` times their total plus ``spare`` slots."""
    caps = np.asarray(caps, dtype=np.int64)
    off = np.zeros(n_rows, dtype=np.int64)
    np.cumsum(caps[:-1], out=off[1:])
    used = int(caps.sum())
    size = used + int(slack * used) + spare
    meta = np.zeros(2, dtype=np.int64)
    meta[END] = used
    return Rows(
        off,
        caps.copy(),
        np.zeros(n_rows, dtype=np.int64),
        np.full(size, -1, dtype=KEY_DTYPE),
        np.zeros(size),
        meta,
    )


def grow(R):
    """A copy of ``R`` in a pool large enough for the request that failed."""
    keys, vals, meta = R.keys, R.vals, R.meta
    size = max(2 * keys.shape[0], int(meta[END] + meta[ASKED]) + 1024)
    k2 = np.full(size, -1, dtype=KEY_DTYPE)
    v2 = np.zeros(size)
    k2[: keys.shape[0]] = keys
    v2[: vals.shape[0]] = vals
    meta2 = np.zeros(2, dtype=np.int64)
    meta2[END] = meta[END]
    return R._replace(keys=k2, vals=v2, meta=meta2)


def row_dict(R, i):
    """Row ``i`` as a Python dict (for tests and inspection)."""
    o, c = int(R.off[i]), int(R.cap[i])
    k = R.keys[o : o + c]
    sel = k >= 0
    return dict(zip(k[sel].tolist(), R.vals[o : o + c][sel].tolist()))
