"""JULEClustering and JULETransformer: a CNN and agglomerative clustering learned jointly.

The loop (Yang, Parikh & Batra, CVPR 2016, Algorithm 1, in the order of the
authors' Torch code):

1. over-cluster the raw (L2-normalised) inputs: components of the 1-NN graph;
2. repeat: train the network ``epochs_per_period`` epochs on the current
   labels with the triplet loss (backward pass); embed all samples; rebuild
   the kNN graph and the affinities; merge ``ceil(eta * n_c)`` clusters
   (forward pass, eq. 7), until ``n_clusters`` remain;
3. "SF" labels = that final partition; "RC" labels = a fresh agglomerative
   run (1-NN start, all merges, no training) on the final embedding.
"""

import math
import os
import time
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._engine._graph import knn_vote
from .._engine._merge import MergeEngine
from .._engine._nclusters import choose_n_clusters
from .._progress import progress_bar
from .._validation import (
    check_features,
    check_finite_training,
    check_n_clusters,
    check_threshold_params,
    fit_guard,
    l2_normalize,
    resolve_n_neighbors,
    warn_if_few_distinct,
)
from ._checkpoint import Checkpointer, module_digest, random_state_digest
from ._inputs import input_scaling, network_input, new_network_input, resolve_image_shape
from ._networks import build_cnn, build_mlp, resolve_device, wrap_backbone
from ._persistence import NetworkPickleMixin
from ._training import Trainer, embed

__all__ = ["JULEClustering", "JULETransformer"]


# eta="auto": this many periods from the initial over-clustering to K.
AUTO_PERIODS = 4

# max_steps_per_period="auto": a period sees at most this many times sqrt(n)
# images - all epochs_per_period (20) epochs up to 2,500 samples, 10 epochs at
# 10,000, 3.8 at 70,000 - so the training of a period grows as sqrt(n).
AUTO_IMAGES_PER_SQRT_N = 1000


@dataclass
class _Run:
    """The working state of one JULE fit, passed between its steps."""

    n: int
    sample_shape: tuple
    unknown_k: bool = False
    raw_choice: object = None
    history: list = field(default_factory=list)
    period: int = 0
    done: bool = False
    ckpt: object = None
    # set by _set_up / _start_or_resume: k, ks, image_shape, rng, device, raw,
    # scaling, Xt, model, generator, trainer, engine, feats, n_initial, eta


