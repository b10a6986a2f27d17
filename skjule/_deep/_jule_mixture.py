"""JULEMixture: JULE whose clustering step ends in a Gaussian mixture.

The recurrent loop of :class:`JULEClustering` (train the CNN on the current
partition, re-embed, merge with graph-degree linkage) takes the initial
over-clustering down to K; the final partition then initialises a Gaussian
mixture on the learned embedding (projected onto its leading principal axes),
fitted by EM. ``mixture_periods`` further periods train the network with the
margin triplet loss weighted by the mixture's responsibilities, re-embed and
re-fit the mixture from the previous responsibilities.

Why GDL merges and not the mixture for the way down to K: a mixture with one
component per cluster of the initial over-clustering (hundreds of clusters of
a few samples each) has no usable covariance; the merges need none.
"""

import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import ClusterMixin, _fit_context
from sklearn.mixture import GaussianMixture
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._progress import progress_bar
from .._validation import check_finite_training, fit_guard
from ._jule import _PARAMETERS_DOC, _JULEBase
from ._training import embed

__all__ = ["JULEMixture", "mixture_from_responsibilities"]


def mixture_from_responsibilities(Y, resp, covariance_type, reg_covar):
    """Weights, means and precisions of the M-step for responsibilities ``resp``.

    Parameters
    ----------
    Y : ndarray of shape (n, d)
    resp : ndarray of shape (n, k)
        Rows sum to 1; a component with no mass gets the overall mean and
        covariance and a tiny weight.
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        Added to the diagonal of every covariance.

    Returns
    -------
    weights : ndarray of shape (k,)
    means : ndarray of shape (k, d)
    precisions : ndarray
        In the shape ``GaussianMixture(precisions_init=...)`` expects for
        ``covariance_type``.
    """
    Y = np.asarray(Y, dtype=np.float64)
    resp = np.asarray(resp, dtype=np.float64)
    n, d = Y.shape
    nk = resp.sum(0)
    empty = nk < 1e-8
    safe = np.where(empty, 1.0, nk)
    means = (resp.T @ Y) / safe[:, None]
    means[empty] = Y.mean(0)
    weights = np.maximum(nk, 1e-3 * n / resp.shape[1]) / n
    weights /= weights.sum()
    if covariance_type == "tied":
        cov = (Y.T @ Y - (means * nk[:, None]).T @ means) / n
        cov.flat[:: d + 1] += reg_covar
        return weights, means, _symmetric_inverse(cov)
    if covariance_type == "full":
        prec = np.empty((resp.shape[1], d, d))
        overall = np.cov(Y.T, bias=True).reshape(d, d)
        for c in range(resp.shape[1]):
            if empty[c]:
                cov = overall.copy()
            else:
                diff = Y - means[c]
                cov = (resp[:, c, None] * diff).T @ diff / nk[c]
            cov.flat[:: d + 1] += reg_covar
            prec[c] = _symmetric_inverse(cov)
        return weights, means, prec
    sq = (resp.T @ (Y * Y)) / safe[:, None] - means**2
    sq[empty] = Y.var(0)
    var = np.maximum(sq, 0) + reg_covar
    if covariance_type == "diag":
        return weights, means, 1.0 / var
    return weights, means, 1.0 / var.mean(1)


def _symmetric_inverse(cov):
    """The inverse of a covariance, exactly symmetric (GaussianMixture checks)."""
    cov = (cov + cov.T) / 2
    inv = np.linalg.inv(cov)
    return (inv + inv.T) / 2


def _principal_axes(Z, n_components):
    """``(mean, components)`` of ``Z``: its mean and its ``n_components``
    leading principal axes as rows, signs fixed (None: keep every axis)."""
    Z = np.asarray(Z, dtype=np.float64)
    mean = Z.mean(0)
    if n_components is None or n_components >= Z.shape[1]:
        return mean, None
    _, _, vt = np.linalg.svd(Z - mean, full_matrices=False)
    vt = vt[:n_components]
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
    return mean, vt * signs[:, None]


def _project(Z, mean, components):
    """Centre ``Z`` and project it onto ``components`` (None: centre only)."""
    Y = np.asarray(Z, dtype=np.float64) - mean
    return Y if components is None else Y @ components.T


