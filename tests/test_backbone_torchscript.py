"""TorchScript backbones (``torch.jit.load``) for JULE: frozen, fine-tuned, pickled."""

import copy
import io
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from skjule import JULEClustering, JULETransformer

# torch >= 2.9 deprecates TorchScript: the tests' own trace, save and load
# ignore it; skjule's copies and pickles of TorchScript modules must not warn.
pytestmark = pytest.mark.filterwarnings("error:`torch.jit:DeprecationWarning")

PARAMS = dict(n_clusters=10, epochs_per_period=1, eta=0.9, embedding_dim=16, random_state=0)


@pytest.fixture(scope="module")
def X():
    return load_digits().data.reshape(-1, 8, 8)[:300]


def _load_script():
    """A traced CNN, saved with ``torch.jit.save`` and loaded with ``torch.jit.load``."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten()).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.trace(net, torch.zeros(2, 1, 8, 8)), buf)
        buf.seek(0)
        return torch.jit.load(buf)


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _assert_same(state, module):
    after = module.state_dict()
    assert set(after) == set(state)
    for k in state:
        assert torch.equal(after[k], state[k]), k


@pytest.fixture(scope="module")
def script():
    return _load_script()


@pytest.fixture(scope="module")
def frozen(X, script):
    before = _state(script)
    est = JULEClustering(backbone=script, freeze_backbone=True, **PARAMS).fit(X)
    _assert_same(before, script)  # the module passed in is never modified
    return est


@pytest.fixture(scope="module")
def tuned(X, script):
    before = _state(script)
    est = JULEClustering(backbone=script, **PARAMS).fit(X)
    _assert_same(before, script)
    assert all(p.requires_grad for p in script.parameters())
    return est


def test_frozen_trains_only_the_head(X, script, frozen):
    body = frozen.network_.body.module
    assert isinstance(body, torch.jit.ScriptModule) and body is not script
    _assert_same(_state(script), body)
    assert not any(p.requires_grad for p in body.parameters())
    assert all(p.requires_grad for p in frozen.network_.head.parameters())
    frozen.network_.train()
    assert not body.training  # stays in eval mode when the rest trains
    frozen.network_.eval()
    start = JULEClustering(
        backbone=script, freeze_backbone=True, **dict(PARAMS, epochs_per_period=0)
    ).fit(X)
    assert not torch.equal(start.network_.head.weight, frozen.network_.head.weight)


def test_fine_tuned_trains_a_copy(script, tuned):
    body = tuned.network_.body
    assert isinstance(body, torch.jit.ScriptModule) and body is not script
    before = script.state_dict()
    assert not torch.equal(body.state_dict()["0.weight"], before["0.weight"])
    assert all(p.requires_grad for p in body.parameters())


class Pretrained(nn.Module):
    """A plain module around a TorchScript one (the recipe of docs/features.rst)."""

    def __init__(self):
        super().__init__()
        self.net = _load_script()

    def forward(self, x):
        return self.net(x)


def _build(shape):
    return _load_script()


def test_torchscript_inside_a_plain_module_fine_tunes(X):
    bb = Pretrained()
    before = _state(bb)
    est = JULEClustering(backbone=bb, **PARAMS).fit(X)
    _assert_same(before, bb)
    assert not torch.equal(est.network_.body.net.state_dict()["0.weight"], before["net.0.weight"])
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.transform(X[:50]), est.transform(X[:50]))


@pytest.mark.parametrize("which", ["frozen", "tuned"])
def test_pickle_round_trip(request, X, which):
    est = request.getfixturevalue(which)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.transform(X[:50]), est.transform(X[:50]))
    np.testing.assert_array_equal(back.predict(X[:50]), est.predict(X[:50]))
    assert back.predict(X[:50]).shape == (50,)
    assert isinstance(back.backbone, torch.jit.ScriptModule)
    body = back.network_.body
    if which == "frozen":
        assert not any(p.requires_grad for p in body.module.parameters())
    # a copy of the estimator (deepcopy goes through the same state) works too
    np.testing.assert_array_equal(copy.deepcopy(est).transform(X[:50]), est.transform(X[:50]))


def test_transformer_with_a_builder(X):
    est = JULETransformer(backbone=_build, freeze_backbone=True, **PARAMS).fit(X)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.transform(X[:50]), est.transform(X[:50]))


def test_builder_returning_a_deepcopy_of_torchscript_is_refused(X, script):
    with pytest.raises(ValueError, match="not leaf tensors"):
        JULEClustering(backbone=lambda shape: copy.deepcopy(script), **PARAMS).fit(X)
