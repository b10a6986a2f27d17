"""Graph-degree-linkage agglomerative engine with the local-structure criterion.

:class:`MergeEngine` is what :class:`~skjule.GDLClustering` and JULE drive:

* ``start(X)`` builds the kNN graph and the initial over-clustering (weakly
  connected components of the 1-NN graph);
* ``merge_until(n)`` performs greedy eq. 7 merges until ``n`` clusters remain;
* ``rebuild(X_new)`` recomputes graph and affinities from new features while
  keeping the current clusters (JULE's backward pass);
* every merge is recorded: ``children_`` follows
  :attr:`sklearn.cluster.AgglomerativeClustering.children_` (leaves are the
  samples ``0 .. n - 1``, the ``i``-th merge creates node ``n + i``), and
  :func:`cut_hierarchy` cuts it at any number of clusters it passed through.

Memory is ``O(n * n_neighbors + n_clusters * n_cluster_neighbors)``; no
``n x n`` or ``n_clusters x n_clusters`` array exists anywhere.
"""

import warnings
from typing import NamedTuple

import numpy as np
from numba import njit
from scipy import sparse

from .._progress import progress_bar
from . import _merge_kernels as K
from . import _rows
from ._graph import initial_clusters, knn_graph, relabel_first_appearance
from ._ward import ward_merges

__all__ = ["Hierarchy", "MergeEngine", "cut_hierarchy"]


class Hierarchy(NamedTuple):
    """A merge history as data (:meth:`MergeEngine.hierarchy`)."""

    labels: np.ndarray  # (n_samples,) cluster of each sample
    children: np.ndarray  # (n_merges, 2) as AgglomerativeClustering.children_
    merge_losses: np.ndarray  # (n_merges,) eq. 7 loss of each merge
    n_clusters: int


# From the authors' code: isolated clusters (no affinity to or from any other
# cluster) are attached to the nearest centroid while n_c > 20 * K.
_ISOLATED_FACTOR = 20
# The small-cluster cut starts when this many times K clusters remain.
_SMALL_CUT_FACTOR = 10
_CHUNK = 4096
# The collapse guard finishes with Ward merges from at most this many clusters
# (its cost is O(m^2 d) time, O(m d) memory for m clusters).
_WARD_MAX_CLUSTERS = 2048


@njit(cache=True)
def _component_merges(labels, n_components, children, start_node):
    """Chain the members of each component: (m0, m1), (node, m2), ...

    Returns the node id representing each component.
    """
    n = labels.shape[0]
    node = np.full(n_components, -1, dtype=np.int64)
    r = 0
    for x in range(n):
        c = labels[x]
        if node[c] < 0:
            node[c] = x
        else:
            children[r, 0] = node[c]
            children[r, 1] = x
            node[c] = start_node + r
            r += 1
    return node


@njit(cache=True)
def _union_find_cut(children, n_samples, n_merges):
    parent = np.arange(n_samples + n_merges)
    for r in range(n_merges):
        parent[children[r, 0]] = n_samples + r
        parent[children[r, 1]] = n_samples + r
    out = np.empty(n_samples, dtype=np.int64)
    for x in range(n_samples):
        p = x
        while parent[p] != p:
            p = parent[p]
        # Path compression.
        q = x
        while parent[q] != p:
            nq = parent[q]
            parent[q] = p
            q = nq
        out[x] = p
    return out


@njit(cache=True)
def _balanced_level(children, n_samples, n_merges, max_size):
    """The most merges after which no cluster holds more than ``max_size`` samples."""
    size = np.ones(n_samples + n_merges, dtype=np.int64)
    for r in range(n_merges):
        s = size[children[r, 0]] + size[children[r, 1]]
        if s > max_size:
            return r
        size[n_samples + r] = s
    return n_merges


