"""Pickle/joblib round trips, GPU->CPU loading, and resumable fits (checkpoint_dir)."""

import os
import pickle
import subprocess
import sys
import textwrap
import time

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import skjule._deep._jule as jule_module
from skjule import GDLClustering, JULEClustering, JULETransformer

# eta=0.5 gives several periods on digits (372 -> 186 -> 93 -> ... -> 10 clusters).
PARAMS = dict(n_clusters=10, eta=0.5, epochs_per_period=1, embedding_dim=16, random_state=3)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.reshape(-1, 8, 8)[:600], y[:600]


@pytest.fixture(scope="module")
def reference(digits):
    """An uninterrupted fit without checkpoints."""
    return JULEClustering(**PARAMS).fit(digits[0])


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
@pytest.mark.parametrize("cls", [JULEClustering, JULETransformer])
def test_round_trip_predicts_the_same(tmp_path, digits, cls, dump):
    X, _ = digits
    est = cls(**dict(PARAMS, eta=0.9)).fit(X)
    if dump == "pickle":
        loaded = pickle.loads(pickle.dumps(est))
    else:
        joblib.dump(est, tmp_path / "m.joblib")
        loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.transform(X[:100]), est.transform(X[:100]))
    np.testing.assert_array_equal(loaded.labels_, est.labels_)
    if cls is JULEClustering:
        np.testing.assert_array_equal(loaded.predict(X[:100]), est.predict(X[:100]))
    # The loaded network is a separate object: training one never touches the other.
    assert loaded.network_ is not est.network_


def test_gdl_round_trip(digits):
    X, _ = digits
    est = GDLClustering(10).fit(X)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.labels_, est.labels_)
    np.testing.assert_array_equal(loaded.children_, est.children_)


def test_gpu_trained_model_loads_on_cpu(monkeypatch, digits, reference):
    """A pickle made on a CUDA machine records device_=cuda; without CUDA it loads on the CPU.

    (No GPU here: the CUDA side is simulated by the recorded device; __getstate__
    always stores the network's tensors on the CPU.)
    """
    X, _ = digits
    est = pickle.loads(pickle.dumps(reference))
    est.device_ = torch.device("cuda", 0)
    state = est.__getstate__()
    assert all(p.device.type == "cpu" for p in state["network_"].parameters())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.device_ == torch.device("cpu")
    np.testing.assert_array_equal(loaded.predict(X[:50]), reference.predict(X[:50]))


def _interrupt_at(monkeypatch, call):
    real = jule_module.Trainer.train
    calls = {"n": 0}

    def train(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(jule_module.Trainer, "train", train)
    return real


def test_interrupted_fit_resumes_to_the_same_labels(tmp_path, monkeypatch, digits, reference):
    X, _ = digits
    assert len(reference.history_) >= 5  # several periods, so resuming means something
    real = _interrupt_at(monkeypatch, 3)  # Ctrl-C while training period 2
    est = JULEClustering(**PARAMS, checkpoint_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X)
    assert not hasattr(est, "labels_")
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".pt")  # no temporary file left behind

    # Run again with the same arguments: only the remaining periods train.
    calls = {"n": 0}

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(jule_module.Trainer, "train", counting)
    est.fit(X)
    assert calls["n"] == len(reference.history_) - 1 - 2  # periods 2.. (history_ ends with RC)
    np.testing.assert_array_equal(est.labels_, reference.labels_)
    np.testing.assert_array_equal(est.labels_sf_, reference.labels_sf_)
    np.testing.assert_array_equal(est.children_, reference.children_)
    np.testing.assert_array_equal(est.embedding_, reference.embedding_)
    assert [h["n_clusters_end"] for h in est.history_] == [
        h["n_clusters_end"] for h in reference.history_
    ]


