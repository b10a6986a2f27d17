"""DeepGMMClustering: an autoencoder's encoder and a Gaussian mixture trained jointly.

Wang & Jiang, "An unsupervised deep learning framework via integrated
optimization of representation learning and GMM-based modeling" (ACCV 2018):

1. pretrain a denoising autoencoder (:class:`AutoencoderTransformer`);
2. fit a diagonal-covariance GMM by EM on the codes (scikit-learn's
   ``GaussianMixture``) and copy it into a "GMM layer";
3. SGD on the encoder and the GMM parameters together, maximising (eq. 5/6)
   ``mean log p(f(x) | GMM) + eta * sum_k sum_{j in n(k)} ||mu_k - mu_j||^2``
   over the ``|n(k)| = m/2`` nearest centres of each centre.

The estimator's defaults replace step 2 by a GDLClustering partition of the
codes (``init="gdl"``) and step 3 by the pseudo-label stage (each code's
density under its own component); the paper's steps stay reachable through
``init="em"``, ``pseudo_label_epochs=0`` and ``epochs``.

The mixture is parameterised so it is always valid: weights are the softmax of
free logits (a simplex), standard deviations the exponential of free log-stds
(positive). With that parameterisation the autograd gradients are exactly the
paper's eqs. 7-10 (eq. 9 is the derivative in ``log sigma``, eq. 10 in the
logits), which ``tests/test_deepgmm.py`` checks.
"""

import copy
import math
import os
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin, _fit_context, clone
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._engine._gdl import GDLClustering
from .._progress import progress_bar
from .._validation import check_features, check_n_clusters, fit_guard, warn_if_few_distinct
from ._autoencoder import AutoencoderTransformer, reconstruction_error
from ._checkpoint import Checkpointer, module_digest, random_state_digest
from ._inputs import new_network_input, resolve_image_shape
from ._networks import resolve_device

__all__ = ["DeepGMMClustering", "GMMLayer", "separability"]

_LOG_2PI = math.log(2 * math.pi)


class GMMLayer(nn.Module):
    """A diagonal Gaussian mixture with free parameters: means, log-stds, weight logits."""

    def __init__(self, means, variances, weights):
        super().__init__()
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        self.means = nn.Parameter(t(means).clone())
        self.log_std = nn.Parameter(0.5 * torch.log(t(variances)))
        self.logits = nn.Parameter(torch.log(t(weights)))

    @property
    def variances(self):
        return torch.exp(2 * self.log_std)

    @property
    def weights(self):
        return torch.softmax(self.logits, dim=0)

    def joint_log_prob(self, y):
        """``log w_k + log N(y | mu_k, diag var_k)``, shape (n, K)."""
        return _joint_log_prob(y, self.means, self.log_std, torch.log_softmax(self.logits, 0))

    def forward(self, y):
        """``log p(y)`` per sample."""
        return torch.logsumexp(self.joint_log_prob(y), dim=1)


def _joint_log_prob(y, means, log_std, log_w):
    inv_var = torch.exp(-2 * log_std)  # (K, d)
    diff2 = (y[:, None, :] - means[None]) ** 2  # (n, K, d)
    d = y.shape[1]
    log_n = -0.5 * (d * _LOG_2PI + (2 * log_std).sum(1)[None] + (diff2 * inv_var[None]).sum(2))
    return log_w[None] + log_n


def separability(means, n_neighbors):
    """``sum_k sum_{j in n(k)} ||mu_k - mu_j||^2`` over the ``n_neighbors``
    nearest other centres of each centre.

    The neighbours and their positions are taken as constants (``detach``):
    the gradient with respect to ``mu_k`` is then ``2 sum_{j in n(k)} (mu_k -
    mu_j)``, exactly the separability part of the paper's eq. 8.
    """
    k = means.shape[0]
    if n_neighbors < 1 or k < 2:
        return means.new_zeros(())
    fixed = means.detach()
    d2 = torch.cdist(fixed, fixed) ** 2
    d2.fill_diagonal_(float("inf"))
    nn_idx = torch.topk(d2, min(n_neighbors, k - 1), dim=1, largest=False).indices
    return ((means[:, None, :] - fixed[nn_idx]) ** 2).sum()


@dataclass
class _Run:
    """The working state of one deep-GMM fit, passed between its steps."""

    n: int
    k: int
    ckpt: object = None
    history: list = field(default_factory=list)
    # set by the steps: rng, X_raw, state, n_nb, ae, gmm, labels_init, device,
    # net, Xt, layer, params, opt, partition