def cut_hierarchy(children, n_samples, n_clusters):
    """Labels after the first ``n_samples - n_clusters`` merges of ``children``.

    Parameters
    ----------
    children : array-like of shape (n_merges, 2)
        Merges in order, as in ``AgglomerativeClustering.children_``.
    n_samples : int
        Number of leaves.
    n_clusters : int
        Number of clusters wanted; at least ``n_samples - n_merges``.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        Cluster labels numbered by first appearance.
    """
    children = np.asarray(children, dtype=np.int64)
    n_merges = n_samples - int(n_clusters)
    if n_clusters < 1 or n_merges < 0:
        raise ValueError(f"n_clusters must be in [1, {n_samples}]; got {n_clusters}.")
    if n_merges > children.shape[0]:
        raise ValueError(
            f"The hierarchy stops at {n_samples - children.shape[0]} clusters; "
            f"it cannot be cut at {n_clusters}."
        )
    return relabel_first_appearance(_union_find_cut(children, n_samples, n_merges))


class MergeEngine:
    """Sparse GDL agglomerative clustering with the eq. 7 merge criterion.

    Parameters
    ----------
    n_neighbors : int, default=20
        ``Ks``, out-degree of the kNN graph.
    a : float, default=1.0
        Scale of ``sigma^2`` in eq. 4.
    n_cluster_neighbors : int, default=5
        ``Kc``, neighbour clusters in the eq. 7 criterion.
    lam : float, default=1.0
        ``lambda`` of eq. 7; 0 gives plain maximum-affinity merges.
    fast : bool, default=False
        Drop the cross terms of the affinity update, as the authors' code did.
    knn_method : {"auto", "exact", "nndescent"}, default="auto"
        Exact search by blocked matrix products, or pynndescent; ``"auto"``
        as in :class:`GDLClustering`.
    random_state : RandomState instance or None, default=None
        Seeds NN-descent (the exact search is deterministic).
    n_jobs : int or None, default=None
        Threads for NN-descent.
    verbose : bool, default=False
        Progress bars for the graph and the merges.
    collapse_guard : bool, default=True
        Check the final partition of :meth:`merge_until` for a chaining
        collapse and redo its last merges with Ward's criterion if found.
        ``False`` gives plain graph-degree linkage (for comparisons).

    Attributes
    ----------
    graph_ : KNNGraph
        The kNN graph of the last ``start`` or ``rebuild`` (``indices``,
        ``sqdist``, ``weights``, ``sigma2``); pass it back as
        ``start(X, graph=engine.graph_)`` to reuse it.
    labels_ : ndarray of shape (n_samples,)
        The current partition.
    n_clusters_ : int
        Clusters in the current partition.
    n_initial_clusters_ : int
        Clusters after ``start`` (connected components of the 1-NN graph).
    children_ : ndarray of shape (n_merged, 2)
        The merges so far, as in ``AgglomerativeClustering`` (read-only).
    merge_losses_ : ndarray of shape (n_merged,)
        The criterion's value at each merge (read-only).
    n_merged_ : int
        Merges so far.
    ward_from_ : int or None
        Number of clusters from which the collapse guard redid the last
        merges with Ward's criterion (None: it did not act).
    WORK_COUNTERS : tuple of str
        Names of the counters :meth:`work_counts` returns.
    """

    # Documented in the class docstring's Attributes.
    ward_from_ = None

    # Entries kept beyond Kc in each neighbour list (None: max(Kc, 5)); 0
    # rebuilds a list whenever a merge touches one of its entries.
    _top_buffer = None

    def __init__(
        self,
        n_neighbors=20,
        a=1.0,
        n_cluster_neighbors=5,
        lam=1.0,
        fast=False,
        knn_method="auto",
        random_state=None,
        n_jobs=None,
        verbose=False,
        collapse_guard=True,
    ):
        self.n_neighbors = n_neighbors
        self.a = a
        self.n_cluster_neighbors = n_cluster_neighbors
        self.lam = lam
        self.fast = fast
        self.knn_method = knn_method
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.collapse_guard = collapse_guard

    # ------------------------------------------------------------------ set-up
    def _graph(self, X):
        return knn_graph(
            X,
            self.n_neighbors,
            a=self.a,
            method=self.knn_method,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )

    def start(self, X, graph=None, init="1nn", min_clusters=1):
        """Build the graph of ``X`` and the initial over-clustering.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The samples (the engine keeps a reference, not a copy).
        graph : KNNGraph, optional
            A graph of ``X`` already built.
        init : {"1nn", "singletons"}
            Weakly connected components of the 1-NN graph, or every sample
            its own cluster.
        min_clusters : int, default=1
            With ``init="1nn"``: when the 1-NN graph has fewer components than
            this (a coarse start on very redundant data), start from
            singletons instead.

        Returns
        -------
        self : MergeEngine
            The engine, ready to merge.
        """
        self.X_ = X
        self.graph_ = graph if graph is not None else self._graph(X)
        n = X.shape[0]
        self.n_samples_ = n
        if init == "1nn":
            labels = initial_clusters(self.graph_.indices)
            if int(labels.max()) + 1 < min_clusters:
                labels = np.arange(n, dtype=np.int64)
        elif init == "singletons":
            labels = np.arange(n, dtype=np.int64)
        else:
            raise ValueError(f"init must be '1nn' or 'singletons'; got {init!r}.")
        m = int(labels.max()) + 1
        self._children = np.zeros((max(n - 1, 0), 2), dtype=np.int64)
        self._merge_losses = np.full(max(n - 1, 0), np.nan)
        node = _component_merges(labels, m, self._children, n)
        self._n_merged = n - m
        self._next_node = n + self._n_merged
        self.n_initial_clusters_ = m
        self.ward_from_ = None
        self._set_partition(labels, m, node)
        return self

    def _set_partition(self, labels, m, node):
        """(Re)build all per-cluster state for ``labels`` in ``[0, m)``."""
        n = labels.shape[0]
        g = self.graph_
        self._label = labels.astype(np.int64)
        self._size = np.bincount(self._label, minlength=m).astype(np.int64)
        self._alive = self._size > 0
        self._node = node.astype(np.int64)
        # Member linked lists, in sample order.
        self._head = np.full(m, -1, dtype=np.int64)
        self._tail = np.full(m, -1, dtype=np.int64)
        self._nxt = np.full(n, -1, dtype=np.int64)
        order = np.argsort(self._label, kind="stable")
        sorted_lab = self._label[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_lab)) + 1]
        ends = np.r_[starts[1:], n]
        self._head[sorted_lab[starts]] = order[starts]
        self._tail[sorted_lab[starts]] = order[ends - 1]
        same = np.ones(n, dtype=bool)
        same[ends - 1] = False
        self._nxt[order[same]] = order[np.flatnonzero(same) + 1]
        self._S = K.build_affinities(K.Graph.of(g), self._label, m)
        crit = self._criterion()
        self._top = K.make_top(m, crit.kc, self._top_buffer)
        self._loss = K.init_losses(self._S, self._partition(), self._top, crit)
        self._tree = K.tree_init(self._loss)
        self._work = K.make_work(n, m, self._top.idx.shape[1])
        self._n_alive = int(self._alive.sum())

    # The kernels' view of the state (:mod:`skjule._engine._merge_kernels`): named
    # tuples of the engine's arrays, built per call (the arrays are shared,
    # so the kernels change the engine's state in place; ``self._S`` is
    # replaced when its pool grows).
    def _criterion(self):
        return K.Criterion(int(self.n_cluster_neighbors), float(self.lam), bool(self.fast))

    def _partition(self):
        return K.Partition(self._label, self._size, self._head, self._tail, self._nxt, self._alive)

    def _kernel_state(self):
        return K.State(
            self._S,
            self._partition(),
            K.Graph.of(self.graph_),
            self._top,
            self._loss,
            self._tree,
            self._criterion(),
            self._work,
        )

    def rebuild(self, X, graph=None):
        """Recompute graph, affinities and losses for new features of the same samples.

        The clusters stay as they are; only what depends on the features
        changes (JULE calls this after each training period).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The new features, one row per sample as in :meth:`start`.
        graph : KNNGraph, optional
            A graph of ``X`` already built.

        Returns
        -------
        self : MergeEngine
            The engine, ready to merge.
        """
        self.X_ = X
        self.graph_ = graph if graph is not None else self._graph(X)
        live = np.flatnonzero(self._alive)
        remap = np.full(self._alive.shape[0], -1, dtype=np.int64)
        remap[live] = np.arange(live.size)
        self._set_partition(remap[self._label], live.size, self._node[live])
        return self

    # ------------------------------------------------------------------ state
    # state_dict key -> attribute
    _STATE = {
        "label": "_label",
        "alive": "_alive",
        "node": "_node",
        "children_": "_children",
        "merge_losses_": "_merge_losses",
        "n_merged_": "_n_merged",
        "next_node_": "_next_node",
        "n_initial_clusters_": "n_initial_clusters_",
        "n_samples_": "n_samples_",
        "n_alive": "_n_alive",
    }

    def state_dict(self):
        """The partition and merge history, as plain arrays and ints (copies).

        With :meth:`load_state_dict` and :meth:`rebuild` this is all an engine
        needs to continue: the graph and affinities are recomputed from the
        features given to ``rebuild``.

        Returns
        -------
        state : dict
            Arrays (copies) and ints keyed by name.
        """
        return {
            k: (v.copy() if isinstance(v, np.ndarray) else int(v))
            for k, attr in self._STATE.items()
            for v in [getattr(self, attr)]
        }

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` saved; call :meth:`rebuild` before merging.

        Parameters
        ----------
        state : dict
            The output of :meth:`state_dict`.

        Returns
        -------
        self : MergeEngine
            The engine with the saved partition and merge history.
        """
        missing = [k for k in self._STATE if k not in state]
        if missing:
            raise ValueError(f"engine state lacks {missing}")
        for k, attr in self._STATE.items():
            v = state[k]
            setattr(self, attr, np.array(v, copy=True) if isinstance(v, np.ndarray) else int(v))
        self._size = np.bincount(self._label, minlength=self._alive.shape[0]).astype(np.int64)
        return self

    @property
    def n_clusters_(self):
        """Number of clusters now."""
        return self._n_alive

    @property
    def n_merged_(self):
        """Number of merges recorded since the samples were singletons."""
        return self._n_merged

    @property
    def children_(self):
        """The recorded merges, shape ``(n_merged_, 2)`` (a read-only view)."""
        view = self._children[: self._n_merged]
        view.flags.writeable = False
        return view

    @property
    def merge_losses_(self):
        """The eq. 7 loss of each recorded merge (a read-only view)."""
        view = self._merge_losses[: self._n_merged]
        view.flags.writeable = False
        return view

    def hierarchy(self, n_merges=None):
        """The result as data: labels, children and losses after ``n_merges`` merges.

        Parameters
        ----------
        n_merges : int, optional
            A number of recorded merges (default: all of them).

        Returns
        -------
        Hierarchy
            Named tuple ``(labels, children, merge_losses, n_clusters)``;
            arrays are copies, ``labels`` numbered by first appearance.
        """
        r = self._n_merged if n_merges is None else int(n_merges)
        if not 0 <= r <= self._n_merged:
            raise ValueError(f"n_merges must be in [0, {self._n_merged}]; got {n_merges}.")
        n = self.n_samples_
        labels = (
            self.labels_ if r == self._n_merged else cut_hierarchy(self._children[:r], n, n - r)
        )
        return Hierarchy(labels, self._children[:r].copy(), self._merge_losses[:r].copy(), n - r)

    @property
    def labels_(self):
        """Current labels, numbered from 0 up in order of first appearance."""
        return relabel_first_appearance(self._label)

    # Described in skjule._engine._merge_kernels.WORK_COUNTERS.
    WORK_COUNTERS = K.WORK_COUNTERS

    def work_counts(self):
        """Count what the merges since the last :meth:`start` or :meth:`rebuild` read.

        For profiling how the work grows with the number of samples.

        Returns
        -------
        counts : dict of str to int
            One entry per name in :attr:`WORK_COUNTERS`.
        """
        return dict(zip(self.WORK_COUNTERS, (int(v) for v in self._work.count)))

    def affinity(self, a, b):
        """GDL affinity of the live cluster slots ``a`` and ``b``.

        Parameters
        ----------
        a, b : int
            Live cluster slots (the engine's internal cluster indices).

        Returns
        -------
        affinity : float
            The graph-degree-linkage affinity between the two clusters.
        """
        return K.affinity(self._S, self._size, a, b)

    def s_row(self, a):
        """One row of the cluster affinity table, for inspection.

        The engine keeps the table in a flat pool (:mod:`skjule._engine._rows`).

        Parameters
        ----------
        a : int
            A cluster slot.

        Returns
        -------
        row : dict of int to float
            ``{b: S(b <- a)}`` over the clusters adjacent to ``a``.
        """
        return _rows.row_dict(self._S, a)

    # ------------------------------------------------------------------ merges
    def _record(self, a, b, loss):
        r = self._n_merged
        self._children[r] = (self._node[a], self._node[b])
        self._merge_losses[r] = loss

    def _merge(self, a, b, loss):
        while True:
            kept = K.merge(a, b, self._kernel_state())
            if kept >= 0:
                break
            self._S = _rows.grow(self._S)
        self._record(a, b, loss)
        self._n_merged += 1
        self._node[kept] = self._next_node
        self._next_node += 1
        self._n_alive -= 1
        return kept

    def step(self):
        """Make one greedy eq. 7 merge.

        Returns
        -------
        merged : bool
            False when no merge was possible.
        """
        if self._n_alive <= 1:
            return False
        before = self._n_alive
        self._loop(self._n_alive - 1, max_steps=1)
        return self._n_alive < before

    def _loop(self, n_stop, large_min_size=0, n_large_stop=-1, bar=None, max_steps=_CHUNK):
        while True:
            before = self._n_alive
            status, self._n_alive, self._next_node, self._n_merged = K.merge_loop(
                self._kernel_state(),
                K.History(self._node, self._children, self._merge_losses),
                self._n_alive,
                self._next_node,
                self._n_merged,
                n_stop,
                large_min_size,
                n_large_stop,
                max_steps,
            )
            if bar is not None:
                bar.update(before - self._n_alive)
            if status == 2:
                # The pool of S is full: enlarge it and go on.
                self._S = _rows.grow(self._S)
                continue
            if status == 1:
                # No cluster has a positive affinity to any other: merge by
                # centroid distance, then try the graph again.
                isolated = np.flatnonzero(self._alive)
                self._centroid_merges(isolated, np.ones_like(self._alive), n_stop, bar)
                continue
            if self._n_alive <= n_stop or before == self._n_alive:
                return
            if n_large_stop >= 0 and self._n_large(large_min_size) <= n_large_stop:
                return

    def _n_large(self, min_size):
        return int(np.count_nonzero(self._alive & (self._size >= min_size)))

    def _centroids(self, slots):
        """Mean feature vector of each cluster slot in ``slots``."""
        pos = np.full(self._alive.shape[0], -1, dtype=np.int64)
        pos[slots] = np.arange(slots.size)
        rows = pos[self._label]
        keep = np.flatnonzero(rows >= 0)
        ind = sparse.csr_array(
            (np.ones(keep.size), (rows[keep], keep)), shape=(slots.size, self.n_samples_)
        )
        return (ind @ self.X_) / self._size[slots, None]

    def _centroid_merges(self, sources, target_mask, n_stop, bar=None):
        """Merge each cluster in ``sources`` (smallest first) into the live
        cluster with ``target_mask`` whose centroid is nearest, while more than
        ``n_stop`` clusters remain. Centroids are taken once, before merging;
        a target that has merged since is followed to its current cluster.
        """
        sources = sources[np.argsort(self._size[sources], kind="stable")]
        targets = np.flatnonzero(self._alive & target_mask)
        if targets.size == 0 or sources.size == 0:
            return
        c_src = self._centroids(sources)
        c_tgt = self._centroids(targets)
        rep = self._head[targets].copy()
        src_rep = self._head[sources].copy()
        sq_t = np.einsum("ij,ij->i", c_tgt, c_tgt)
        for s0 in range(0, sources.size, 256):
            block = slice(s0, s0 + 256)
            d = sq_t[None, :] - 2.0 * (c_src[block] @ c_tgt.T)
            d[sources[block, None] == targets[None, :]] = np.inf
            best = np.argmin(d, axis=1)
            for r, t, dt in zip(src_rep[block], best, d[np.arange(best.size), best]):
                if self._n_alive <= n_stop:
                    return
                a = self._label[r]
                b = self._label[rep[t]]
                if a == b or not np.isfinite(dt):
                    continue
                self._merge(a, b, 0.0)
                if bar is not None:
                    bar.update(1)

    def merge_isolated(self, n_stop):
        """Attach clusters with no affinity to any other to the nearest centroid.

        Parameters
        ----------
        n_stop : int
            Stop when this many clusters remain.
        """
        isolated = np.flatnonzero(self._alive & (self._top.idx[:, 0] < 0))
        if isolated.size and self._n_alive > n_stop:
            self._centroid_merges(isolated, np.ones_like(self._alive), n_stop)

    def merge_until(self, n_clusters, *, n_final=None, small_cluster_fraction=None):
        """Merge greedily until ``n_clusters`` clusters remain.

        When ``n_clusters == n_final`` the result is checked for a chaining
        collapse (one cluster with more than half the samples, or fewer than
        ``K`` clusters of the small-cluster cut's minimum size); if found, the
        last merges are redone with Ward's size-weighted criterion
        (``ward_from_`` says from which level) and a warning is given when
        even that finds no ``K`` clusters. ``collapse_guard=False`` turns the
        check off.

        Parameters
        ----------
        n_clusters : int
            Clusters left when this call returns (if fewer exist, no-op).
        n_final : int, optional
            The final number of clusters of the whole run (``K``). While more
            than ``20 K`` clusters exist, clusters with no affinity to any other
            are first attached to the nearest centroid (as in the authors'
            code). Defaults to ``n_clusters``.
        small_cluster_fraction : float or None, default=None
            Only when ``n_clusters == n_final``: the small-cluster cut. Merge
            normally down to ``10 K`` clusters; then merge only while more than
            ``K`` clusters hold at least ``small_cluster_fraction * n / K``
            samples; then attach each remaining small cluster, smallest first,
            to the large cluster of highest affinity (nearest centroid if it
            has none). Without it a few outlier pairs can survive as clusters
            of their own.

        Returns
        -------
        self : MergeEngine
            The engine after the merges.
        """
        n_clusters = int(n_clusters)
        n_final = n_clusters if n_final is None else int(n_final)
        if self._n_alive <= n_clusters:
            return self
        use_cut = (
            small_cluster_fraction is not None
            and small_cluster_fraction > 0
            and n_clusters == n_final
        )
        min_size = (
            max(2, int(np.ceil(small_cluster_fraction * self.n_samples_ / n_final)))
            if use_cut
            else 1
        )
        bar = progress_bar(total=self._n_alive - n_clusters, desc="merges", enabled=self.verbose)
        try:
            if self._n_alive > _ISOLATED_FACTOR * n_final:
                before = self._n_alive
                self.merge_isolated(max(n_clusters, _ISOLATED_FACTOR * n_final))
                bar.update(before - self._n_alive)
            if not use_cut:
                self._loop(n_clusters, bar=bar)
            else:
                self._loop(max(n_clusters, _SMALL_CUT_FACTOR * n_final), bar=bar)
                self._loop(n_clusters, large_min_size=min_size, n_large_stop=n_final, bar=bar)
                if self._n_alive > n_clusters:
                    if self._n_large(min_size) == n_final:
                        self._attach_small(min_size, bar)
                    else:
                        self._loop(n_clusters, bar=bar)
        finally:
            bar.close()
        if n_clusters == n_final:
            self._guard_collapse(n_final, min_size)
        return self

    # ------------------------------------------------------- collapse guard
    def _collapsed(self, n_final, min_size):
        """One cluster holds most of the data, or some of the K are crumbs."""
        sizes = self._size[self._alive]
        giant = n_final >= 3 and 2 * int(sizes.max()) > self.n_samples_
        return giant or int(np.count_nonzero(sizes >= min_size)) < n_final

    def _guard_collapse(self, n_final, min_size):
        """Undo a chaining collapse: finish from a balanced level with Ward merges.

        Graph-degree linkage has no size penalty: on overlapping classes one
        cluster touches every other, becomes everyone's best partner and
        absorbs them, while outliers without reciprocal edges stay as crumbs.
        When the final partition shows that (a cluster with more than half the
        samples, or fewer than K clusters of ``min_size``), the hierarchy is
        cut back to the last level at which no cluster held more than ``n / K``
        samples (at most ``_WARD_MAX_CLUSTERS`` clusters) and the remaining
        merges follow Ward's size-weighted criterion on the cluster centroids
        (:mod:`skjule._engine._ward`). ``ward_from_`` records that level.
        """
        self.ward_from_ = None
        if (
            not self.collapse_guard
            or self._n_alive != n_final
            or not self._collapsed(n_final, min_size)
        ):
            return
        n = self.n_samples_
        r = _balanced_level(self._children, n, self._n_merged, n / n_final)
        r = min(max(r, n - _WARD_MAX_CLUSTERS), n - n_final)
        self._rewind(r)
        self.ward_from_ = int(self._n_alive)
        slots = np.flatnonzero(self._alive)
        rep = self._head[slots].copy()
        for a, b, cost in ward_merges(self._centroids(slots), self._size[slots], n_final):
            self._merge(self._label[rep[a]], self._label[rep[b]], cost)
        if self._collapsed(n_final, min_size):
            sizes = np.sort(self._size[self._alive])[::-1]
            warnings.warn(
                f"Could not find {n_final} clusters of comparable size: the sizes are "
                f"{sizes.tolist()[:12]}{' ...' if sizes.size > 12 else ''}. The data may hold "
                f"fewer than {n_final} separable groups; try a smaller n_clusters, "
                "n_clusters=None, or other features.",
                UserWarning,
                stacklevel=4,
            )

    def _rewind(self, n_merges):
        """Return to the partition after the first ``n_merges`` recorded merges."""
        n = self.n_samples_
        roots = _union_find_cut(self._children, n, n_merges)
        node, labels = np.unique(roots, return_inverse=True)
        self._children[n_merges:] = 0
        self._merge_losses[n_merges:] = np.nan
        self._n_merged = int(n_merges)
        self._next_node = n + int(n_merges)
        self._set_partition(labels.astype(np.int64), node.size, node)

    def _attach_small(self, min_size, bar):
        large = self._alive & (self._size >= min_size)
        small = np.flatnonzero(self._alive & ~large)
        small = small[np.argsort(self._size[small], kind="stable")]
        no_link = []
        for s in small:
            j, v = K.best_partner(self._S, self._size, s, large)
            if j < 0:
                no_link.append(s)
                continue
            self._merge(s, j, -v)
            bar.update(1)
        if no_link:
            large = self._alive & (self._size >= min_size)
            self._centroid_merges(np.asarray(no_link), large, 0, bar)
