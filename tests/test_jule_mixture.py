"""JULEMixture: JULE's loop ending in a Gaussian mixture on the learned embedding."""

import os
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import normalized_mutual_info_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from skjule import JULEClustering, JULEMixture
from skjule._deep._jule_mixture import mixture_from_responsibilities
from skjule._deep._losses import margin_triplet_loss, soft_margin_triplet_loss

FAST = dict(epochs_per_period=2, n_neighbors=10, embedding_dim=16, random_state=0)


@parametrize_with_checks([JULEMixture(**FAST)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.reshape(-1, 8, 8), y


@pytest.fixture(scope="module")
def digits_fit(digits):
    return JULEMixture(10, epochs_per_period=3, random_state=0).fit(digits[0])


def test_probabilities_are_rows_summing_to_one_and_match_the_labels(digits, digits_fit):
    X, y = digits
    jm = digits_fit
    proba = jm.predict_proba(X)
    assert proba.shape == (len(X), jm.n_clusters_) == (len(X), 10)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-10)
    # the network embeds a sample the same whatever its batch: predicting the
    # training data gives the training responsibilities and labels exactly
    np.testing.assert_allclose(proba, jm.proba_, atol=1e-10)
    np.testing.assert_array_equal(jm.predict(X), jm.labels_)
    assert normalized_mutual_info_score(y, jm.labels_) > 0.8
    # initialised from JULE's partition: the mixture keeps most of it
    assert normalized_mutual_info_score(jm.labels_jule_, jm.labels_) > 0.9
    assert jm.transform(X).shape == (len(X), jm.means_.shape[1]) == (len(X), 20)
    assert jm.score_samples(X).shape == (len(X),)
    assert np.isclose(jm.score(X), jm.score_samples(X).mean())
    np.testing.assert_allclose(jm.weights_.sum(), 1.0)
    assert jm.covariances_.shape == (20, 20)  # "tied" by default


def test_surer_half_is_more_accurate_on_digits(digits, digits_fit):
    """The probabilities rank errors: the half of the images with the larger
    top probability is more accurate than the other half."""
    X, y = digits
    from skjule.metrics import matched_labels

    correct = matched_labels(y, digits_fit.labels_) == y
    order = np.argsort(-digits_fit.proba_.max(1), kind="stable")
    half = len(y) // 2
    assert correct[order[:half]].mean() > correct[order[half:]].mean() + 0.05


def test_well_separated_blobs_get_near_certain_probabilities():
    X, y = make_blobs(600, n_features=8, centers=3, cluster_std=0.5, random_state=0)
    jm = JULEMixture(3, **FAST).fit(X.astype(np.float32))
    assert normalized_mutual_info_score(y, jm.labels_) > 0.99
    top = jm.proba_.max(1)
    assert np.mean(top > 0.99) > 0.95


def test_seeded_runs_repeat_and_pickling_keeps_the_probabilities(digits):
    X = digits[0][:400]
    params = dict(FAST, mixture_periods=1)
    a = JULEMixture(5, **params).fit(X)
    b = JULEMixture(5, **params).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.proba_, b.proba_)
    assert [h["period"] for h in a.history_][-2:] == ["RC", "mixture 1"]
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.predict_proba(X), a.predict_proba(X))


