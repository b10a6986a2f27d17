"""The agglomerative engine: numpy, numba and pynndescent only, never torch.

Where things are:

- ``_graph``: the kNN graph (pynndescent or exact), its affinities and the
  initial clusters (connected components of the 1-NN graph).
- ``_rows``: the flat pool of sparse cluster-to-cluster affinity rows.
- ``_merge_kernels``: the numba kernels of one merge, in named steps over
  named-tuple state (``Rows``, ``Graph``, ``Partition``, ``TopLists``, ...).
- ``_merge``: :class:`MergeEngine` (the hierarchy as data) and
  :func:`cut_hierarchy`; ``_ward``: the Ward fallback of the collapse guard.
- ``_locality``: the locality order that keeps rows cache-friendly at scale.
- ``_nclusters``: choosing K from the hierarchy (``n_clusters=None``).
- ``_gdl``: :class:`GDLClustering`, the estimator on top.
"""