def _resumed_models(estimator, state):
    """The pretrained autoencoder and starting mixture saved in a checkpoint."""
    ae = estimator.autoencoder
    ae = (
        AutoencoderTransformer(image_shape=estimator.image_shape, device=estimator.device)
        if ae is None
        else clone(ae)
    )
    ae._load_fitted_state(state["autoencoder"], resolve_device(ae.device))
    gmm = GaussianMixture()
    for key, value in state["gmm"].items():
        setattr(gmm, key, value)
    return ae, gmm


def mixture_from_partition(X, labels, k, reg_covar):
    """A fitted diagonal ``GaussianMixture`` whose component ``c`` has the
    mean, variance (+ ``reg_covar``) and share of the samples labelled ``c``.

    An empty label gets the overall mean and variance and a tiny weight.
    """
    X = np.asarray(X, dtype=np.float64)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.zeros((k, X.shape[1]))
    sq = np.zeros((k, X.shape[1]))
    np.add.at(sums, labels, X)
    np.add.at(sq, labels, X * X)
    safe = np.maximum(counts, 1)[:, None]
    means = sums / safe
    variances = np.maximum(sq / safe - means**2, 0)
    empty = counts == 0
    means[empty], variances[empty] = X.mean(0), X.var(0)
    variances += reg_covar
    weights = np.maximum(counts, 1e-3)
    weights /= weights.sum()
    gmm = GaussianMixture(k, covariance_type="diag", reg_covar=reg_covar)
    gmm.weights_, gmm.means_, gmm.covariances_ = weights, means, variances
    gmm.precisions_cholesky_ = 1 / np.sqrt(variances)
    gmm.precisions_ = 1 / variances
    gmm.converged_, gmm.n_iter_, gmm.lower_bound_ = True, 0, -np.inf
    gmm.n_features_in_ = X.shape[1]
    return gmm


def _n_pseudo_label_epochs(history):
    return sum(h["stage"] == "pseudo-label" for h in history)


def _agreement_stalled(history, patience=2):
    """Whether the last ``patience`` pseudo-label epochs did not raise the
    agreement with the partition (the share of samples whose most probable
    component is their own) above its best before them."""
    agreement = [h["agreement"] for h in history if h["stage"] == "pseudo-label"]
    return len(agreement) > patience and max(agreement[-patience:]) <= max(agreement[:-patience])


def _first_appearance_order(labels, k):
    """Component order: by first appearance in ``labels``, components no sample
    takes last - so the training labels are ``0 .. m-1`` without gaps."""
    _, first = np.unique(labels, return_index=True)
    seen = labels[np.sort(first)]
    return np.concatenate([seen, np.setdiff1d(np.arange(k), seen)])


