"""Checkpoints hold data only and belong to exactly one fit.

A planted file in ``checkpoint_dir`` must never run code, and a checkpoint
is resumed exactly when the fit would compute the same result: same data,
parameters, starting state of the random generator and starting network.
"""

import os
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import skjule._deep._jule as jule_module
from skjule import AutoencoderTransformer, DeepGMMClustering, JULEClustering
from skjule._deep._checkpoint import from_plain, to_plain

PARAMS = dict(n_clusters=5, eta=0.6, epochs_per_period=1, embedding_dim=8)


@pytest.fixture(scope="module")
def X():
    X, _ = load_digits(return_X_y=True)
    return X.reshape(-1, 8, 8)[:240].astype(np.float32)


@pytest.fixture
def train_calls(monkeypatch):
    """Count training periods: a fit that resumes a finished checkpoint trains 0 times."""
    real = jule_module.Trainer.train
    calls = {"n": 0}

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(jule_module.Trainer, "train", counting)
    return calls


def _fit_twice(tmp_path, X, calls, first, second):
    """Fit ``first`` then ``second`` in one folder; (resumed?, number of files)."""
    first.set_params(checkpoint_dir=tmp_path).fit(X)
    calls["n"] = 0
    second.set_params(checkpoint_dir=tmp_path).fit(X)
    return calls["n"] == 0, len(os.listdir(tmp_path))


# ------------------------------------------------------------------ safety
class _Payload:
    """Unpickling this creates ``marker``: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_planted_pickle_is_never_executed(tmp_path, X, writer):
    ckpt_dir, marker = tmp_path / "ckpt", tmp_path / "pwned"
    est = JULEClustering(**PARAMS, random_state=0, checkpoint_dir=ckpt_dir).fit(X)
    reference = est.labels_.copy()
    (path,) = ckpt_dir.iterdir()
    # An attacker with write access to the folder replaces the file.
    payload = {"format": 2, "key": path.stem.split("-")[-1], "state": _Payload(marker)}
    with open(path, "wb") as f:
        if writer == "pickle":
            pickle.dump(payload, f)
        else:
            torch.save(payload, f)
    with pytest.warns(
        RuntimeWarning, match=f"Ignoring checkpoint {path}.*nothing in it was executed"
    ):
        est.fit(X)
    assert not marker.exists()
    np.testing.assert_array_equal(est.labels_, reference)  # a fresh fit, same seed


def test_checkpoint_file_holds_only_plain_data(tmp_path, X):
    JULEClustering(**PARAMS, random_state=0, checkpoint_dir=tmp_path).fit(X)
    (path,) = tmp_path.iterdir()
    torch.load(path, weights_only=True)  # raises if anything but data were inside


def test_deepgmm_checkpoint_holds_no_estimator_objects(tmp_path, X):
    Xf = X.reshape(len(X), -1)
    params = dict(
        n_clusters=5,
        epochs=2,
        pseudo_label_epochs=1,
        batch_size=60,
        random_state=0,
        autoencoder=AutoencoderTransformer(hidden_dims=(16,), epochs=1),
    )
    reference = DeepGMMClustering(**params).fit(Xf)
    est = DeepGMMClustering(**params, checkpoint_dir=tmp_path).fit(Xf)
    (path,) = tmp_path.iterdir()
    torch.load(path, weights_only=True)
    np.testing.assert_array_equal(est.labels_, reference.labels_)
    # The finished checkpoint resumes: same result, the autoencoder rebuilt from arrays.
    again = DeepGMMClustering(**params, checkpoint_dir=tmp_path).fit(Xf)
    np.testing.assert_array_equal(again.labels_, reference.labels_)
    np.testing.assert_allclose(again.transform(Xf), reference.transform(Xf))
    np.testing.assert_array_equal(again.gmm_init_.means_, reference.gmm_init_.means_)


def test_plain_round_trip_keeps_dtypes_and_values():
    state = {
        "a": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "b": (1, "x", None, 2.5),
        "c": [np.float64(1.5), {"d": np.array([True, False])}],
        "t": torch.ones(2),
    }
    back = from_plain(to_plain(state))
    assert back["a"].dtype == np.uint32 and back["a"].shape == (2, 3)
    np.testing.assert_array_equal(back["a"], state["a"])
    assert back["b"] == (1, "x", None, 2.5) and back["c"][0] == 1.5
    np.testing.assert_array_equal(back["c"][1]["d"], [True, False])
    with pytest.raises(TypeError, match="cannot be stored"):
        to_plain({"model": nn.Linear(2, 2)})


# ---------------------------------------------------------------- identity
def test_same_seed_state_resumes(tmp_path, X, train_calls):
    resumed, files = _fit_twice(
        tmp_path,
        X,
        train_calls,
        JULEClustering(**PARAMS, random_state=np.random.RandomState(0)),
        JULEClustering(**PARAMS, random_state=np.random.RandomState(0)),
    )
    assert resumed and files == 1


def test_other_seed_state_does_not_resume(tmp_path, X, train_calls):
    second = JULEClustering(**PARAMS, random_state=np.random.RandomState(1))
    resumed, files = _fit_twice(
        tmp_path,
        X,
        train_calls,
        JULEClustering(**PARAMS, random_state=np.random.RandomState(0)),
        second,
    )
    assert not resumed and files == 2
    fresh = JULEClustering(**PARAMS, random_state=np.random.RandomState(1)).fit(X)
    np.testing.assert_array_equal(second.labels_, fresh.labels_)


def test_random_state_none_never_resumes(tmp_path, X, train_calls):
    with pytest.warns(UserWarning, match="random_state=None.*cannot be resumed"):
        resumed, files = _fit_twice(
            tmp_path, X, train_calls, JULEClustering(**PARAMS), JULEClustering(**PARAMS)
        )
    assert not resumed and files == 2


def _small_net(input_shape):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 12), nn.ReLU())


def _wider_net(input_shape):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 20), nn.ReLU())


def test_callable_backbone_resumes_when_it_builds_the_same_network(tmp_path, X, train_calls):
    resumed, files = _fit_twice(
        tmp_path,
        X,
        train_calls,
        JULEClustering(**PARAMS, random_state=0, backbone=_small_net),
        JULEClustering(**PARAMS, random_state=0, backbone=_small_net),
    )
    assert resumed and files == 1


def test_callable_backbone_of_another_architecture_does_not_resume(tmp_path, X, train_calls):
    resumed, files = _fit_twice(
        tmp_path,
        X,
        train_calls,
        JULEClustering(**PARAMS, random_state=0, backbone=_small_net),
        JULEClustering(**PARAMS, random_state=0, backbone=_wider_net),
    )
    assert not resumed and files == 2


def test_module_backbone_with_other_weights_does_not_resume(tmp_path, X, train_calls):
    torch.manual_seed(0)
    a = _small_net((1, 8, 8))
    b = _small_net((1, 8, 8))  # same architecture, other initial weights
    resumed, files = _fit_twice(
        tmp_path,
        X,
        train_calls,
        JULEClustering(**PARAMS, random_state=0, backbone=a),
        JULEClustering(**PARAMS, random_state=0, backbone=b),
    )
    assert not resumed and files == 2
    resumed, files = _fit_twice(
        tmp_path,
        X,
        train_calls,
        JULEClustering(**PARAMS, random_state=0, backbone=a),
        JULEClustering(**PARAMS, random_state=0, backbone=a),
    )
    assert resumed and files == 2
