"""GDLClustering: agglomerative clustering with graph-degree linkage (AC-GDL)."""

from numbers import Integral, Real

from sklearn.base import BaseEstimator, ClusterMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._validation import (
    check_features,
    check_n_clusters,
    check_threshold_params,
    fit_guard,
    l2_normalize,
    resolve_n_neighbors,
    warn_if_few_distinct,
)
from ._graph import knn_vote, relabel_first_appearance
from ._locality import inverse_permutation, locality_order
from ._merge import MergeEngine
from ._nclusters import choose_n_clusters

__all__ = ["GDLClustering"]

# With sample_order="auto", from this many samples on the fit runs on the
# samples in the leaf order of a random-projection tree (``_locality``), for
# cache locality, and maps its results back to the given order.
_LOCALITY_MIN_SAMPLES = 50_000


class GDLClustering(ClusterMixin, BaseEstimator):
    """Agglomerative clustering with graph-degree linkage on fixed features.

    The forward pass of JULE without the network: a directed kNN graph with
    Gaussian edge weights (JULE eq. 4), an initial over-clustering from the
    1-NN graph, and greedy merges of the cluster pair that minimises the
    local-structure criterion (JULE eq. 7) on the graph-degree-linkage
    affinity of Zhang et al. (ECCV 2012). The affinity graph is sparse and
    updated exactly after each merge, so memory grows as
    ``n_samples * n_neighbors``, never ``n_samples ** 2``.

    Parameters
    ----------
    n_clusters : int or None, default=10
        Number of clusters to find. ``None`` chooses it from the merge
        history: at ``distance_threshold`` when one is given, otherwise by
        the automatic rule (the most modular cut of the hierarchy on the kNN
        graph, fragments under a quarter of the mean cluster size not
        counted, one cluster when the data are no more clustered than a
        Gaussian); see the documentation page "Unknown number of clusters".
        The fit then costs a few times a fit with known K.
    distance_threshold : float or None, default=None
        With ``n_clusters=None``: merging stops at the first merge whose
        eq. 7 loss (see ``merge_losses_``, always <= 0; closer to 0 is a
        weaker merge) is at or above this value. Merges are greedy, smallest
        loss first, so no pair of the remaining clusters merges more strongly.
        No small-cluster cut is applied. Read ``merge_losses_`` of a fit to
        choose it.
    n_neighbors : int or "auto", default="auto"
        ``Ks``: out-degree of the kNN graph. ``"auto"`` takes
        ``n_samples / n_clusters / 7`` clipped to [10, 20] (the paper's 20 from
        140 samples per cluster on), which keeps the neighbourhoods inside
        clusters of a few dozen samples. With a fixed 20, neighbourhoods in
        such small clusters (COIL-20 or UMist have a few dozen images per
        class) reach into other clusters and pull them together; on large
        clusters ``"auto"`` is the paper's 20. Below 10 the graph gets too
        sparse to hold a cluster together, hence the floor. Give an int to
        reproduce a published setting or when the clusters are much smaller
        or larger than ``n_samples / n_clusters``. With ``n_clusters=None``
        the K of a first pass with ``Ks = 20`` stands in for ``n_clusters``.
    a : float, default=1.0
        ``sigma^2 = a * mean squared neighbour distance`` in eq. 4.
    n_cluster_neighbors : int, default=5
        ``Kc``: neighbouring clusters considered by the eq. 7 criterion.
    lam : float, default=1.0
        ``lambda`` of eq. 7 (weight of the local-structure term); 0 gives
        plain maximum-affinity merging.
    small_cluster_fraction : float or None, default=0.05
        The final cut. From ``10 * n_clusters`` clusters on, merging continues
        only while more than ``n_clusters`` clusters hold at least
        ``small_cluster_fraction * n_samples / n_clusters`` samples; each
        remaining smaller cluster is then attached to the large cluster it has
        the highest affinity with. This stops pairs of outliers from ending up
        as clusters of their own. ``None`` (or 0) merges greedily to the end.
    normalize : bool, default=True
        Scale every (flattened) sample to unit L2 norm first, as the paper does.
    knn_method : {"auto", "exact", "nndescent"}, default="auto"
        Exact search by blocked matrix products, or pynndescent.
        ``"auto"`` picks exact search when ``2 * n^2 * d <= 4e11``.
    affinity_update : {"exact", "fast"}, default="exact"
        ``"fast"`` is the authors' approximation that drops the cross terms of
        the affinity update after a merge.
    sample_order : {"auto", "locality", "given"}, default="auto"
        The order in which ``fit`` holds the samples. ``"locality"``: the leaf
        order of a random-projection tree, which keeps graph neighbours close
        in memory (faster from about 50,000 samples on; one more copy of
        ``X`` during ``fit``). ``"given"``: as passed. ``"auto"``:
        ``"locality"`` from 50,000 samples on. The clustering is the same
        either way (up to ties and NN-descent's randomness); ``labels_`` and
        ``children_`` always refer to the given order.
    random_state : int, RandomState instance or None, default=None
        Seeds NN-descent and the locality order (the exact search is
        deterministic).
    n_jobs : int or None, default=None
        Threads for NN-descent.
    verbose : int, default=0
        Progress bars when > 0.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster labels ``0 .. n_clusters_ - 1``.
    n_clusters_ : int
        Number of clusters found (the choice, with ``n_clusters=None``).
    modularity_ : ndarray of shape (n_initial_clusters,)
        Only with ``n_clusters=None``: ``modularity_[k - 1]`` is the
        modularity of the full hierarchy's cut at ``k`` clusters (NaN where
        the hierarchy has no such cut). Plot it to see how clear the choice is.
    cut_ratio_ : float
        Only with ``n_clusters=None`` and no threshold: the median over three
        random subsets of 2,000 samples (the data themselves when smaller) of
        the share of kNN-graph weight between the clusters of
        the most modular cut, divided by the share the same cut of a Gaussian
        with the data's mean and covariance severs (the Gaussian projected
        onto the unit sphere when ``normalize``). Below 0.6 the data are
        taken to have clusters; otherwise ``n_clusters_`` is 1 (with a
        warning).
    children_ : ndarray of shape (n_merges, 2)
        The merges in order, as in
        :attr:`sklearn.cluster.AgglomerativeClustering.children_`: values
        below ``n_samples`` are samples, value ``n_samples + i`` is the
        cluster formed by row ``i``. The first ``n_samples -
        n_initial_clusters_`` rows build the initial 1-NN over-clustering.
        Cut it with :func:`skjule.cut_hierarchy`.
    merge_losses_ : ndarray of shape (n_merges,)
        The eq. 7 loss of each merge (negative; larger means a weaker merge).
        NaN for the initial 1-NN links, 0 for merges by centroid distance
        (clusters with no affinity to any other), minus the affinity for
        attachments of the small-cluster cut.
    n_initial_clusters_ : int
        Clusters of the initial over-clustering.
    n_leaves_ : int
        Number of samples.
    sigma2_ : float
        ``sigma^2`` of eq. 4 on the fitted data.
    n_neighbors_ : int
        ``Ks`` used (resolves ``"auto"``; at most ``n_samples - 1``).
    n_features_in_ : int
        Number of features (pixels) per sample seen in ``fit``.
    ward_from_ : int or None
        ``None`` normally. When graph-degree linkage chained into one cluster
        holding more than half the samples (or left fewer than ``n_clusters``
        clusters of the small-cluster cut's size), the last merges were
        redone from this many clusters with Ward's size-weighted criterion on
        the cluster centroids; a warning says so if even that failed.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during ``fit``. Defined only when ``X``
        has feature names that are all strings (a pandas DataFrame, for
        example); ``predict`` then checks that it gets the same columns in
        the same order.

    See Also
    --------
    sklearn.cluster.AgglomerativeClustering : Ward/average/complete linkage.
    JULEClustering : The same engine with a jointly trained network.

    Notes
    -----
    :meth:`predict` needs the training samples: the fitted estimator keeps
    one (normalised) copy of them, ``n_samples * n_features`` values.

    From 50,000 samples on (``sample_order="auto"``), ``fit`` works on the
    samples in the leaf order of a random-projection tree, which keeps graph
    neighbours close in memory, and maps ``labels_`` and ``children_`` back
    to the given order. The clustering is the same as in the given order (up
    to ties and pynndescent's randomness); only the time changes (see
    ``docs/scaling.rst``). It costs one more copy of ``X`` during ``fit``.

    References
    ----------
    W. Zhang, X. Wang, D. Zhao, X. Tang. Graph degree linkage: agglomerative
    clustering on a directed graph. ECCV 2012.
    J. Yang, D. Parikh, D. Batra. Joint unsupervised learning of deep
    representations and image clusters. CVPR 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skjule import GDLClustering
    >>> X, y = load_digits(return_X_y=True)
    >>> gdl = GDLClustering(n_clusters=10).fit(X)
    >>> gdl.labels_.shape
    (1797,)
    >>> gdl.n_clusters_
    10
    >>> gdl.predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "distance_threshold": [Real, None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "a": [Interval(Real, 0, None, closed="neither")],
        "n_cluster_neighbors": [Interval(Integral, 1, None, closed="left")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "small_cluster_fraction": [Interval(Real, 0, 1, closed="both"), None],
        "normalize": ["boolean"],
        "knn_method": [StrOptions({"auto", "exact", "nndescent"})],
        "affinity_update": [StrOptions({"exact", "fast"})],
        "sample_order": [StrOptions({"auto", "locality", "given"})],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_clusters=10,
        *,
        distance_threshold=None,
        n_neighbors="auto",
        a=1.0,
        n_cluster_neighbors=5,
        lam=1.0,
        small_cluster_fraction=0.05,
        normalize=True,
        knn_method="auto",
        affinity_update="exact",
        sample_order="auto",
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.distance_threshold = distance_threshold
        self.n_neighbors = n_neighbors
        self.a = a
        self.n_cluster_neighbors = n_cluster_neighbors
        self.lam = lam
        self.small_cluster_fraction = small_cluster_fraction
        self.normalize = normalize
        self.knn_method = knn_method
        self.affinity_update = affinity_update
        self.sample_order = sample_order
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Cluster ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, H, W) or (n_samples, H, W, C)
            Samples; images are flattened.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : GDLClustering
            The fitted estimator.
        """
        with fit_guard(self):
            return self._fit(X)

    def _fit(self, X):
        X, _ = check_features(self, X, reset=True, min_samples=2)
        n = X.shape[0]
        check_threshold_params(self.n_clusters, self.distance_threshold)
        k = None if self.n_clusters is None else check_n_clusters(self.n_clusters, n)
        if self.normalize:
            X = l2_normalize(X)
        warn_if_few_distinct(X, k)
        X_given, order = X, None
        if self.sample_order == "locality" or (
            self.sample_order == "auto" and n >= _LOCALITY_MIN_SAMPLES
        ):
            order = locality_order(X, check_random_state(self.random_state))
            X = X[order]
        choice = None
        if k is None:
            choice = choose_n_clusters(
                self._engine,
                X,
                self.n_neighbors,
                distance_threshold=self.distance_threshold,
                rng=check_random_state(self.random_state),
                on_sphere=self.normalize,
            )
            k = choice.n_clusters
            ks = choice.n_neighbors
        else:
            ks = resolve_n_neighbors(self.n_neighbors, n, k)
        if choice is not None and choice.cut is not None:
            engine = choice.engine  # the threshold cut of the full hierarchy
        else:
            engine = self._engine(ks)
            engine.start(X, graph=None if choice is None else choice.engine.graph_, min_clusters=k)
            engine.merge_until(k, small_cluster_fraction=self.small_cluster_fraction)
        self._store(engine, n_merges=None if choice is None else choice.cut)
        if order is not None:
            self._restore_order(order)
        if choice is not None:
            self.modularity_ = choice.modularity
            if choice.cut is None:
                self.cut_ratio_ = choice.cut_ratio
        self._fit_X = X_given
        return self

    def _restore_order(self, order):
        """Map ``labels_`` and the leaves of ``children_`` from the fit's sample
        order (``X[order]``) back to the given one."""
        self.labels_ = relabel_first_appearance(self.labels_[inverse_permutation(order)])
        leaf = self.children_ < self.n_leaves_
        self.children_[leaf] = order[self.children_[leaf]]

    def predict(self, X):
        """Cluster of each sample of ``X`` from its nearest training samples.

        Each sample (flattened, L2-normalised when ``normalize``) takes the
        label with the largest sum of eq. 4 weights ``exp(-d^2 / sigma2_)``
        over its ``n_neighbors_`` nearest training samples (exact search).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples with the training data's number of features.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster index of each sample, as in ``labels_``.
        """
        check_is_fitted(self, "labels_")
        X, _ = check_features(self, X, reset=False, min_samples=1)
        if self.normalize:
            X = l2_normalize(X)
        return knn_vote(
            X, self._fit_X, self.labels_, self.n_clusters_, self.n_neighbors_, self.sigma2_
        )

    def _engine(self, n_neighbors):
        return MergeEngine(
            n_neighbors=n_neighbors,
            a=self.a,
            n_cluster_neighbors=self.n_cluster_neighbors,
            lam=self.lam,
            fast=self.affinity_update == "fast",
            knn_method=self.knn_method,
            random_state=check_random_state(self.random_state),
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )

    def _store(self, engine, n_merges=None):
        result = engine.hierarchy(n_merges)
        self.labels_ = result.labels
        self.n_clusters_ = result.n_clusters
        self.children_ = result.children
        self.merge_losses_ = result.merge_losses
        self.n_initial_clusters_ = engine.n_initial_clusters_
        self.n_leaves_ = engine.n_samples_
        self.sigma2_ = engine.graph_.sigma2
        self.n_neighbors_ = engine.graph_.n_neighbors
        self.ward_from_ = engine.ward_from_

    def fit_predict(self, X, y=None):
        """Fit and return the cluster labels of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster labels.
        """
        return super().fit_predict(X, y)