class DeepGMMClustering(ClusterMixin, TransformerMixin, BaseEstimator):
    """Deep clustering by joint training of an encoder and a Gaussian mixture.

    Pretrains a denoising autoencoder and partitions its codes with
    :class:`GDLClustering`; each cluster becomes one diagonal Gaussian
    component (its mean, variance and share). Encoder and mixture are then
    trained together by SGD so that each code is likely under its own
    component (the pseudo-label stage, ``pseudo_label_epochs``), while
    ``eta`` times the squared distances between each centre and its
    ``n_neighbor_components`` nearest centres keeps the centres apart. The
    result is a mixture with probabilities per sample and component
    (``predict_proba``), a log-likelihood per sample (``score_samples``) and
    a mean and variance per cluster.

    Wang & Jiang's method as written is reachable with
    ``init="em", pseudo_label_epochs=0, epochs=20`` and ``eta`` from their
    grid {0.1, 0.01, 0.001, 0.0001}: EM on the codes, then joint SGD on the
    mixture's marginal log-likelihood plus the separability term (their eq.
    5; ``eta=0`` is their "DeepGMM" ablation). In that joint stage the
    decoder's reconstruction error stays in the objective (weight
    ``reconstruction_weight``): without it the encoder can shrink all codes
    towards the centres and raise the likelihood without bound. The defaults
    are not the paper's because they cluster much better and are faster
    (``docs/deepgmm.rst``): the EM mixture on the codes starts from a far
    worse partition than the graph, and the joint stage after the
    pseudo-label stage did not improve the clusters and sometimes merged
    them.

    Parameters
    ----------
    n_clusters : int, default=10
        Number of Gaussian components ``m``.
    eta : float, default=0.01
        Weight of the separability term, which pushes each centre away from
        its nearest centres, in both stages; 0 disables it. The paper picks it
        per data set from {0.1, 0.01, 0.001, 0.0001} (with the labels, which a
        user does not have). In the paper's joint stage, too large a value
        lets the separation outweigh the likelihood and can drag almost all
        samples into one or two components; too small a value may not stop
        the joint stage from merging clusters, above all after a pseudo-label
        stage. Check
        ``weights_`` and ``labels_`` against ``labels_init_`` after a fit,
        and try another value of that grid when one component takes most
        samples.
    n_neighbor_components : int or None, default=None
        ``|n(k)|``; None means ``n_clusters // 2`` (the paper).
    autoencoder : AutoencoderTransformer or None, default=None
        The pretraining network. None: ``AutoencoderTransformer(n_components=10)``
        (the paper's 500-500-2000-10 denoising autoencoder) with this
        estimator's ``image_shape``, ``device`` and seed. An unfitted instance
        is cloned and fitted on ``X``; a fitted one is used as the starting
        point without refitting (copied, never modified), which lets several
        runs share one pretraining.
    epochs : int, default=0
        Epochs of the paper's joint stage (marginal log-likelihood,
        separability and reconstruction), after the pseudo-label stage; the
        paper trains 20.
    pseudo_label_epochs : int, default=20
        *Not in the paper.* This many epochs (fewer with
        ``pseudo_label_patience``) before the joint stage
        in which each code's log-likelihood is its density under the
        component of the starting partition it belongs to (``labels_init_``)
        instead of the mixture's marginal density; encoder and mixture both
        use ``learning_rate`` and the reconstruction term is left out. This
        makes the mixture's posterior follow the starting partition, which a
        diagonal Gaussian fitted to the moments of a curved graph cluster
        does not: it is meant for ``init="gdl"``, whose graph partition is
        worth keeping. A joint stage after it (``epochs > 0``) can merge
        clusters, most readily with ``eta=0`` or a very small ``eta``.
        Compare ``labels_`` with ``labels_init_`` after a fit; see
        ``docs/deepgmm.rst``. 0: the paper.
    pseudo_label_patience : int or None, default=None
        ``None``: the pseudo-label stage runs all its epochs. An int ``p``:
        it ends early once ``p`` epochs in a row have not raised the
        agreement (the share of samples whose most probable component is
        their own) above its best. It only saves time: the agreement can
        stall for a few epochs while the stage still improves the mixture,
        so ending early tends to give the joint stage a worse start, the more
        so the smaller ``p``. Where the stage would run all its epochs anyway
        it changes nothing. Leave it at None unless the pseudo-label stage is
        too long, and then prefer a patience of several epochs.
    batch_size : int, default=256
        Samples per SGD step of the pseudo-label and joint stages
        (pretraining uses the autoencoder's own ``batch_size``). A last batch
        of a single sample is skipped.
    learning_rate : float, default=0.01
        SGD base learning rate of the mixture's parameters (the paper's value).
    encoder_learning_rate : float, default=1e-4
        SGD base learning rate of the encoder and decoder. The paper uses one
        rate (0.01) for everything; with a rate that high the codes can all
        collapse into one component within the first epoch: the likelihood
        gradient ``sum_k p(c_k|y) (mu_k - y) / sigma_k^2`` is large for tight
        components and drags the codes into them. Keep it well below
        ``learning_rate``; lower it if the codes collapse (``code_std`` in
        ``history_`` falling, one component taking most samples). 0 freezes
        the encoder.
    momentum : float, default=0.9
        SGD momentum, for the encoder, decoder and mixture alike.
    lr_step : int, default=10
        The "step" policy: the learning rate is multiplied by ``lr_decay``
        every ``lr_step`` epochs.
    lr_decay : float, default=0.1
        Factor applied to both learning rates every ``lr_step`` joint epochs
        (the pseudo-label stage is not decayed); 1 keeps them constant.
    reconstruction_weight : float, default=1.0
        Weight of the decoder's reconstruction error during joint training.
    init : {"gdl", "em"}, default="gdl"
        How the mixture starts on the pretrained codes. ``"gdl"``:
        :class:`GDLClustering` on the codes, and each component the mean,
        diagonal variance and share of one of its clusters (no EM, which
        drifts back to the EM optimum). The graph partition follows curved
        clusters a diagonal Gaussian cannot, so it gives a far better start.
        ``"em"``: scikit-learn's ``GaussianMixture`` fitted by EM
        (``gmm_n_init`` restarts), as in the paper.
    gmm_n_init : int, default=5
        EM restarts of the initial ``GaussianMixture`` (``init="em"``).
    reg_covar : float, default=1e-6
        Added to the variances in the likelihood (as in scikit-learn's
        ``GaussianMixture``), so a component cannot shrink onto one point.
    image_shape : tuple of int or None, default=None
        ``(H, W[, C])`` of flat image rows (ints; floats are refused). Passed
        to the default autoencoder, and to a given unfitted one whose own
        ``image_shape`` is None; if a given autoencoder has (or was fitted
        with) another image shape, ``fit`` raises ``ValueError`` instead of
        ignoring one of them.
    device : str or torch.device, default="auto"
        ``"auto"``: CUDA when available, else the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds pretraining, EM and SGD; a fixed seed repeats on CPU.
    verbose : int, default=0
        Progress bars over pretraining and joint epochs when > 0.
    checkpoint_dir : str, path or None, default=None
        Folder for a checkpoint written after pretraining + EM and after every
        joint epoch. Running the same fit again (same data, parameters and
        seed, same prefit autoencoder) resumes there and ends with the same
        result as an uninterrupted run. The file holds the autoencoder's and
        the mixture's arrays, not pickled objects. See :class:`JULEClustering`.
    max_grad_norm : float or None, default=10.0
        Clip the norm of each batch's gradient (over all parameters). A
        component that shrinks onto a few codes makes the ``1 / sigma^2``
        gradients explode, and without clipping training can diverge within
        a few epochs at the paper's learning rate. If ``fit`` stops with a
        non-finite objective, lower the learning rates or this norm. None
        disables it.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Most probable component of each training sample. Components are
        numbered by first appearance in the training data; components that
        no training sample takes come last (so ``labels_`` has no gaps).
    means_ : ndarray of shape (n_clusters, n_components)
    covariances_ : ndarray of shape (n_clusters, n_components)
        Diagonal variances (positive by construction).
    weights_ : ndarray of shape (n_clusters,)
        Mixture weights (a simplex by construction).
    autoencoder_ : AutoencoderTransformer
        The fitted autoencoder after joint training; ``transform`` uses it.
    gmm_init_ : GaussianMixture
        The mixture on the pretrained codes that initialised the joint stage
        (with ``init="em"``, "AE + GMM").
    labels_init_ : ndarray of shape (n_samples,)
        The partition of the pretrained codes the mixture was made from:
        ``gmm_init_``'s labels with ``init="em"``, the
        :class:`GDLClustering` labels with ``init="gdl"``.
    history_ : list of dict
        Per epoch: ``stage`` (``"pseudo-label"`` or ``"joint"``),
        ``agreement`` (pseudo-label stage only, else NaN),
        ``log_likelihood`` (mean; in the pseudo-label stage the density under
        each sample's own component), ``separability``,
        ``reconstruction``, ``objective``, ``learning_rate``, ``min_variance``,
        ``max_variance`` (over components and dimensions, at the epoch's
        end), ``code_std`` (the codes' standard deviation per dimension
        within a batch, averaged over dimensions and batches: it shows the
        encoder shrinking or stretching the codes), ``weight_sum``.
    n_pseudo_label_epochs_ : int
        Pseudo-label epochs run (at most ``pseudo_label_epochs``).
    n_features_in_ : int
        Number of features seen during ``fit`` (the flattened size of a
        sample).
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during ``fit``. Defined only when ``X``
        has feature names that are all strings (a pandas DataFrame, for
        example); ``predict`` and the other methods then check that they get
        the same columns in the same order.

    Notes
    -----
    The clusters stay close to the :class:`GDLClustering` partition of the
    codes the fit starts from (``labels_init_``); what the mixture adds is
    probabilities, a log-likelihood per sample and a mean and variance per
    cluster. The most useful of these is the top probability: the samples
    with the lowest ``predict_proba(X).max(axis=1)`` are the ones to review.
    For the clusters alone, :class:`GDLClustering` on the autoencoder's
    codes is the simpler choice.

    The paper's joint stage (``epochs > 0``) can collapse clusters. After
    such a fit, compare ``labels_`` with ``labels_init_`` and look at
    ``weights_`` (one component taking almost all samples) and
    ``history_``. To try several settings, pass one fitted autoencoder as
    ``autoencoder``: pretraining is then not repeated. See
    ``docs/deepgmm.rst``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skjule import AutoencoderTransformer, DeepGMMClustering
    >>> X, y = load_digits(return_X_y=True)
    >>> dgmm = DeepGMMClustering(10, pseudo_label_epochs=2, random_state=0,
    ...                          autoencoder=AutoencoderTransformer(epochs=2))
    >>> dgmm.fit_predict(X).shape
    (1797,)
    >>> dgmm.predict_proba(X[:2]).sum(axis=1).round(6)
    array([1., 1.])
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "eta": [Interval(Real, 0, None, closed="left")],
        "n_neighbor_components": [Interval(Integral, 0, None, closed="left"), None],
        "autoencoder": [HasMethods(["fit", "transform"]), None],
        "epochs": [Interval(Integral, 0, None, closed="left")],
        "pseudo_label_epochs": [Interval(Integral, 0, None, closed="left")],
        "pseudo_label_patience": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "encoder_learning_rate": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "lr_step": [Interval(Integral, 1, None, closed="left")],
        "lr_decay": [Interval(Real, 0, 1, closed="right")],
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
        "init": [StrOptions({"em", "gdl"})],
        "gmm_n_init": [Interval(Integral, 1, None, closed="left")],
        "reg_covar": [Interval(Real, 0, None, closed="left")],
        "image_shape": ["array-like", None],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "checkpoint_dir": [str, os.PathLike, None],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        n_clusters=10,
        *,
        eta=0.01,
        n_neighbor_components=None,
        autoencoder=None,
        epochs=0,
        pseudo_label_epochs=20,
        pseudo_label_patience=None,
        batch_size=256,
        learning_rate=0.01,
        encoder_learning_rate=1e-4,
        momentum=0.9,
        lr_step=10,
        lr_decay=0.1,
        reconstruction_weight=1.0,
        init="gdl",
        gmm_n_init=5,
        reg_covar=1e-6,
        image_shape=None,
        device="auto",
        random_state=None,
        verbose=0,
        checkpoint_dir=None,
        max_grad_norm=10.0,
    ):
        self.n_clusters = n_clusters
        self.eta = eta
        self.n_neighbor_components = n_neighbor_components
        self.autoencoder = autoencoder
        self.epochs = epochs
        self.pseudo_label_epochs = pseudo_label_epochs
        self.pseudo_label_patience = pseudo_label_patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.encoder_learning_rate = encoder_learning_rate
        self.momentum = momentum
        self.lr_step = lr_step
        self.lr_decay = lr_decay
        self.reconstruction_weight = reconstruction_weight
        self.init = init
        self.gmm_n_init = gmm_n_init
        self.reg_covar = reg_covar
        self.image_shape = image_shape
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.max_grad_norm = max_grad_norm

    # ------------------------------------------------------------------ fit
    def _pretrained(self, X_raw, seed):
        sample_shape = X_raw.shape[1:]
        # this estimator's image_shape, checked against X (None: not given)
        given = (
            None
            if self.image_shape is None
            else resolve_image_shape(sample_shape, self.image_shape)
        )
        ae = self.autoencoder
        if ae is None:
            ae = AutoencoderTransformer(
                image_shape=self.image_shape,
                device=self.device,
                random_state=seed,
                verbose=self.verbose,
            )
        elif hasattr(ae, "network_"):  # fitted: start from it, never modify it
            if getattr(ae, "n_features_in_", None) != self.n_features_in_:
                raise ValueError(
                    f"The fitted autoencoder expects {ae.n_features_in_} features per "
                    f"sample; X has {self.n_features_in_}."
                )
            if given is not None:
                own = resolve_image_shape(
                    ae.sample_shape_, ae.image_shape, name="autoencoder.image_shape"
                )
                self._check_same_image_shape(given, own, "was fitted on")
            ae = copy.deepcopy(ae)
            self._adopt_feature_names(ae)
            return ae
        else:
            ae = clone(ae)
            if ae.random_state is None:
                ae.set_params(random_state=seed)
            if given is not None:
                if getattr(ae, "image_shape", None) is None:
                    ae.set_params(image_shape=self.image_shape)  # as for the default one
                else:
                    own = resolve_image_shape(
                        sample_shape, ae.image_shape, name="autoencoder.image_shape"
                    )
                    self._check_same_image_shape(given, own, "is set to")
        return ae.fit(X_raw)

    def _check_same_image_shape(self, given, own, verb):
        """A given ``image_shape`` must be the autoencoder's, never silently ignored."""
        if own != given:
            raise ValueError(
                f"image_shape={self.image_shape!r} (images of {given[0]}x{given[1]}x"
                f"{given[2]}) conflicts with the autoencoder, which {verb} "
                + (
                    "flat vectors (image_shape=None)"
                    if own is None
                    else f"images of {own[0]}x{own[1]}x{own[2]}"
                )
                + ". Give the image shape in one place: leave DeepGMMClustering's "
                "image_shape as None, or make the autoencoder's match it."
            )

    def _adopt_feature_names(self, ae):
        """Check a prefit autoencoder's column names against this fit's, then drop
        them from the copy: this estimator checks names itself and hands the
        autoencoder plain arrays."""
        theirs = getattr(ae, "feature_names_in_", None)
        if theirs is None:
            return
        mine = getattr(self, "feature_names_in_", None)
        if mine is None:
            warnings.warn(
                "X does not have valid feature names, but the fitted autoencoder was "
                "fitted with feature names",
                UserWarning,
                stacklevel=4,
            )
        elif len(mine) != len(theirs) or np.any(mine != theirs):
            raise ValueError(
                "The feature names of X differ from those the fitted autoencoder was "
                "fitted with (same columns, same order needed)."
            )
        del ae.feature_names_in_

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Pretrain, initialise the mixture by EM, then train both jointly.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Training samples: flat rows, or images ``(n_samples, H, W)`` /
            ``(n_samples, H, W, C)``, which are flattened.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : DeepGMMClustering
            The fitted estimator.
        """
        with fit_guard(self):
            return self._fit(X)

    def _fit(self, X):
        run = self._set_up(X)
        self._pretrain_or_resume(run)
        self._joint_set_up(run)
        bar = progress_bar(
            total=self.pseudo_label_epochs + self.epochs,
            desc="deep GMM epochs",
            enabled=self.verbose > 0,
            initial=len(run.history),
        )
        while self._epoch(run, bar):
            bar.update(1)
            bar.set_postfix(loglik=f"{run.history[-1]['log_likelihood']:.3f}")
        bar.close()
        self._store_fitted(run)
        return self

    def _set_up(self, X):
        """Validate; seed; the checkpointer and its saved state, if any."""
        X2, sample_shape = check_features(self, X, reset=True, min_samples=2)
        n = X2.shape[0]
        run = _Run(n=n, k=check_n_clusters(self.n_clusters, n))
        warn_if_few_distinct(X2, run.k)
        run.rng = check_random_state(self.random_state)
        run.X_raw = X2.reshape((n, *sample_shape))
        if self.checkpoint_dir is not None:
            # the fit is identified by its data, parameters, seed and given network
            ae_param = self.autoencoder
            extra = random_state_digest(run.rng) + (
                module_digest(ae_param.network_)
                if ae_param is not None and hasattr(ae_param, "network_")
                else b""
            )
            run.ckpt = Checkpointer(self.checkpoint_dir, self, X2, extra=extra)
        run.state = run.ckpt.load("cpu") if run.ckpt is not None else None
        run.n_nb = run.k // 2 if self.n_neighbor_components is None else self.n_neighbor_components
        return run

    def _pretrain_or_resume(self, run):
        """The pretrained autoencoder and the starting mixture (from a checkpoint
        when one exists: pretraining and EM are then done)."""
        if run.state is None:
            run.ae = self._pretrained(run.X_raw, int(run.rng.randint(2**31 - 1)))
            codes0 = run.ae.transform(run.X_raw).astype(np.float64)
            run.gmm, run.labels_init = self._initial_mixture(
                codes0, run.k, int(run.rng.randint(2**31 - 1))
            )
        else:
            run.ae, run.gmm = _resumed_models(self, run.state)
            run.labels_init = run.state["labels_init"]

    def _joint_set_up(self, run):
        """A copy of the pretrained network, the mixture layer and their optimiser."""
        ae, gmm, state = run.ae, run.gmm, run.state
        run.device = ae.device_ if self.device == "auto" else resolve_device(self.device)
        run.net = copy.deepcopy(ae.network_).to(run.device)  # the pretrained one stays
        run.Xt = new_network_input(ae, run.X_raw)
        run.layer = GMMLayer(gmm.means_, gmm.covariances_, gmm.weights_).to(run.device)
        run.params = list(run.net.parameters()) + list(run.layer.parameters())
        run.opt = torch.optim.SGD(
            [
                dict(params=list(run.net.parameters()), base_lr=self.encoder_learning_rate),
                dict(params=list(run.layer.parameters()), base_lr=self.learning_rate),
            ],
            lr=self.learning_rate,
            momentum=self.momentum,
        )
        if state is not None and state["epoch"] > 0:
            run.net.load_state_dict(state["network"])
            run.layer.load_state_dict(state["layer"])
            run.opt.load_state_dict(state["optimizer"])
            run.history = state["history"]
        if state is not None:
            run.rng.set_state(state["rng"])
        else:
            self._save(run)
        run.partition = torch.from_numpy(np.asarray(run.labels_init, dtype=np.int64))

    def _save(self, run):
        if run.ckpt is not None:
            run.ckpt.save(
                dict(
                    autoencoder=run.ae._fitted_state(),
                    gmm=vars(run.gmm),
                    labels_init=run.labels_init,
                    rng=run.rng.get_state(),
                    epoch=len(run.history),
                    history=run.history,
                    network=run.net.state_dict(),
                    layer=run.layer.state_dict(),
                    optimizer=run.opt.state_dict(),
                )
            )

    def _epoch(self, run, bar):
        """One epoch of the pseudo-label or the joint stage; False when done."""
        history = run.history
        # The stage follows from the history alone, so a resumed fit continues alike.
        n_pseudo = _n_pseudo_label_epochs(history)
        n_joint = len(history) - n_pseudo
        pseudo = (
            n_joint == 0
            and n_pseudo < self.pseudo_label_epochs
            and not (
                self.pseudo_label_patience is not None
                and _agreement_stalled(history, self.pseudo_label_patience)
            )
        )
        if not pseudo and n_joint >= self.epochs:
            return False
        if not pseudo and n_joint == 0:  # the pseudo-label stage ended early
            bar.update(self.pseudo_label_epochs - n_pseudo)
        if pseudo:  # one rate for everything, as in the paper; no decay yet
            lr = self.learning_rate
            for group in run.opt.param_groups:
                group["lr"] = lr
        else:
            decay = self.lr_decay ** (n_joint // self.lr_step)
            lr = self.learning_rate * decay
            for group in run.opt.param_groups:
                group["lr"] = group["base_lr"] * decay
        sums, n_agree = self._train_epoch(run, pseudo)
        n = run.n
        if not np.isfinite(sums).all():
            raise ValueError(
                f"Joint training diverged at epoch {len(history)} (non-finite objective). "
                f"Use a smaller learning_rate (now {self.learning_rate}) or "
                f"encoder_learning_rate (now {self.encoder_learning_rate})."
            )
        layer = run.layer
        with torch.no_grad():
            history.append(
                dict(
                    epoch=len(history),
                    stage="pseudo-label" if pseudo else "joint",
                    agreement=n_agree / n if pseudo else float("nan"),
                    log_likelihood=sums[0],
                    separability=sums[1],
                    reconstruction=sums[2],
                    objective=sums[0] + self.eta * sums[1],
                    learning_rate=lr,
                    min_variance=float(layer.variances.min()),
                    max_variance=float(layer.variances.max()),
                    code_std=sums[3],
                    weight_sum=float(layer.weights.sum()),
                )
            )
        self._save(run)
        return True

    def _train_epoch(self, run, pseudo):
        """SGD over one permutation; (mean [loglik, sep, rec, code std], agreements)."""
        net, layer, device, n = run.net, run.layer, run.device, run.n
        rec_weight = 0.0 if pseudo else self.reconstruction_weight
        net.train()
        sums = np.zeros(4)
        n_agree = 0
        perm = run.rng.permutation(n)
        for start in range(0, n, self.batch_size):
            idx = torch.from_numpy(perm[start : start + self.batch_size])
            if idx.numel() < 2:
                continue
            xb = run.Xt.index_select(0, idx).to(device)
            recon, code, _ = net(xb)
            if pseudo:  # each code's density under its own initial component
                jl = self._component_log_prob(layer, code)
                target = run.partition.index_select(0, idx).to(device)
                loglik = jl.gather(1, target[:, None]).mean()
                n_agree += int((jl.detach().argmax(1) == target).sum())
            else:
                loglik = torch.logsumexp(self._component_log_prob(layer, code), dim=1).mean()
            sep = separability(layer.means, run.n_nb)
            rec = reconstruction_error(recon, xb)
            loss = -(loglik + self.eta * sep) + rec_weight * rec
            run.opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(run.params, self.max_grad_norm)
            run.opt.step()
            sums += idx.numel() * np.array(
                [
                    float(loglik.detach()),
                    float(sep.detach()),
                    float(rec.detach()),
                    float(code.detach().std(0).mean()),
                ]
            )
        return sums / max(n, 1), n_agree

    def _store_fitted(self, run):
        """The trained autoencoder, the mixture (components in first-appearance
        order) and the labels, as fitted attributes."""
        run.net.eval()
        trained = run.ae._fitted_state()
        trained["network"] = run.net.state_dict()
        ae = clone(run.ae)._load_fitted_state(trained, run.device)
        layer, k = run.layer, run.k
        with torch.no_grad():
            # float64 from the free parameters: an exact simplex, positive variances
            means = layer.means.detach().to("cpu", torch.float64).numpy()
            variances = torch.exp(2 * layer.log_std.detach().to("cpu", torch.float64)).numpy()
            weights = torch.softmax(layer.logits.detach().to("cpu", torch.float64), 0).numpy()
        component = self._posterior(ae.transform(run.X_raw), means, variances, weights)[1].argmax(
            axis=1
        )
        order = _first_appearance_order(component, k)
        means, variances, weights = means[order], variances[order], weights[order]
        rank = np.empty(k, dtype=np.int64)
        rank[order] = np.arange(k)
        self.autoencoder_ = ae
        self.gmm_init_ = run.gmm
        self.labels_init_ = run.labels_init
        self.means_ = means
        self.covariances_ = variances
        self.weights_ = weights
        self.history_ = run.history
        self.n_pseudo_label_epochs_ = _n_pseudo_label_epochs(run.history)
        self.n_neighbor_components_ = run.n_nb
        self.labels_ = rank[component]  # the components renumbered by `order`

    def _initial_mixture(self, codes, k, seed):
        """The starting mixture and the partition it was made from."""
        reg = max(self.reg_covar, 1e-6)
        if self.init == "em":
            gmm = GaussianMixture(
                k, covariance_type="diag", n_init=self.gmm_n_init, reg_covar=reg, random_state=seed
            ).fit(codes)
            return gmm, gmm.predict(codes)
        labels = GDLClustering(k, random_state=seed).fit_predict(codes)
        return mixture_from_partition(codes, labels, k, reg), labels

    def _component_log_prob(self, layer, code):
        """``log w_k + log N(code | mu_k, var_k + reg_covar)``, shape (batch, K)."""
        if self.reg_covar > 0:
            log_std = 0.5 * torch.log(layer.variances + self.reg_covar)
            return _joint_log_prob(code, layer.means, log_std, torch.log_softmax(layer.logits, 0))
        return layer.joint_log_prob(code)

    # ------------------------------------------------------------ inference
    def _posterior(self, codes, means=None, variances=None, weights=None):
        """``(log p(y), p(c_k | y))`` in float64 from the fitted mixture."""
        if means is None:
            means, variances, weights = self.means_, self.covariances_, self.weights_
        y = torch.as_tensor(np.asarray(codes, dtype=np.float64))
        log_std = 0.5 * torch.log(torch.as_tensor(variances) + self.reg_covar)
        jl = _joint_log_prob(
            y, torch.as_tensor(means), log_std, torch.log(torch.as_tensor(weights))
        )
        log_p = torch.logsumexp(jl, dim=1)
        return log_p.numpy(), torch.exp(jl - log_p[:, None]).numpy()

    def _codes(self, X):
        check_is_fitted(self, "autoencoder_")
        # names and size checked here; the autoencoder gets arrays, as in fit
        X2, sample_shape = check_features(self, X, reset=False, min_samples=1)
        return self.autoencoder_.transform(X2.reshape((X2.shape[0], *sample_shape)))

    def transform(self, X):
        """The learned code of each sample.

        Parameters
        ----------
        X : array-like of the training samples' shape
            Samples to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components), float32
            The trained encoder's output for each sample, the space the
            mixture lives in.
        """
        return self._codes(X)

    def predict_proba(self, X):
        """Posterior probability of each component (rows sum to 1).

        Parameters
        ----------
        X : array-like of the training samples' shape
            Samples to assign.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters)
            ``p(c_k | code)`` for each sample and component, in the order
            of ``labels_``; each row sums to 1.
        """
        return self._posterior(self._codes(X))[1]

    def predict(self, X):
        """Most probable component of each sample.

        Parameters
        ----------
        X : array-like of the training samples' shape
            Samples to assign.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            The component of largest posterior probability of each sample,
            numbered as in ``labels_``.
        """
        return self.predict_proba(X).argmax(axis=1)

    def score_samples(self, X):
        """Log-likelihood of each sample's code under the mixture.

        Parameters
        ----------
        X : array-like of the training samples' shape
            Samples to score.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            ``log p(code)`` of each sample under the fitted mixture; low
            values mark samples far from every component (outliers).
        """
        return self._posterior(self._codes(X))[0]

    def score(self, X, y=None):
        """Mean log-likelihood of the codes of ``X`` (as ``GaussianMixture.score``).

        Parameters
        ----------
        X : array-like of the training samples' shape
            Samples to score.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        log_likelihood : float
            The mean of :meth:`score_samples` over ``X``.
        """
        return float(self.score_samples(X).mean())

    def fit_predict(self, X, y=None):
        """Fit and return ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Training samples, as in :meth:`fit`.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            ``labels_``: the most probable component of each training sample.
        """
        return self.fit(X).labels_

    @property
    def _n_features_out(self):
        return self.means_.shape[1]

    def get_feature_names_out(self, input_features=None):
        """Output feature names: ``deepgmmclustering0``, ... for the code dimensions.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Not used: the names depend only on the number of code
            dimensions. Present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of :meth:`transform`'s output.
        """
        check_is_fitted(self, "means_")
        name = type(self).__name__.lower()
        return np.asarray([f"{name}{i}" for i in range(self._n_features_out)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