class JULEMixture(ClusterMixin, _JULEBase):
    """JULE with a Gaussian mixture as its final clustering: a probability per image.

    Runs :class:`JULEClustering`'s recurrent loop (a CNN trained with a triplet
    loss on the clusters, graph-degree-linkage merges from the initial
    over-clustering down to ``K``), then fits a Gaussian mixture to the learned
    embedding, initialised from the final partition: ``predict_proba`` gives
    each image's probability of belonging to each cluster, so the least
    certain images can be reviewed first. ``mixture_periods`` extra periods
    train the network further with triplets weighted by the mixture's
    responsibilities.

    The mixture lives in the space :meth:`transform` returns: the embedding
    projected onto its ``mixture_dims`` leading principal axes.

    %(parameters)s
    covariance_type : {"tied", "full", "diag", "spherical"}, default="tied"
        Covariance of the components, as in
        :class:`~sklearn.mixture.GaussianMixture`.
    mixture_dims : int, "auto" or None, default="auto"
        Principal axes of the embedding the mixture is fitted on. ``"auto"``:
        ``2 * K``, at most ``embedding_dim``; ``None``: the whole embedding.
    mixture_periods : int, default=0
        Periods after the mixture is first fitted, each training the network
        ``epochs_per_period`` epochs with the margin loss (whatever ``loss``)
        weighted by the responsibilities, re-embedding and re-fitting the
        mixture from the previous responsibilities.
    reg_covar : float, default=1e-6
        Added to the diagonal of the covariances.
    max_iter : int, default=100
        EM iterations of each mixture fit.
    tol : float, default=1e-3
        EM convergence threshold (on the lower bound's gain).

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Most probable component of each training sample.
    labels_jule_ : ndarray of shape (n_samples,)
        The partition that initialised the mixture (JULE's final labels: RC
        when ``recluster``, else SF).
    proba_ : ndarray of shape (n_samples, n_components)
        Responsibilities of the training samples (``predict_proba`` of the
        training data).
    weights_ : ndarray of shape (n_components,)
        Mixture weights.
    means_ : ndarray of shape (n_components, n_mixture_dims)
        Component means, in the space of :meth:`transform`.
    covariances_ : ndarray
        Component covariances, shaped as in
        :class:`~sklearn.mixture.GaussianMixture` for ``covariance_type``.
    precisions_cholesky_ : ndarray
        Cholesky factors of the precisions (as in ``GaussianMixture``).
    converged_ : bool
        Whether the last EM run converged.
    n_iter_ : int
        EM iterations of the last mixture fit.
    lower_bound_ : float
        Per-sample log-likelihood lower bound of the last EM run.
    mixture_ : sklearn.mixture.GaussianMixture
        The fitted mixture on the projected embedding.
    n_clusters_ : int
        Number of clusters: the components of the mixture (``n_components`` in
        the shapes above).
    embedding_ : ndarray of shape (n_samples, embedding_dim)
        Learned features of the training data (before projection).
    projection_mean_ : ndarray of shape (embedding_dim,)
    projection_components_ : ndarray of shape (n_mixture_dims, embedding_dim) or None
        :meth:`transform` is ``(embedding - projection_mean_) @
        projection_components_.T`` (no product when ``None``).
    labels_sf_, children_, children_sf_, merge_losses_ : ndarray
        The recurrent loop's results, as in :class:`JULEClustering`.
    n_initial_clusters_, eta_, max_steps_per_period_, n_neighbors_ : int, float, int, int
        As in :class:`JULEClustering`.
    input_scaling_ : tuple of float
        As in :class:`JULEClustering`.
    history_ : list of dict
        As in :class:`JULEClustering`, plus one entry per mixture period
        (``period="mixture 1"``, ...) with ``em_iterations``.
    network_ : torch.nn.Module
        The trained network (eval mode).
    image_shape_ : tuple or None
        ``(H, W, C)`` used by the CNN, None for the MLP.
    device_ : torch.device
        The device the network ran on.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during ``fit``, when ``X`` has string feature
        names.

    See Also
    --------
    JULEClustering : The same loop with hard labels only.
    DeepGMMClustering : An autoencoder and a mixture trained jointly.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skjule import JULEMixture
    >>> X, y = load_digits(return_X_y=True)
    >>> jm = JULEMixture(n_clusters=10, epochs_per_period=2, random_state=0)
    >>> proba = jm.fit(X.reshape(-1, 8, 8)).predict_proba(X.reshape(-1, 8, 8))
    >>> proba.shape
    (1797, 10)
    """

    _parameter_constraints: dict = {
        **_JULEBase._parameter_constraints,
        "covariance_type": [StrOptions({"tied", "full", "diag", "spherical"})],
        "mixture_dims": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "mixture_periods": [Interval(Integral, 0, None, closed="left")],
        "reg_covar": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_clusters=10,
        *,
        distance_threshold=None,
        image_shape=None,
        eta="auto",
        n_neighbors="auto",
        a=1.0,
        n_cluster_neighbors=5,
        lam=1.0,
        gamma=1.0,
        loss="margin",
        margin=0.2,
        negatives="random",
        n_negatives=None,
        epochs_per_period=20,
        max_steps_per_period="auto",
        batch_size=100,
        batch_sampling="random",
        learning_rate=0.01,
        momentum=0.9,
        weight_decay=5e-5,
        lr_gamma=1e-4,
        lr_power=0.75,
        embedding_dim=160,
        recluster=True,
        small_cluster_fraction=0.05,
        normalize=True,
        knn_method="auto",
        device="auto",
        random_state=None,
        n_jobs=None,
        verbose=0,
        checkpoint_dir=None,
        backbone=None,
        freeze_backbone=False,
        covariance_type="tied",
        mixture_dims="auto",
        mixture_periods=0,
        reg_covar=1e-6,
        max_iter=100,
        tol=1e-3,
    ):
        super().__init__(
            n_clusters,
            distance_threshold=distance_threshold,
            image_shape=image_shape,
            eta=eta,
            n_neighbors=n_neighbors,
            a=a,
            n_cluster_neighbors=n_cluster_neighbors,
            lam=lam,
            gamma=gamma,
            loss=loss,
            margin=margin,
            negatives=negatives,
            n_negatives=n_negatives,
            epochs_per_period=epochs_per_period,
            max_steps_per_period=max_steps_per_period,
            batch_size=batch_size,
            batch_sampling=batch_sampling,
            learning_rate=learning_rate,
            momentum=momentum,
            weight_decay=weight_decay,
            lr_gamma=lr_gamma,
            lr_power=lr_power,
            embedding_dim=embedding_dim,
            recluster=recluster,
            small_cluster_fraction=small_cluster_fraction,
            normalize=normalize,
            knn_method=knn_method,
            device=device,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
            checkpoint_dir=checkpoint_dir,
            backbone=backbone,
            freeze_backbone=freeze_backbone,
        )
        self.covariance_type = covariance_type
        self.mixture_dims = mixture_dims
        self.mixture_periods = mixture_periods
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.tol = tol

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the network, the clusters and the mixture of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, H, W) or (n_samples, H, W, C)
            Training images (or feature vectors).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : JULEMixture
            The fitted estimator.
        """
        with fit_guard(self):
            return self._fit(X)

    def _n_mixture_dims(self, k):
        if self.mixture_dims is None:
            return None
        if self.mixture_dims == "auto":
            return min(2 * k, self.embedding_dim)
        return min(int(self.mixture_dims), self.embedding_dim)

    def _fit_mixture(self, Z, resp, seed):
        """Project ``Z`` and fit the mixture by EM from ``resp``."""
        k = resp.shape[1]
        dims = self._n_mixture_dims(k)
        if dims is not None:
            dims = min(dims, Z.shape[0] - 1)
        projection = _principal_axes(Z, dims)
        Y = _project(Z, *projection)
        weights, means, precisions = mixture_from_responsibilities(
            Y, resp, self.covariance_type, self.reg_covar
        )
        gmm = GaussianMixture(
            k,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            tol=self.tol,
            weights_init=weights,
            means_init=means,
            precisions_init=precisions,
            random_state=seed,
        )
        gmm.fit(Y)
        return projection, gmm, gmm.predict_proba(Y)

    def _final_stage(self, run, labels):
        """Fit the mixture on the final partition; optional soft periods."""
        k = int(labels.max()) + 1
        resp = np.eye(k)[labels]
        seed = int(run.rng.randint(2**31 - 1))
        projection, gmm, resp = self._fit_mixture(run.feats, resp, seed)
        bar = progress_bar(
            total=self.mixture_periods, desc="mixture periods", enabled=self.verbose > 0
        )
        for period in range(1, self.mixture_periods + 1):
            epochs = self._epochs_this_period(run.n)
            stats = run.trainer.train(
                run.Xt,
                resp.argmax(1),
                epochs=epochs,
                max_steps=self._step_budget(run.n),
                batch_size=self.batch_size,
                loss="margin",
                sampling=self.batch_sampling,
                rng=run.rng,
                loss_kwargs=self._loss_kwargs(run.generator, loss="margin"),
                resp=resp,
            )
            t0 = time.perf_counter()
            run.feats = check_finite_training(
                embed(run.model, run.Xt, run.device), self.learning_rate
            )
            projection, gmm, resp = self._fit_mixture(run.feats, resp, seed)
            stats["merge_seconds"] = time.perf_counter() - t0
            run.history.append(
                dict(
                    period=f"mixture {period}",
                    n_clusters_start=k,
                    n_clusters_end=k,
                    epochs=epochs,
                    em_iterations=gmm.n_iter_,
                    **stats,
                )
            )
            bar.update(1)
        bar.close()
        return dict(
            labels_=resp.argmax(1),
            labels_jule_=labels,
            proba_=resp,
            mixture_=gmm,
            weights_=gmm.weights_,
            means_=gmm.means_,
            covariances_=gmm.covariances_,
            precisions_cholesky_=gmm.precisions_cholesky_,
            converged_=gmm.converged_,
            n_iter_=gmm.n_iter_,
            lower_bound_=gmm.lower_bound_,
            n_clusters_=k,
            projection_mean_=projection[0],
            projection_components_=projection[1],
        )

    # ------------------------------------------------------------------ use
    def transform(self, X):
        """The learned embedding of ``X``, projected into the mixture's space.

        Parameters
        ----------
        X : array-like of the same sample shape as in ``fit``
            Samples to embed.

        Returns
        -------
        Y : ndarray of shape (n_samples, n_mixture_dims)
            ``(embedding - projection_mean_) @ projection_components_.T``.
        """
        check_is_fitted(self, "mixture_")
        return _project(self._embed_new(X), self.projection_mean_, self.projection_components_)

    def fit_transform(self, X, y=None):
        """Fit and return the projected embedding of ``X``.

        Parameters
        ----------
        X : array-like
            Training images (or feature vectors).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        Y : ndarray of shape (n_samples, n_mixture_dims)
            The training data in the mixture's space.
        """
        return self.fit(X).transform(X)

    def predict_proba(self, X):
        """Probability of each cluster for each sample (rows sum to 1).

        Parameters
        ----------
        X : array-like of the same sample shape as in ``fit``
            Samples to assign.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_components)
            The mixture's posterior ``p(component | x)``, components numbered
            as ``labels_``.
        """
        Y = self.transform(X)  # checks that the estimator is fitted
        return self.mixture_.predict_proba(Y)

    def predict(self, X):
        """Most probable cluster of each sample.

        Parameters
        ----------
        X : array-like of the same sample shape as in ``fit``
            Samples to assign.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Argmax of :meth:`predict_proba`.
        """
        return self.predict_proba(X).argmax(axis=1)

    def score_samples(self, X):
        """Log-density of each sample under the mixture (in its space).

        Parameters
        ----------
        X : array-like of the same sample shape as in ``fit``
            Samples to score.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Low values mark samples far from every component.
        """
        Y = self.transform(X)
        return self.mixture_.score_samples(Y)

    def score(self, X, y=None):
        """Mean log-density of the samples of ``X``.

        Parameters
        ----------
        X : array-like of the same sample shape as in ``fit``
            Samples to score.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        log_likelihood : float
            The mean of :meth:`score_samples`.
        """
        return float(self.score_samples(X).mean())

    def fit_predict(self, X, y=None):
        """Fit and return ``labels_``.

        Parameters
        ----------
        X : array-like
            Training images (or feature vectors), as in ``fit``.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            The most probable component of each training sample.
        """
        return self.fit(X).labels_

    @property
    def _n_features_out(self):
        return self.means_.shape[1]


JULEMixture.__doc__ = JULEMixture.__doc__.replace("%(parameters)s", _PARAMETERS_DOC.strip("\n"))