# The Parameters section shared by JULEClustering and JULETransformer.
_PARAMETERS_DOC = """Parameters
    ----------
    n_clusters : int or None, default=10
        Number of clusters ``K``. ``None`` chooses it: the rule of
        :class:`GDLClustering` (``n_clusters=None``) on the raw
        (L2-normalised) inputs gives ``K0``; the periods train towards it (at
        least 2) and the result has ``K0`` clusters (with ``recluster=False``,
        the training target) - or, with ``distance_threshold``, as many as
        the cut of the final re-clustering at that threshold leaves. See the documentation
        page "Unknown number of clusters" for what this costs.
    distance_threshold : float or None, default=None
        With ``n_clusters=None``: cut the final re-clustering (RC, on the
        learned embedding) at the first merge whose eq. 7 loss is at or above
        this value, as :class:`GDLClustering` does. Needs ``recluster=True``.
    image_shape : tuple or None, default=None
        ``(H, W)`` or ``(H, W, C)`` when ``X`` is given flat as ``(n, H*W*C)``
        (channels last). ``None`` with 2-D ``X`` treats rows as feature vectors
        (MLP backbone); ``(n, H, W)`` and ``(n, H, W, C)`` arrays carry their
        shape.
    eta : float or "auto", default="auto"
        Unrolling rate: a period merges ``ceil(eta * n_c)`` clusters. The paper
        tuned it per data set with the labels: 0.9 for digits and objects, 0.2
        for faces. ``"auto"`` derives it from the data instead: the rate that
        takes 4 periods from the initial over-clustering (``n_0`` clusters) to
        ``K``, ``1 - (K / n_0) ** (1 / 4)``, within [0.2, 0.9] (fitted value in
        ``eta_``).
    n_neighbors : int or "auto", default="auto"
        ``Ks`` of the kNN graph. ``"auto"``: ``n_samples / n_clusters / 7``
        clipped to [10, 20] - the paper's 20 on sets with 140 or more samples
        per cluster, fewer on small sets with a few dozen samples per cluster
        (see :class:`GDLClustering`).
    a : float, default=1.0
        Scale of ``sigma^2`` (eq. 4).
    n_cluster_neighbors : int, default=5
        ``Kc``: neighbour clusters of eq. 7 (and the negatives per anchor with
        ``negatives="nearest"``).
    lam : float, default=1.0
        ``lambda`` of eqs. 7 and 11.
    gamma : float, default=1.0
        Weight of the positive pair in the triplet loss. The paper's Table 2
        value, 2.0, belongs to the ``"weighted"`` loss (eq. 11); the authors'
        code used 1.0 with the margin loss, the better of the two with it.
    loss : {"margin", "weighted"}, default="margin"
        ``"margin"`` is the authors' code:
        ``mean max(0, gamma ||a-p||^2 - ||a-n||^2 + margin)``. ``"weighted"`` is
        eq. 11, ``-lam/(Kc-1) mean (gamma A(a,p) - A(a,n))`` with the eq. 4
        affinity ``A = exp(-d^2 / sigma2)``, ``sigma2 = a *`` the batch's mean
        squared distance. The margin form is the default because it clusters
        better: eq. 11 with ``gamma=2`` can pull every embedding onto one point
        (a contraction costs it nothing once positives and negatives are
        equally far), and with ``gamma=1`` it scores below the margin form.
    margin : float, default=0.2
        Margin of the ``"margin"`` loss.
    negatives : {"random", "nearest"}, default="random"
        Negatives of each anchor among the batch's samples of other clusters:
        random ones (the authors' code) or the nearest ones (the paper's text).
    n_negatives : int or None, default=None
        Negatives per anchor; None means 20 for ``"random"`` (the authors'
        code) and ``n_cluster_neighbors`` (``Kc``) for ``"nearest"``.
    epochs_per_period : int, default=20
        Training epochs in each backward pass, up to ``max_steps_per_period``.
    max_steps_per_period : int, "auto" or None, default="auto"
        The most SGD steps (batches) of a backward pass. ``"auto"``: a period
        sees at most ``1000 * sqrt(n)`` images, i.e. ``ceil(1000 * sqrt(n) /
        batch_size)`` steps - all ``epochs_per_period`` epochs on sets of up to
        2,500 samples (with the defaults), 10 epochs at 10,000 and 3.8 at
        70,000, so the cost of a period grows as ``sqrt(n)`` instead of ``n``
        (fitted value in ``max_steps_per_period_``). An int is a fixed budget;
        ``None`` always trains ``epochs_per_period`` epochs (the paper's
        schedule).
    batch_size : int, default=100
        Samples per SGD step.
    batch_sampling : {"random", "cluster"}, default="random"
        Random permutations (the authors' code) or batches packed with groups
        of same-cluster samples.
    learning_rate, momentum, weight_decay : float, default=0.01, 0.9, 5e-5
        SGD settings of the paper.
    lr_gamma, lr_power : float, default=1e-4, 0.75
        The "inv" policy: ``lr = learning_rate * (1 + lr_gamma * iter) ** -lr_power``.
    embedding_dim : int, default=160
        Size of the learned embedding (the network's L2-normalised output).
    recluster : bool, default=True
        Return the "RC" labels (a fresh agglomerative run on the final
        embedding); ``False`` returns the "SF" labels. Both are stored.
    small_cluster_fraction : float or None, default=0.05
        The final cut of :class:`GDLClustering`: clusters smaller than
        ``small_cluster_fraction * n / K`` are attached to large ones instead of
        surviving as clusters.
    normalize : bool, default=True
        L2-normalise the raw inputs for the initial over-clustering.
    knn_method : {"auto", "exact", "nndescent"}, default="auto"
        How the kNN graph is built: exact search by blocked matrix products,
        or pynndescent. ``"auto"`` picks exact search when
        ``2 * n^2 * d <= 4e11``.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU. CUDA timings have
        not been measured by the developers (no GPU was available).
    random_state : int, RandomState instance or None, default=None
        Seeds network initialisation, batch order and NN-descent: a fixed
        seed gives identical labels on the CPU.
    n_jobs : int or None, default=None
        Threads for NN-descent.
    verbose : int, default=0
        1: progress bars over periods and over the epochs of each period;
        2: also over merges.
    checkpoint_dir : str, path or None, default=None
        Folder for a checkpoint written at the end of every period (network,
        optimiser, random states, clusters). A fit that is killed and started
        again with the same data, parameters, seed and starting network
        resumes from the last completed period and ends with the same labels
        as an uninterrupted run; anything else starts afresh. Use an int
        ``random_state``: with ``None`` every fit draws a new seed and never
        resumes. The file stays after the fit (re-running then takes only the
        final re-clustering); delete it to free the space. Files hold only
        tensors, arrays and plain values and are read with
        ``torch.load(weights_only=True)``: a foreign file is ignored with a
        warning, never executed.
    backbone : torch.nn.Module, callable or None, default=None
        Replaces the paper's CNN (or the MLP): a module mapping a batch of
        inputs - ``(batch, C, H, W)`` for images, ``(batch, n_features)``
        otherwise - to ``(batch, d)`` features, e.g. a pretrained network
        loaded from disk (TorchScript from ``torch.jit.load`` included); or a
        callable that builds such a module from the
        input shape ``(C, H, W)`` / ``(n_features,)``. A linear layer to
        ``embedding_dim`` and L2 normalisation are added on top, as in the
        paper. The module is copied: the one passed in is never trained.
        Inputs reach it standardised by one global mean and std.
    freeze_backbone : bool, default=False
        Train only the linear head on top of ``backbone``: the backbone's
        parameters get ``requires_grad=False`` and it stays in eval mode
        (BatchNorm statistics and dropout frozen) through the whole fit, so
        JULE clusters fixed (e.g. pretrained) features through a learned
        projection; faster, and nothing learned before is lost. ``False``
        fine-tunes the copied backbone with the head. No effect without a
        ``backbone``.

"""