def test_checkpoint_of_other_data_or_parameters_is_not_used(tmp_path, digits, reference):
    X, _ = digits
    JULEClustering(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    # Other data, other parameters: new fingerprints, fresh fits, separate files.
    other = JULEClustering(**dict(PARAMS, random_state=4), checkpoint_dir=tmp_path).fit(X)
    JULEClustering(**PARAMS, checkpoint_dir=tmp_path).fit(X[:500])
    assert len(os.listdir(tmp_path)) == 3
    fresh = JULEClustering(**dict(PARAMS, random_state=4)).fit(X)
    np.testing.assert_array_equal(other.labels_, fresh.labels_)
    # verbose / n_jobs do not change the result, so they do not change the key.
    again = JULEClustering(**PARAMS, checkpoint_dir=tmp_path, verbose=0, n_jobs=1).fit(X)
    np.testing.assert_array_equal(again.labels_, reference.labels_)
    assert len(os.listdir(tmp_path)) == 3


def test_damaged_checkpoint_is_ignored_with_a_warning(tmp_path, digits, reference):
    X, _ = digits
    est = JULEClustering(**PARAMS, checkpoint_dir=tmp_path).fit(X)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(
        RuntimeWarning, match="Ignoring checkpoint .* unreadable or not a skjule checkpoint"
    ):
        est.fit(X)
    np.testing.assert_array_equal(est.labels_, reference.labels_)


def test_unusable_checkpoint_dir_fails_before_training(tmp_path, digits):
    X, _ = digits
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="checkpoint_dir"):
        JULEClustering(**PARAMS, checkpoint_dir=blocker / "sub").fit(X)


_KILLED_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from sklearn.datasets import load_digits
    from skjule import JULEClustering
    X = load_digits().data.reshape(-1, 8, 8)[:600]
    params = dict(n_clusters=10, eta=0.5, epochs_per_period=3, embedding_dim=16,
                  random_state=3, checkpoint_dir=sys.argv[1])
    np.save(sys.argv[2], JULEClustering(**params).fit(X).labels_)
""")


@pytest.mark.slow
def test_killed_process_resumes(tmp_path, digits):
    """SIGKILL a fit after its first checkpoint; the rerun ends with the uninterrupted labels."""
    X, _ = digits
    script = tmp_path / "fit.py"
    script.write_text(_KILLED_SCRIPT)
    ckpt = tmp_path / "ckpt"
    out = tmp_path / "labels.npy"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, str(script), str(ckpt), str(out)], env=env)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if ckpt.exists() and any(f.endswith(".pt") for f in os.listdir(ckpt)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the fit ended before it could be killed"
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    subprocess.run([sys.executable, str(script), str(ckpt), str(out)], env=env, check=True)
    params = dict(n_clusters=10, eta=0.5, epochs_per_period=3, embedding_dim=16, random_state=3)
    np.testing.assert_array_equal(np.load(out), JULEClustering(**params).fit(X).labels_)


@pytest.mark.parametrize(
    "stages",
    [dict(epochs=4, init="em", pseudo_label_epochs=0), dict(epochs=2, pseudo_label_epochs=2)],
)
def test_deepgmm_interrupted_fit_resumes_to_the_same_result(tmp_path, monkeypatch, digits, stages):
    import skjule._deep._deepgmm as dgmm_module
    from skjule import AutoencoderTransformer, DeepGMMClustering

    X = digits[0].reshape(len(digits[0]), -1)
    params = dict(
        n_clusters=10,
        **stages,
        batch_size=100,
        random_state=0,
        autoencoder=AutoencoderTransformer(hidden_dims=(32,), epochs=2),
    )
    reference = DeepGMMClustering(**params).fit(X)

    real = dgmm_module.separability
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 15:  # 6 batches per epoch: Ctrl-C in the third epoch
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(dgmm_module, "separability", interrupted)
    est = DeepGMMClustering(**params, checkpoint_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X)
    assert not hasattr(est, "labels_")
    calls["n"] = -(10**9)  # no more interruptions
    est.fit(X)
    assert calls["n"] == -(10**9) + 2 * 6  # only epochs 2 and 3 ran again
    np.testing.assert_array_equal(est.labels_, reference.labels_)
    np.testing.assert_array_equal(est.means_, reference.means_)
    np.testing.assert_array_equal(est.labels_init_, reference.labels_init_)
    assert [h["log_likelihood"] for h in est.history_] == [
        h["log_likelihood"] for h in reference.history_
    ]
    assert [h["stage"] for h in est.history_] == [h["stage"] for h in reference.history_]
