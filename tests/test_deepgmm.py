import pickle

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skjule import AutoencoderTransformer, DeepGMMClustering, GDLClustering
from skjule._deep._deepgmm import GMMLayer, _joint_log_prob, mixture_from_partition, separability

TINY_AE = dict(hidden_dims=(16,), epochs=2, random_state=0)
# The paper's method (EM start, no pseudo-label stage), for the tests of its joint stage.
PAPER = dict(init="em", pseudo_label_epochs=0)


# scikit-learn's estimator checks, all of them. The only skips come from scikit-learn
# itself: check_array_api_input is skipped unless SCIPY_ARRAY_API=1 is set. It does
# not apply: skjule estimators take numpy-convertible input (torch and numba kernels
# run on numpy/CPU tensors) and do not declare array-API support.
@parametrize_with_checks(
    [
        DeepGMMClustering(
            3,
            pseudo_label_epochs=2,
            epochs=2,
            autoencoder=AutoencoderTransformer(3, **TINY_AE),
            random_state=0,
        ),
        AutoencoderTransformer(3, **TINY_AE),
        AutoencoderTransformer(3, variational=True, **TINY_AE),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def ae(digits):
    return AutoencoderTransformer(epochs=15, random_state=0).fit(digits[0])


# ------------------------------------------------------------ gradients (eqs. 7-10)
def _mixture(rng, k=4, d=3):
    means = rng.randn(k, d)
    variances = rng.uniform(0.3, 2.0, size=(k, d))
    weights = rng.dirichlet(np.ones(k))
    return means, variances, weights


def test_autograd_gradients_are_the_papers_equations_7_to_10():
    rng = np.random.RandomState(0)
    means, variances, weights = _mixture(rng)
    layer = GMMLayer(means, variances, weights).double()
    y = torch.tensor(rng.randn(1, 3), requires_grad=True)
    eta, n_nb = 0.3, 2
    objective = layer(y).sum() + eta * separability(layer.means, n_nb)
    objective.backward()

    mu, var, w = means, variances, weights
    yv = y.detach().numpy()[0]
    log_g = np.log(w) - 0.5 * (np.log(2 * np.pi * var).sum(1) + ((yv - mu) ** 2 / var).sum(1))
    post = np.exp(log_g - np.logaddexp.reduce(log_g))  # p(c_k | y)
    # eq. 7: dO/dy = sum_k p(c_k|y) Sigma_k^-1 (mu_k - y)
    np.testing.assert_allclose(
        y.grad.numpy()[0], (post[:, None] * (mu - yv) / var).sum(0), rtol=1e-5
    )
    # eq. 8: dO/dmu_kd = p(c_k|y)(y_d - mu_kd)/sigma_kd^2 + 2 eta sum_{j in n(k)} (mu_kd - mu_jd)
    d2 = ((mu[:, None] - mu[None]) ** 2).sum(2)
    np.fill_diagonal(d2, np.inf)
    nbrs = np.argsort(d2, axis=1)[:, :n_nb]
    sep_grad = 2 * eta * np.stack([(mu[k] - mu[nbrs[k]]).sum(0) for k in range(len(mu))])
    np.testing.assert_allclose(
        layer.means.grad.numpy(), post[:, None] * (yv - mu) / var + sep_grad, rtol=1e-5
    )
    # eq. 9 (in log sigma): p(c_k|y) [(y_d - mu_kd)^2 / sigma_kd^2 - 1]
    np.testing.assert_allclose(
        layer.log_std.grad.numpy(), post[:, None] * ((yv - mu) ** 2 / var - 1), rtol=1e-5
    )
    # eq. 10 (in the softmax logits): p(c_k|y) - w_k
    np.testing.assert_allclose(layer.logits.grad.numpy(), post - w, rtol=1e-5, atol=1e-12)


def test_log_likelihood_gradient_matches_finite_differences():
    rng = np.random.RandomState(1)
    means, variances, weights = _mixture(rng)
    args = (
        torch.tensor(rng.randn(5, 3), requires_grad=True),
        torch.tensor(means, requires_grad=True),
        torch.tensor(0.5 * np.log(variances), requires_grad=True),
        torch.tensor(np.log(weights), requires_grad=True),
    )

    def loglik(y, m, log_std, logits):
        return torch.logsumexp(_joint_log_prob(y, m, log_std, torch.log_softmax(logits, 0)), 1)

    assert torch.autograd.gradcheck(loglik, args)


def test_log_likelihood_equals_scikit_learn(digits):
    X = digits[0][:, :5]
    gm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    layer = GMMLayer(gm.means_, gm.covariances_, gm.weights_).double()
    ours = layer(torch.as_tensor(X)).detach().numpy()
    np.testing.assert_allclose(ours, gm.score_samples(X), rtol=1e-5)


# ------------------------------------------------------------ the estimator
def test_history_code_std_is_the_spread_of_the_codes(digits, ae):
    X, _ = digits
    # Encoder frozen: the codes the mixture sees are the pretrained ones.
    d = DeepGMMClustering(
        10, autoencoder=ae, epochs=1, encoder_learning_rate=0, random_state=0, **PAPER
    ).fit(X)
    Z = ae.transform(X)
    np.testing.assert_allclose(d.history_[0]["code_std"], Z.std(0).mean(), rtol=0.05)


def test_fitted_mixture_is_valid_and_probabilities_sum_to_one(digits, ae):
    X, y = digits
    # A large mixture learning rate: still a simplex and positive variances.
    d = DeepGMMClustering(
        10, eta=0.1, autoencoder=ae, epochs=4, learning_rate=0.1, random_state=0, **PAPER
    ).fit(X)
    for h in d.history_:
        assert abs(h["weight_sum"] - 1) < 1e-5 and h["min_variance"] > 0
        assert h["max_variance"] >= h["min_variance"]
    assert np.all(d.weights_ > 0) and abs(d.weights_.sum() - 1) < 1e-9
    assert np.all(d.covariances_ > 0)
    proba = d.predict_proba(X[:100])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-9)
    np.testing.assert_array_equal(d.predict(X[:100]), proba.argmax(1))
    np.testing.assert_array_equal(d.predict(X), d.labels_)
    scores = d.score_samples(X[:100])
    assert scores.shape == (100,) and np.all(np.isfinite(scores))
    assert d.score(X[:100]) == pytest.approx(scores.mean())
    assert d.transform(X[:7]).shape == (7, 10)


def test_mixture_from_partition_has_the_partitions_moments():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    labels = np.repeat([0, 2, 3], 20)  # label 1 is empty
    gm = mixture_from_partition(X, labels, 4, 1e-6)
    np.testing.assert_allclose(gm.means_[2], X[20:40].mean(0))
    np.testing.assert_allclose(gm.covariances_[3], X[40:].var(0) + 1e-6)
    np.testing.assert_allclose(gm.means_[1], X.mean(0))  # empty: the overall moments
    assert abs(gm.weights_.sum() - 1) < 1e-12 and gm.weights_[1] < 1e-4
    np.testing.assert_allclose(gm.weights_[[0, 2, 3]], 1 / 3, rtol=1e-4)
    # a usable scikit-learn mixture: its log-likelihood is the layer's
    layer = GMMLayer(gm.means_, gm.covariances_, gm.weights_).double()
    np.testing.assert_allclose(
        layer(torch.as_tensor(X)).detach().numpy(), gm.score_samples(X), rtol=1e-6
    )
    assert gm.predict(X).shape == (60,)


def test_gdl_init_starts_from_the_graph_partition(digits, ae):
    X, y = digits
    em = DeepGMMClustering(10, autoencoder=ae, epochs=0, random_state=0, **PAPER).fit(X)
    gdl = DeepGMMClustering(
        10, init="gdl", pseudo_label_epochs=0, autoencoder=ae, epochs=0, random_state=0
    ).fit(X)
    codes = ae.transform(X)
    part = GDLClustering(10, random_state=0).fit_predict(codes)
    np.testing.assert_allclose(
        gdl.gmm_init_.means_[part[0]], codes[part == part[0]].mean(0), rtol=1e-4, atol=1e-5
    )
    assert normalized_mutual_info_score(gdl.labels_init_, part) > 0.95  # the partition itself
    # measured: the graph partition is a better start than EM on these codes
    assert normalized_mutual_info_score(y, gdl.labels_init_) > normalized_mutual_info_score(
        y, em.labels_init_
    )
    with pytest.raises(ValueError, match="init"):
        DeepGMMClustering(10, init="kmeans", autoencoder=ae).fit(X)


def test_pseudo_label_stage_stops_when_the_agreement_stalls_for_two_epochs():
    from skjule._deep._deepgmm import _agreement_stalled

    def hist(*agreement, joint=0):
        return [dict(stage="pseudo-label", agreement=a) for a in agreement] + [
            dict(stage="joint", agreement=float("nan"))
        ] * joint

    assert not _agreement_stalled(hist(0.5, 0.4))  # too few epochs to judge
    assert not _agreement_stalled(hist(0.5, 0.6, 0.55, 0.61))
    assert _agreement_stalled(hist(0.5, 0.6, 0.55, 0.58))
    assert _agreement_stalled(hist(0.5, 0.6, 0.6, 0.6))  # no rise is a stall
    assert _agreement_stalled(hist(0.5, 0.6, 0.55, 0.58, joint=3))  # joint epochs ignored


def test_pseudo_label_epochs_make_the_mixture_reproduce_its_partition(digits, ae):
    X, _ = digits
    kw = dict(init="gdl", autoencoder=ae, epochs=0, random_state=0)
    start = DeepGMMClustering(10, pseudo_label_epochs=0, **kw).fit(X)
    trained = DeepGMMClustering(10, pseudo_label_epochs=8, pseudo_label_patience=2, **kw).fit(X)
    np.testing.assert_array_equal(trained.labels_init_, start.labels_init_)

    def agreement(d):
        return normalized_mutual_info_score(d.labels_init_, d.labels_)

    # the moment-matched mixture does not reproduce the graph partition; training
    # each code towards its own component does
    assert agreement(start) < 0.95
    assert agreement(trained) > agreement(start) + 0.02
    # at most 8 epochs; it stops after the first one that does not raise the agreement
    n_pseudo = trained.n_pseudo_label_epochs_
    assert 2 <= n_pseudo <= 8
    assert [h["stage"] for h in trained.history_] == ["pseudo-label"] * n_pseudo
    agreement = [h["agreement"] for h in trained.history_]
    assert all(0 <= a <= 1 for a in agreement)
    # patience 2: it goes on while one of the last two epochs beats all before them
    assert all(max(agreement[j - 2 : j]) > max(agreement[: j - 2]) for j in range(3, n_pseudo))
    if n_pseudo < 8:
        assert max(agreement[-2:]) <= max(agreement[:-2])
    assert all(np.isfinite(h["log_likelihood"]) for h in trained.history_)
    both = DeepGMMClustering(
        10, pseudo_label_epochs=2, init="gdl", autoencoder=ae, epochs=1, random_state=0
    ).fit(X)
    assert [h["stage"] for h in both.history_] == ["pseudo-label", "pseudo-label", "joint"]
    assert both.n_pseudo_label_epochs_ == 2 and np.isnan(both.history_[2]["agreement"])
    # the joint stage's learning-rate schedule starts after the pseudo-label epochs
    assert both.history_[2]["learning_rate"] == both.learning_rate
    with pytest.raises(ValueError, match="pseudo_label_epochs"):
        DeepGMMClustering(10, pseudo_label_epochs=-1, autoencoder=ae).fit(X)
    with pytest.raises(ValueError, match="pseudo_label_patience"):
        DeepGMMClustering(10, pseudo_label_epochs=2, pseudo_label_patience=0, autoencoder=ae).fit(X)


def test_pseudo_label_stage_runs_all_its_epochs_without_patience(digits, ae):
    X, _ = digits
    kw = dict(init="gdl", autoencoder=ae, epochs=0, random_state=0, pseudo_label_epochs=6)
    full = DeepGMMClustering(10, **kw).fit(X)
    assert full.n_pseudo_label_epochs_ == 6
    early = DeepGMMClustering(10, pseudo_label_patience=1, **kw).fit(X)
    agreement = [h["agreement"] for h in full.history_]
    # patience 1 stops after the first epoch that does not beat all before it
    stop = next((j + 1 for j in range(1, 6) if agreement[j] <= max(agreement[:j])), 6)
    assert early.n_pseudo_label_epochs_ == stop


def test_divergence_is_reported(digits, ae):
    with pytest.raises(ValueError, match="diverged"):
        DeepGMMClustering(
            10,
            autoencoder=ae,
            epochs=3,
            learning_rate=50.0,
            encoder_learning_rate=1.0,
            max_grad_norm=None,
            random_state=0,
            **PAPER,
        ).fit(digits[0])


def test_clusters_digits_and_eta_zero_is_the_ablation(digits, ae):
    X, y = digits
    base = normalized_mutual_info_score(y, ae.transform(X).argmax(1))
    for eta in (0.0, 0.01):
        d = DeepGMMClustering(10, eta=eta, autoencoder=ae, epochs=5, random_state=0, **PAPER).fit(X)
        nmi = normalized_mutual_info_score(y, d.labels_)
        assert nmi > 0.6 > base
        assert d.history_[0]["separability"] > 0


def test_defaults_keep_the_clusters_where_the_papers_method_collapses(digits, ae):
    """The collapse-prone case: a heavy separability weight. The paper's joint
    stage drags most samples into one component; the default schedule (graph
    start, pseudo-label stage, no joint stage) does not."""
    X, y = digits

    def largest(d):
        return np.bincount(d.labels_).max() / len(X)

    paper = DeepGMMClustering(10, eta=1.0, epochs=5, autoencoder=ae, random_state=0, **PAPER)
    assert largest(paper.fit(X)) > 0.6
    for eta in (1.0, DeepGMMClustering().eta):
        d = DeepGMMClustering(10, eta=eta, autoencoder=ae, random_state=0).fit(X)
        assert largest(d) < 0.35
        assert normalized_mutual_info_score(d.labels_init_, d.labels_) > 0.8
        assert normalized_mutual_info_score(y, d.labels_) > 0.6
        assert [h["stage"] for h in d.history_] == ["pseudo-label"] * 20
    assert len(np.unique(d.labels_)) == 10  # the default eta keeps every cluster


def test_prefit_autoencoder_is_used_without_refitting_and_not_modified(digits, ae):
    X, _ = digits
    before = {k: v.clone() for k, v in ae.network_.state_dict().items()}
    d = DeepGMMClustering(
        10, autoencoder=ae, epochs=1, pseudo_label_epochs=1, encoder_learning_rate=1e-2
    ).fit(X)
    for k, v in ae.network_.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert d.autoencoder_ is not ae
    assert d.autoencoder_.history_ == ae.history_  # not retrained
    # An unfitted autoencoder is cloned and fitted; the parameter stays unfitted.
    spec = AutoencoderTransformer(hidden_dims=(32,), epochs=1)
    DeepGMMClustering(10, autoencoder=spec, epochs=1, pseudo_label_epochs=1, random_state=0).fit(X)
    assert not hasattr(spec, "network_")
    with pytest.raises(ValueError, match="features"):
        DeepGMMClustering(3, autoencoder=ae, epochs=1).fit(X[:, :10])


def test_seeded_runs_repeat_and_pickle_round_trip(digits):
    X, _ = digits
    X = X[:300]
    params = dict(
        autoencoder=AutoencoderTransformer(hidden_dims=(32,), epochs=2, variational=True),
        epochs=2,
        random_state=7,
    )
    a = DeepGMMClustering(5, **params).fit(X)
    b = DeepGMMClustering(5, **params).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.means_, b.means_)
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.predict_proba(X), a.predict_proba(X))