class _JULEBase(
    NetworkPickleMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Shared fit logic of JULEClustering and JULETransformer."""

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "distance_threshold": [Real, None],
        "image_shape": ["array-like", None],
        "eta": [Interval(Real, 0, 1, closed="right"), StrOptions({"auto"})],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "a": [Interval(Real, 0, None, closed="neither")],
        "n_cluster_neighbors": [Interval(Integral, 1, None, closed="left")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "loss": [StrOptions({"margin", "weighted"})],
        "margin": [Interval(Real, 0, None, closed="left")],
        "negatives": [StrOptions({"nearest", "random"})],
        "n_negatives": [Interval(Integral, 1, None, closed="left"), None],
        "epochs_per_period": [Interval(Integral, 0, None, closed="left")],
        "max_steps_per_period": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "batch_sampling": [StrOptions({"random", "cluster"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_gamma": [Interval(Real, 0, None, closed="left")],
        "lr_power": [Interval(Real, 0, None, closed="left")],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "recluster": ["boolean"],
        "small_cluster_fraction": [Interval(Real, 0, 1, closed="both"), None],
        "normalize": ["boolean"],
        "knn_method": [StrOptions({"auto", "exact", "nndescent"})],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
        "checkpoint_dir": [str, os.PathLike, None],
        "backbone": [callable, None],
        "freeze_backbone": ["boolean"],
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
    ):
        self.n_clusters = n_clusters
        self.distance_threshold = distance_threshold
        self.image_shape = image_shape
        self.eta = eta
        self.n_neighbors = n_neighbors
        self.a = a
        self.n_cluster_neighbors = n_cluster_neighbors
        self.lam = lam
        self.gamma = gamma
        self.loss = loss
        self.margin = margin
        self.negatives = negatives
        self.n_negatives = n_negatives
        self.epochs_per_period = epochs_per_period
        self.max_steps_per_period = max_steps_per_period
        self.batch_size = batch_size
        self.batch_sampling = batch_sampling
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_gamma = lr_gamma
        self.lr_power = lr_power
        self.embedding_dim = embedding_dim
        self.recluster = recluster
        self.small_cluster_fraction = small_cluster_fraction
        self.normalize = normalize
        self.knn_method = knn_method
        self.device = device
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.backbone = backbone
        self.freeze_backbone = freeze_backbone

    # ------------------------------------------------------------------ pieces
    def _engine(self, n_neighbors, rng):
        return MergeEngine(
            n_neighbors=n_neighbors,
            a=self.a,
            n_cluster_neighbors=self.n_cluster_neighbors,
            lam=self.lam,
            knn_method=self.knn_method,
            random_state=rng,
            n_jobs=self.n_jobs,
            verbose=self.verbose > 1,
        )

    def _build_network(self, image_shape, n_features, seed):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self.backbone is not None:
                return wrap_backbone(
                    self.backbone,
                    image_shape,
                    n_features,
                    self.embedding_dim,
                    freeze=self.freeze_backbone,
                )
            if image_shape is None:
                return build_mlp(n_features, self.embedding_dim)
            return build_cnn(image_shape, self.embedding_dim)

    def _loss_kwargs(self, generator, loss=None):
        """Keyword arguments of the triplet loss ``loss`` (default ``self.loss``)."""
        n_neg = self.n_negatives
        if n_neg is None:
            n_neg = self.n_cluster_neighbors if self.negatives == "nearest" else 20
        common = dict(
            gamma=self.gamma, n_negatives=n_neg, negatives=self.negatives, generator=generator
        )
        if (self.loss if loss is None else loss) == "weighted":
            return dict(a=self.a, lam=self.lam, **common)
        return dict(margin=self.margin, **common)

    def _step_budget(self, n):
        """The most SGD steps of a period on ``n`` samples (None: no budget)."""
        if self.max_steps_per_period == "auto":
            return math.ceil(AUTO_IMAGES_PER_SQRT_N * math.sqrt(n) / self.batch_size)
        return self.max_steps_per_period

    def _epochs_this_period(self, n):
        """Epochs a period starts (the last one may be cut by the step budget)."""
        budget = self._step_budget(n)
        if budget is None:
            return self.epochs_per_period
        per_epoch = math.ceil(n / self.batch_size)
        return min(self.epochs_per_period, math.ceil(budget / per_epoch))

    def _resolve_eta(self, n_initial, k):
        """``eta``, or for ``"auto"`` the rate that takes ``AUTO_PERIODS``
        periods from the initial over-clustering to ``k``, within [0.2, 0.9]."""
        if self.eta != "auto":
            return float(self.eta)
        if n_initial <= k:
            return 0.9
        return float(np.clip(1.0 - (k / n_initial) ** (1.0 / AUTO_PERIODS), 0.2, 0.9))

    # ------------------------------------------------------------------ fit
    def _fit(self, X):
        """Run JULE; fitted attributes are only set once everything succeeded,
        so an interrupted fit (KeyboardInterrupt, error) never leaves an
        estimator that looks fitted with half its state."""
        run = self._set_up(X)
        self._start_or_resume(run)
        bar = progress_bar(desc="JULE periods", enabled=self.verbose > 0, initial=run.period)
        while not run.done:  # train on the current labels, re-embed, merge
            stats = self._period(run)
            bar.update(1)
            bar.set_postfix(clusters=run.engine.n_clusters_, loss=f"{stats['mean_loss']:.4f}")
        bar.close()
        final, n_final_merges, choice = self._recluster(run)
        rc = final.hierarchy(n_final_merges)
        extra = self._final_stage(run, rc.labels)
        self._store_fitted(run, final, rc, choice)
        for name, value in extra.items():
            setattr(self, name, value)
        return self

    def _final_stage(self, run, labels):
        """A subclass's work after the final clustering ``labels``; returns
        fitted attributes to set (after, and over, the common ones)."""
        return {}

    def _set_up(self, X):
        """Validate, choose K and Ks, build the network, trainer and checkpointer."""
        X, sample_shape = check_features(self, X, reset=True, min_samples=2)
        n = X.shape[0]
        check_threshold_params(self.n_clusters, self.distance_threshold)
        if self.distance_threshold is not None and not self.recluster:
            raise ValueError(
                "distance_threshold cuts the final re-clustering: it needs recluster=True."
            )
        run = _Run(n=n, sample_shape=tuple(sample_shape))
        run.unknown_k = self.n_clusters is None
        k = None if run.unknown_k else check_n_clusters(self.n_clusters, n)
        warn_if_few_distinct(X, k)
        run.image_shape = resolve_image_shape(sample_shape, self.image_shape)
        run.rng = rng = check_random_state(self.random_state)
        seed_digest = random_state_digest(rng)  # before anything is drawn
        run.device = resolve_device(self.device)
        run.raw = l2_normalize(X) if self.normalize else X
        if run.unknown_k:
            # K chosen on the raw inputs (GDLClustering's rule) is the training
            # target (at least 2, so the triplet loss has negatives) and the
            # final K. Choosing again on the learned embedding measured worse.
            run.raw_choice = choose_n_clusters(
                lambda m: self._engine(m, rng),
                run.raw,
                self.n_neighbors,
                rng=rng,
                on_sphere=self.normalize,
            )
            k = min(max(2, run.raw_choice.n_clusters), n)
        run.k = k
        run.ks = min(resolve_n_neighbors(self.n_neighbors, n, k), n - 1)
        run.scaling = input_scaling(X)
        run.Xt = network_input(X, run.image_shape, *run.scaling)
        run.model = self._build_network(
            run.image_shape, X.shape[1], int(rng.randint(2**31 - 1))
        ).to(run.device)
        run.generator = torch.Generator().manual_seed(int(rng.randint(2**31 - 1)))
        run.trainer = Trainer(
            run.model,
            run.device,
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            lr_gamma=self.lr_gamma,
            lr_power=self.lr_power,
        )
        if self.checkpoint_dir is not None:
            # the fit is identified by its data, parameters, seed and starting network
            run.ckpt = Checkpointer(
                self.checkpoint_dir, self, X, extra=seed_digest + module_digest(run.model)
            )
        return run

    def _start_or_resume(self, run):
        """The initial over-clustering of the raw inputs, or the last checkpoint."""
        state = run.ckpt.load(run.device) if run.ckpt is not None else None
        run.engine = self._engine(run.ks, run.rng)
        if state is None:
            run.feats = run.raw
            run.engine.start(run.feats, min_clusters=run.k)
        else:  # resume after the last completed period
            run.model.load_state_dict(state["model"])
            run.trainer.optimizer.load_state_dict(state["optimizer"])
            run.trainer.iteration = state["iteration"]
            run.rng.set_state(state["rng"])
            run.generator.set_state(state["generator"])
            run.engine.load_state_dict(state["engine"])
            run.feats, run.history = state["features"], state["history"]
            run.period, run.done = state["period"], state["done"]
        run.n_initial = run.engine.n_initial_clusters_
        run.eta = self._resolve_eta(run.n_initial, run.k)

    def _period(self, run):
        """One period: train on the current labels, re-embed, merge, checkpoint."""
        engine, k = run.engine, run.k
        n_start = engine.n_clusters_
        epochs = self._epochs_this_period(run.n)
        epoch_bar = progress_bar(
            total=epochs,
            desc=f"period {run.period} ({n_start} clusters): epochs",
            enabled=self.verbose > 0,
        )
        stats = run.trainer.train(
            run.Xt,
            engine.labels_,
            epochs=epochs,
            max_steps=self._step_budget(run.n),
            batch_size=self.batch_size,
            loss=self.loss,
            sampling=self.batch_sampling,
            rng=run.rng,
            loss_kwargs=self._loss_kwargs(run.generator),
            bar=epoch_bar,
        )
        epoch_bar.close()
        t0 = time.perf_counter()
        run.feats = check_finite_training(embed(run.model, run.Xt, run.device), self.learning_rate)
        engine.rebuild(run.feats)
        target = max(k, n_start - math.ceil(run.eta * n_start))
        engine.merge_until(
            target,
            n_final=k,
            small_cluster_fraction=self.small_cluster_fraction if target == k else None,
        )
        stats["merge_seconds"] = time.perf_counter() - t0
        run.history.append(
            dict(
                period=run.period,
                n_clusters_start=n_start,
                n_clusters_end=engine.n_clusters_,
                epochs=epochs,
                **stats,
            )
        )
        run.period += 1
        run.done = engine.n_clusters_ <= k
        if run.ckpt is not None:
            run.ckpt.save(
                dict(
                    model=run.model.state_dict(),
                    optimizer=run.trainer.optimizer.state_dict(),
                    iteration=run.trainer.iteration,
                    rng=run.rng.get_state(),
                    generator=run.generator.get_state(),
                    engine=engine.state_dict(),
                    features=run.feats,
                    history=run.history,
                    period=run.period,
                    done=run.done,
                )
            )
        return stats

    def _recluster(self, run):
        """RC: re-cluster the final embedding from scratch (or keep SF)."""
        if not self.recluster:
            return run.engine, run.engine.n_merged_, None
        t0 = time.perf_counter()
        choice, n_final_merges, k = None, None, run.k
        if run.unknown_k and self.distance_threshold is not None:
            choice = choose_n_clusters(
                lambda m: self._engine(m, run.rng),
                run.feats,
                self.n_neighbors,
                distance_threshold=self.distance_threshold,
                rng=run.rng,
            )
        elif run.unknown_k:
            k = run.raw_choice.n_clusters
        if choice is not None and choice.cut is not None:
            final, n_final_merges = choice.engine, choice.cut
        else:
            final = self._engine(run.ks, run.rng)
            final.start(
                run.feats, graph=None if choice is None else choice.engine.graph_, min_clusters=k
            )
            final.merge_until(k, small_cluster_fraction=self.small_cluster_fraction)
        n_final_merges = final.n_merged_ if n_final_merges is None else n_final_merges
        run.history.append(
            dict(
                period="RC",
                n_clusters_start=final.n_initial_clusters_,
                n_clusters_end=run.n - n_final_merges,
                epochs=0,
                merge_seconds=time.perf_counter() - t0,
            )
        )
        return final, n_final_merges, choice

    def _store_fitted(self, run, final, rc, choice):
        """Everything succeeded: set the fitted attributes."""
        self.n_neighbors_ = run.ks
        self.image_shape_ = run.image_shape
        self.sample_shape_ = run.sample_shape
        self.device_ = run.device
        self.input_scaling_ = run.scaling
        self.n_initial_clusters_ = run.n_initial
        self.eta_ = run.eta
        self.max_steps_per_period_ = self._step_budget(run.n)
        self.embedding_ = run.feats
        sf = run.engine.hierarchy()
        self.labels_sf_, self.children_sf_ = sf.labels, sf.children
        self.labels_, self.children_ = rc.labels, rc.children
        self.merge_losses_, self.n_clusters_ = rc.merge_losses, rc.n_clusters
        if run.unknown_k and choice is None:
            self.modularity_ = run.raw_choice.modularity
            self.cut_ratio_ = run.raw_choice.cut_ratio
        self.sigma2_ = final.graph_.sigma2
        self.history_ = run.history
        self.network_ = run.model.eval()

    # ------------------------------------------------------------------ embed
    def _embed_new(self, X):
        Xt = new_network_input(self, X)  # checks fitted first
        return embed(self.network_, Xt, self.device_)

    def transform(self, X):
        """Embed ``X`` with the trained network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples of the same shape as in ``fit``.

        Returns
        -------
        Z : ndarray of shape (n_samples, embedding_dim)
            L2-normalised embeddings (float32).
        """
        return self._embed_new(X)

    def fit_transform(self, X, y=None):
        """Fit and return the embedding of ``X`` (``embedding_``).

        Parameters
        ----------
        X : array-like
            Training images (or feature vectors).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        Z : ndarray of shape (n_samples, embedding_dim)
            The learned, L2-normalised embedding of ``X``.
        """
        return self.fit(X).embedding_.copy()

    @property
    def _n_features_out(self):
        return self.embedding_.shape[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The network computes in float32: embeddings are float32 whatever the input.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class JULEClustering(ClusterMixin, _JULEBase):
    """JULE: joint unsupervised learning of a CNN representation and image clusters.

    Agglomerative clustering (graph-degree linkage, eq. 7 merges) runs as the
    forward pass of a recurrent process, and a CNN trained with a triplet loss
    on the current clusters as its backward pass, period after period (partial
    unrolling with rate ``eta``). Images of any size are accepted: the CNN's
    depth follows the paper's rule (5x5 conv/50 channels/BN/ReLU/2x2 pool
    blocks until the map is about 10x10, a linear layer to 160 units, L2
    normalisation). Plain feature vectors get an MLP.

    %(parameters)s

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Final labels (RC when ``recluster``).
    labels_sf_ : ndarray of shape (n_samples,)
        Labels when the recurrent loop ends ("SF").
    embedding_ : ndarray of shape (n_samples, embedding_dim)
        Learned features of the training data.
    children_, merge_losses_ : ndarray
        Merge history of the run that produced ``labels_`` (see
        :class:`GDLClustering`); ``children_sf_`` is that of the SF run.
    n_clusters_ : int
        Number of clusters of ``labels_`` (the choice with ``n_clusters=None``).
    modularity_, cut_ratio_ : ndarray, float
        Only with ``n_clusters=None`` and no threshold: the evidence of the
        choice on the raw inputs, as in :class:`GDLClustering`.
    n_initial_clusters_ : int
        Clusters of the initial over-clustering of the raw inputs.
    eta_ : float
        The unrolling rate used (resolves ``"auto"``).
    max_steps_per_period_ : int or None
        The step budget of a period used (resolves ``"auto"``).
    n_neighbors_ : int
        ``Ks`` used (resolves ``"auto"``).
    input_scaling_ : tuple of float
        ``(scale, mean, std)``: the network's input is ``(X / scale - mean) /
        std``, one value each for all pixels. To use ``network_`` on its own
        (e.g. exported to TorchScript for :class:`~skjule.FeatureExtractor`,
        which scales 8-bit pixels to [0, 1]), pass ``mean`` and ``std`` on when
        ``scale`` is the data's full range (255 for 8-bit images, 1 for [0, 1]).
    history_ : list of dict
        Per period: ``n_clusters_start``, ``n_clusters_end``, ``epochs``,
        ``steps`` (SGD steps), ``mean_loss``, ``triplets_per_batch``, ``train_seconds``,
        ``images_per_second``, ``merge_seconds``; the last entry is the RC run.
    network_ : torch.nn.Module
        The trained network (eval mode).
    image_shape_ : tuple or None
        ``(H, W, C)`` used by the CNN, None for the MLP.
    device_ : torch.device
        The device the network ran on (resolves ``"auto"``).
    n_features_in_ : int
        Number of features seen during ``fit`` (the flattened size of a
        sample).
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during ``fit``. Defined only when ``X``
        has feature names that are all strings (a pandas DataFrame, for
        example); ``predict`` and ``transform`` then check that they get the
        same columns in the same order.

    See Also
    --------
    JULETransformer : The learned embedding as a transformer.
    GDLClustering : The agglomerative engine alone on fixed features.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skjule import JULEClustering
    >>> X, y = load_digits(return_X_y=True)
    >>> jule = JULEClustering(n_clusters=10, epochs_per_period=2, random_state=0)
    >>> labels = jule.fit_predict(X.reshape(-1, 8, 8))
    >>> labels.shape
    (1797,)
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the network and the clusters of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, H, W) or (n_samples, H, W, C)
            Training images (or feature vectors).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : JULEClustering
            The fitted estimator.
        """
        with fit_guard(self):
            return self._fit(X)

    def predict(self, X):
        """Cluster of each sample of ``X`` from its nearest training samples.

        ``X`` is embedded with the trained network; each sample takes the
        label with the largest sum of eq. 4 weights ``exp(-d^2 / sigma2_)``
        over its ``n_neighbors`` nearest training embeddings.

        Parameters
        ----------
        X : array-like of the same sample shape as in ``fit``
            New samples.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster of each sample, in ``range(n_clusters_)``.
        """
        Z = self._embed_new(X)
        return knn_vote(
            Z, self.embedding_, self.labels_, self.n_clusters_, self.n_neighbors_, self.sigma2_
        )

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
            Cluster of each training sample (``labels_``).
        """
        return self.fit(X).labels_