def test_without_mixture_periods_the_network_is_jules(digits):
    """mixture_periods=0 trains exactly JULEClustering's network."""
    X = digits[0][:400]
    jm = JULEMixture(5, **FAST).fit(X)
    jc = JULEClustering(5, **FAST).fit(X)
    np.testing.assert_array_equal(jm.embedding_, jc.embedding_)
    np.testing.assert_array_equal(jm.labels_jule_, jc.labels_)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_one_hot_responsibilities_give_the_partition_moments(covariance_type):
    rng = np.random.RandomState(0)
    Y = rng.randn(90, 3)
    labels = np.repeat([0, 1, 2], 30)
    w, m, prec = mixture_from_responsibilities(Y, np.eye(3)[labels], covariance_type, 0.0)
    np.testing.assert_allclose(w, [1 / 3] * 3)
    for c in range(3):
        part = Y[labels == c]
        np.testing.assert_allclose(m[c], part.mean(0))
        if covariance_type == "full":
            np.testing.assert_allclose(np.linalg.inv(prec[c]), np.cov(part.T, bias=True))
        elif covariance_type == "diag":
            np.testing.assert_allclose(1 / prec[c], part.var(0))
        elif covariance_type == "spherical":
            np.testing.assert_allclose(1 / prec[c], part.var(0).mean())
    if covariance_type == "tied":
        within = sum(np.cov(Y[labels == c].T, bias=True) * 30 for c in range(3)) / 90
        np.testing.assert_allclose(np.linalg.inv(prec), within)


def test_soft_loss_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 4, dtype=torch.float64, generator=g, requires_grad=True)
    resp = torch.softmax(torch.randn(12, 3, dtype=torch.float64, generator=g) * 2, 1)
    labels = resp.argmax(1)

    def f(x):
        return soft_margin_triplet_loss(
            x, labels, resp=resp, margin=0.5, n_negatives=3, negatives="nearest"
        )[0]

    assert torch.autograd.gradcheck(f, (z,), eps=1e-6, atol=1e-5)


def test_soft_loss_with_certain_responsibilities_is_the_margin_loss():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(16, 5, generator=g)
    labels = torch.randint(0, 3, (16,), generator=g)
    resp = torch.nn.functional.one_hot(labels, 3).float()
    soft, n_soft = soft_margin_triplet_loss(z, labels, resp=resp, n_negatives=4)
    hard, n_hard = margin_triplet_loss(z, labels, n_negatives=4)
    assert n_soft == n_hard > 0
    assert torch.isclose(soft, hard)


def test_soft_loss_ignores_pairs_the_mixture_doubts():
    """A positive pair whose members the mixture puts in different components
    (s(a, p) = 0) pulls nothing, however far apart they are; the hard loss
    pulls them together."""
    z0 = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 0.1], [0.1, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    resp = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    z = z0.clone().requires_grad_(True)
    soft, n = soft_margin_triplet_loss(z, labels, resp=resp, n_negatives=2, negatives="nearest")
    soft.backward()
    assert n > 0 and float(soft.detach()) > 0
    assert torch.all(z.grad[1] == 0)  # sample 1 is only in the doubted pair
    z = z0.clone().requires_grad_(True)
    hard, _ = margin_triplet_loss(z, labels, n_negatives=2, negatives="nearest")
    hard.backward()
    assert torch.any(z.grad[1] != 0)


def test_bad_parameters_say_what_is_wrong(digits):
    X = digits[0][:100]
    with pytest.raises(ValueError, match="covariance_type"):
        JULEMixture(3, covariance_type="banana", **FAST).fit(X)
    with pytest.raises(ValueError, match="mixture_dims"):
        JULEMixture(3, mixture_dims=0, **FAST).fit(X)


def test_a_checkpointed_fit_resumes_to_the_same_mixture(digits, tmp_path):
    """Refitting from the checkpoint of a finished fit ends with the same
    mixture: the mixture stage re-runs from the saved random state."""
    X = digits[0][:300]
    params = dict(FAST, mixture_periods=1, checkpoint_dir=tmp_path)
    first = JULEMixture(4, **params).fit(X)
    again = JULEMixture(4, **params).fit(X)
    assert os.listdir(tmp_path)
    np.testing.assert_array_equal(again.labels_, first.labels_)
    np.testing.assert_array_equal(again.proba_, first.proba_)
    # another mixture setting is another fit: the checkpoint is not used for it
    other = JULEMixture(4, **dict(params, covariance_type="diag")).fit(X)
    assert other.covariances_.shape == (4, first.means_.shape[1])
