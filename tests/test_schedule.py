"""JULE's training schedule: the step budget per period."""

import numpy as np
import pytest
import torch

from skjule import JULEClustering
from skjule._deep._networks import build_mlp
from skjule._deep._training import Trainer


def _trainer(d=6):
    torch.manual_seed(0)
    return Trainer(build_mlp(d, embedding_dim=4, hidden=8), torch.device("cpu"))


def _train(trainer, n, **kw):
    rng = np.random.RandomState(0)
    X = torch.from_numpy(rng.rand(n, 6).astype(np.float32))
    labels = rng.randint(0, 5, n)
    loss_kwargs = dict(
        margin=0.2, n_negatives=3, negatives="random", generator=torch.Generator().manual_seed(0)
    )
    return trainer.train(
        X,
        labels,
        batch_size=10,
        loss="margin",
        sampling="random",
        rng=rng,
        loss_kwargs=loss_kwargs,
        **kw,
    )


@pytest.mark.parametrize(
    "epochs, max_steps, expected",
    [
        (3, None, 30),  # 100 samples, batches of 10: 10 steps an epoch
        (3, 25, 25),  # the budget cuts the third epoch
        (3, 1000, 30),  # a budget larger than the epochs changes nothing
        (2, 7, 7),  # cut inside the first epoch
    ],
)
def test_max_steps_caps_the_sgd_steps(epochs, max_steps, expected):
    trainer = _trainer()
    stats = _train(trainer, 100, epochs=epochs, max_steps=max_steps)
    assert stats["steps"] == expected
    assert trainer.iteration == expected


@pytest.mark.parametrize(
    "n, epochs, cap, expected",
    [
        (1000, 20, None, 20),
        (1000, 20, 1000, 20),  # 10 batches an epoch: 200 steps, under the cap
        (50_000, 20, 1000, 2),  # 500 batches an epoch: the cap is two epochs
        (70_000, 20, 1000, 2),  # 700 batches: one full epoch and part of a second
        (70_000, 20, 100, 1),
    ],
)
def test_epochs_a_period_starts(n, epochs, cap, expected):
    est = JULEClustering(epochs_per_period=epochs, max_steps_per_period=cap, batch_size=100)
    assert est._epochs_this_period(n) == expected


def test_the_budget_bounds_the_steps_of_a_fit():
    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(300, 6), rng.randn(300, 6) + 6].astype(np.float32)
    est = JULEClustering(
        2, epochs_per_period=20, max_steps_per_period=15, batch_size=50, random_state=0
    ).fit(X)
    periods = [h for h in est.history_ if h["period"] != "RC"]
    assert periods and all(h["steps"] == 15 for h in periods)
    full = JULEClustering(
        2, epochs_per_period=2, max_steps_per_period=None, batch_size=50, random_state=0
    ).fit(X)
    assert all(h["steps"] == 24 for h in full.history_ if h["period"] != "RC")


@pytest.mark.parametrize(
    "n, batch_size, steps, epochs",
    [
        (575, 100, 240, 20),  # UMist: the budget is above the 20 epochs (120 steps)
        (2_500, 100, 500, 20),  # the crossover: exactly 20 epochs
        (10_000, 100, 1000, 10),
        (70_000, 100, 2646, 4),  # 3.8 epochs: the fourth is cut
        (10_000, 50, 2000, 10),  # the same images whatever the batch size
    ],
)
def test_auto_budget_grows_as_sqrt_n(n, batch_size, steps, epochs):
    est = JULEClustering(batch_size=batch_size)
    assert est.max_steps_per_period == "auto"
    assert est._step_budget(n) == steps
    assert est._epochs_this_period(n) == epochs


def test_auto_budget_leaves_small_sets_untouched():
    # below 2,500 samples the budget never binds: the fit is the paper's schedule
    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(150, 6), rng.randn(150, 6) + 4].astype(np.float32)
    auto = JULEClustering(2, epochs_per_period=3, random_state=0).fit(X)
    paper = JULEClustering(2, epochs_per_period=3, max_steps_per_period=None, random_state=0)
    paper.fit(X)
    assert auto.max_steps_per_period_ == 174 and paper.max_steps_per_period_ is None
    np.testing.assert_array_equal(auto.labels_, paper.labels_)
    np.testing.assert_array_equal(auto.embedding_, paper.embedding_)
    assert [h.get("steps") for h in auto.history_] == [h.get("steps") for h in paper.history_]