class JULETransformer(_JULEBase):
    """The representation learned by JULE, as a transformer.

    Trains exactly as :class:`JULEClustering` (same parameters) and
    ``transform`` returns the network's L2-normalised embedding, ready for any
    other clusterer: ``Pipeline([("jule", JULETransformer(10)), ("km", KMeans(10))])``.
    The clusters found during training are kept in ``labels_``.

    %(parameters)s

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, embedding_dim)
    labels_ : ndarray of shape (n_samples,)
    network_ : torch.nn.Module
    history_ : list of dict
    n_features_in_ : int
        Number of features seen during ``fit`` (the flattened size of a
        sample).
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during ``fit``. Defined only when ``X``
        has feature names that are all strings (a pandas DataFrame, for
        example); ``transform`` then checks that it gets the same columns in
        the same order.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.pipeline import make_pipeline
    >>> from skjule import JULETransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = make_pipeline(JULETransformer(10, epochs_per_period=2, random_state=0),
    ...                      KMeans(10, n_init=10, random_state=0))
    >>> pipe.fit_predict(X).shape
    (1797,)
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the network on ``X``.

        Parameters
        ----------
        X : array-like
            Training images (or feature vectors), as in
            :meth:`JULEClustering.fit`.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : JULETransformer
            The fitted transformer.
        """
        with fit_guard(self):
            return self._fit(X)


for _cls in (JULEClustering, JULETransformer):
    _cls.__doc__ = _cls.__doc__.replace("%(parameters)s", _PARAMETERS_DOC.strip("\n"))