# ------------------------------------------------------------ the autoencoder
def test_autoencoder_pipelines(digits):
    X, y = digits
    ae_km = make_pipeline(
        AutoencoderTransformer(epochs=10, random_state=0), KMeans(10, n_init=10, random_state=0)
    )
    assert normalized_mutual_info_score(y, ae_km.fit_predict(X)) > 0.6
    vae_gdl = make_pipeline(
        AutoencoderTransformer(epochs=10, variational=True, random_state=0), GDLClustering(10)
    )
    assert normalized_mutual_info_score(y, vae_gdl.fit_predict(X)) > 0.5


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 1), (5, 7, 3)])
def test_conv_autoencoder_on_images(shape):
    rng = np.random.RandomState(0)
    X = rng.rand(40, *shape)
    ae = AutoencoderTransformer(4, architecture="auto", epochs=2, random_state=0).fit(X)
    assert ae.architecture_ == "conv"
    assert ae.transform(X).shape == (40, 4)
    assert ae.inverse_transform(ae.transform(X[:3])).shape == (3, int(np.prod(shape)))
    flat = AutoencoderTransformer(
        4, architecture="conv", image_shape=shape, epochs=1, random_state=0
    ).fit(X.reshape(40, -1))
    assert flat.transform(X.reshape(40, -1)[:2]).shape == (2, 4)
    with pytest.raises(ValueError, match="needs images"):
        AutoencoderTransformer(architecture="conv").fit(X.reshape(40, -1))


def test_autoencoder_reconstructs(digits):
    X, _ = digits
    ae = AutoencoderTransformer(epochs=20, random_state=0).fit(X)
    assert ae.history_[-1] < 0.6 * ae.history_[0]
    err = np.abs(ae.inverse_transform(ae.transform(X)) - X).mean()
    assert err < 0.5 * np.abs(X - X.mean()).mean()
