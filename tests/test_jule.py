import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skjule import JULEClustering, JULETransformer
from skjule._deep._networks import build_cnn, conv_plan, resolve_device

FAST = dict(epochs_per_period=2, n_neighbors=10, embedding_dim=16, random_state=0)


# scikit-learn's estimator checks, all of them. The only skips come from scikit-learn
# itself: check_array_api_input is skipped unless SCIPY_ARRAY_API=1 is set. It does
# not apply: skjule estimators take numpy-convertible input (torch and numba kernels
# run on numpy/CPU tensors) and do not declare array-API support.
@parametrize_with_checks([JULEClustering(**FAST), JULETransformer(**FAST)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.reshape(-1, 8, 8), y


@pytest.fixture(scope="module")
def digits_fit(digits):
    X, y = digits
    return JULEClustering(10, epochs_per_period=5, random_state=0).fit(X)


def test_digits_beats_kmeans(digits, digits_fit):
    X, y = digits
    km = KMeans(10, n_init=10, random_state=0).fit_predict(X.reshape(len(X), -1))
    nmi_km = normalized_mutual_info_score(y, km)
    assert normalized_mutual_info_score(y, digits_fit.labels_) > nmi_km + 0.1
    assert normalized_mutual_info_score(y, digits_fit.labels_sf_) > nmi_km + 0.1


def test_fitted_attributes(digits, digits_fit):
    X, _ = digits
    j = digits_fit
    n = len(X)
    assert j.embedding_.shape == (n, 160)
    np.testing.assert_allclose(np.linalg.norm(j.embedding_, axis=1), 1.0, rtol=1e-5)
    assert j.labels_.shape == j.labels_sf_.shape == (n,)
    assert j.n_clusters_ == 10 and np.unique(j.labels_).size == 10
    assert j.children_.shape == (n - 10, 2)
    periods = [h for h in j.history_ if h["period"] != "RC"]
    assert periods[0]["n_clusters_start"] == j.n_initial_clusters_
    assert periods[-1]["n_clusters_end"] == 10
    # each period merges ceil(eta n_c) clusters (or down to K)
    assert 0.2 <= j.eta_ <= 0.9  # the default eta="auto"
    for h in periods:
        expect = max(10, h["n_clusters_start"] - int(np.ceil(j.eta_ * h["n_clusters_start"])))
        assert h["n_clusters_end"] == expect
        assert h["images_per_second"] > 0 and h["train_seconds"] > 0
    assert j.history_[-1]["period"] == "RC"
    assert j.image_shape_ == (8, 8, 1)
    # transform of the training data gives the stored embedding
    np.testing.assert_allclose(j.transform(X), j.embedding_, atol=1e-5)


def test_predict_agrees_with_training_clusters(digits, digits_fit):
    X, y = digits
    agree = np.mean(digits_fit.predict(X) == digits_fit.labels_)
    assert agree > 0.95


def test_predict_held_out(digits):
    X, y = digits
    rng = np.random.RandomState(0)
    perm = rng.permutation(len(X))
    train, test = perm[:1400], perm[1400:]
    j = JULEClustering(10, epochs_per_period=5, random_state=0).fit(X[train])
    nmi_train = normalized_mutual_info_score(y[train], j.labels_)
    nmi_test = normalized_mutual_info_score(y[test], j.predict(X[test]))
    assert nmi_test > nmi_train - 0.05
    # one sample at a time gives the same as the batch
    np.testing.assert_array_equal(
        j.predict(X[test[:5]]), [j.predict(X[i : i + 1])[0] for i in test[:5]]
    )


def test_seeded_runs_repeat_exactly(digits):
    X, _ = digits
    a = JULEClustering(10, epochs_per_period=2, random_state=3).fit(X[:600])
    b = JULEClustering(10, epochs_per_period=2, random_state=3).fit(X[:600])
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    c = JULEClustering(10, epochs_per_period=2, random_state=4).fit(X[:600])
    assert not np.array_equal(a.embedding_, c.embedding_)


def test_global_torch_rng_untouched(digits):
    X, _ = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    JULEClustering(10, epochs_per_period=1, random_state=0).fit(X[:300])
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_pipeline(digits):
    X, y = digits
    pipe = Pipeline(
        [
            (
                "jule",
                JULETransformer(
                    n_clusters=10, image_shape=(8, 8), epochs_per_period=3, random_state=0
                ),
            ),
            ("km", KMeans(10, n_init=10, random_state=0)),
        ]
    )
    labels = pipe.fit_predict(X.reshape(len(X), -1), y)
    raw = KMeans(10, n_init=10, random_state=0).fit_predict(X.reshape(len(X), -1))
    assert normalized_mutual_info_score(y, labels) > normalized_mutual_info_score(y, raw) + 0.05


def test_grid_search(digits):
    X, y = digits
    X, y = X[:900], y[:900]
    grid = GridSearchCV(
        JULEClustering(10, epochs_per_period=2, random_state=0),
        {"loss": ["weighted", "margin"]},
        scoring="normalized_mutual_info_score",
        cv=KFold(2, shuffle=True, random_state=0),
    )
    grid.fit(X, y)
    assert set(grid.cv_results_["param_loss"]) == {"weighted", "margin"}
    assert grid.best_score_ > 0.6
    assert grid.best_estimator_.labels_.shape == (900,)


def test_image_shapes(digits):
    X, y = digits
    X = X[:400]
    a = JULEClustering(10, epochs_per_period=1, random_state=0).fit(X)
    b = JULEClustering(10, epochs_per_period=1, random_state=0, image_shape=(8, 8)).fit(
        X.reshape(400, 64)
    )
    c = JULEClustering(10, epochs_per_period=1, random_state=0).fit(X[..., None])
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.labels_, c.labels_)
    assert b.image_shape_ == (8, 8, 1)
    # RGB images, channels last
    rgb = np.repeat(X[..., None], 3, axis=3)
    d = JULEClustering(10, epochs_per_period=1, random_state=0).fit(rgb)
    assert d.image_shape_ == (8, 8, 3)
    assert d.predict(rgb[:3]).shape == (3,)
    with pytest.raises(ValueError, match="holds 60 values"):
        JULEClustering(10, image_shape=(6, 10)).fit(X.reshape(400, 64)[:, :64])
    with pytest.raises(ValueError, match="does not match"):
        JULEClustering(10, image_shape=(4, 16)).fit(X)
    with pytest.raises(ValueError, match="shape"):
        a.predict(np.zeros((2, 4, 16)))
    with pytest.raises(ValueError, match="features"):
        a.predict(np.zeros((2, 10)))


def test_feature_vectors_use_mlp():
    X, y = make_blobs(300, n_features=12, centers=4, random_state=0)
    j = JULEClustering(4, epochs_per_period=3, random_state=0).fit(X)
    assert j.image_shape_ is None
    assert isinstance(j.network_.body[0], torch.nn.Linear)
    assert normalized_mutual_info_score(y, j.labels_) > 0.9


def test_transformer_fit_transform_matches_transform(digits):
    X, _ = digits
    t = JULETransformer(10, epochs_per_period=1, random_state=0)
    Z = t.fit_transform(X[:300])
    np.testing.assert_allclose(Z, t.transform(X[:300]), atol=1e-5)
    assert t.get_feature_names_out()[0] == "juletransformer0"


def test_conv_plan_follows_the_paper():
    # USPS 16 px: one block; MNIST 28: two convs, one pool; COIL 128: four blocks
    assert conv_plan(16, 16) == ([(0, True)], (6, 6))
    assert conv_plan(28, 28) == ([(0, True), (0, False)], (8, 8))
    assert len(conv_plan(112, 92)[0]) == 3
    assert len(conv_plan(128, 128)[0]) == 4
    # tiny images get a padded convolution instead of failing
    model = build_cnn((3, 3, 1))
    assert model(torch.zeros(2, 1, 3, 3)).shape == (2, 160)
    for h, w in [(5, 5), (8, 8), (16, 16), (28, 28), (32, 32), (40, 24)]:
        out = build_cnn((h, w, 2), embedding_dim=7)(torch.zeros(3, 2, h, w))
        assert out.shape == (3, 7)


def test_device_selection(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="not a valid torch device"):
        resolve_device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")


def test_bad_parameters():
    X = np.random.RandomState(0).rand(30, 4)
    with pytest.raises(ValueError, match="eta"):
        JULEClustering(3, eta=1.5).fit(X)
    with pytest.raises(ValueError, match="loss"):
        JULEClustering(3, loss="hinge").fit(X)
    with pytest.raises(ValueError, match="larger than the number of samples"):
        JULEClustering(31).fit(X)


def test_transformer_embedding_equals_clustering_embedding(digits):
    """Same parameters and seed: JULETransformer computes JULEClustering's embedding_."""
    X, _ = digits
    params = dict(n_clusters=10, epochs_per_period=1, random_state=5)
    Z = JULETransformer(**params).fit_transform(X[:400])
    np.testing.assert_array_equal(Z, JULEClustering(**params).fit(X[:400]).embedding_)


def test_verbose_progress_bars(capsys, digits):
    X, _ = digits
    JULEClustering(10, epochs_per_period=1, random_state=0, verbose=1).fit(X[:300])
    err = capsys.readouterr().err
    assert "JULE periods" in err and "epochs" in err
    JULEClustering(10, epochs_per_period=1, random_state=0, verbose=0).fit(X[:300])
    assert capsys.readouterr().err == ""


def test_interrupted_fit_never_looks_fitted(monkeypatch, digits):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    import skjule._deep._jule as jule_module

    X, _ = digits
    calls = {"n": 0, "at": 2}
    real_train = jule_module.Trainer.train

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["at"]:  # Ctrl-C during that period's training
            raise KeyboardInterrupt
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(jule_module.Trainer, "train", interrupted)
    j = JULEClustering(10, epochs_per_period=1, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        j.fit(X)  # 372 -> 37 -> 10 clusters: interrupted in the second period
    with pytest.raises(NotFittedError):
        check_is_fitted(j)
    with pytest.raises(NotFittedError):
        j.predict(X[:3])

    # A refit that is interrupted leaves the previous model whole.
    monkeypatch.setattr(jule_module.Trainer, "train", real_train)
    j.fit(X[:300])
    before = j.predict(X[:50])
    calls.update(n=0, at=1)
    monkeypatch.setattr(jule_module.Trainer, "train", interrupted)
    rng = np.random.RandomState(0)
    with pytest.raises(KeyboardInterrupt):
        j.fit(rng.rand(300, 6, 6))
    assert j.n_features_in_ == 64
    np.testing.assert_array_equal(j.predict(X[:50]), before)


def test_custom_backbone(digits):
    from torch import nn

    X, y = digits
    body = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten())
    before = {k: v.clone() for k, v in body.state_dict().items()}
    j = JULEClustering(
        10, backbone=body, epochs_per_period=1, embedding_dim=16, random_state=0
    ).fit(X)
    assert j.embedding_.shape == (len(X), 16)
    assert normalized_mutual_info_score(y, j.labels_) > 0.6
    for k, v in body.state_dict().items():  # the module passed in is never trained
        torch.testing.assert_close(v, before[k])
    assert j.network_.body is not body

    # A builder gets the input shape: (C, H, W) for images, (d,) for vectors.
    seen = []

    def build(shape):
        seen.append(shape)
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), 12))

    JULEClustering(10, backbone=build, epochs_per_period=1, random_state=0).fit(X[:300])
    JULETransformer(10, backbone=build, epochs_per_period=1, random_state=0).fit(
        X[:300].reshape(300, -1)
    )
    assert seen == [(1, 8, 8), (64,)]

    with pytest.raises(ValueError, match=r"\(batch, features\)"):
        JULEClustering(10, backbone=nn.Conv2d(1, 4, 3)).fit(X[:100])
    with pytest.raises(ValueError, match="backbone failed"):
        JULEClustering(10, backbone=nn.Linear(5, 3)).fit(X[:100])
    with pytest.raises(ValueError, match="must return a torch.nn.Module"):
        JULEClustering(10, backbone=lambda shape: "resnet").fit(X[:100])


def test_eta_auto_takes_four_periods_to_k():
    X, _ = make_blobs(400, n_features=8, centers=4, random_state=0)
    jule = JULEClustering(4, eta="auto", epochs_per_period=1, embedding_dim=8, random_state=0).fit(
        X
    )
    n0 = jule.n_initial_clusters_
    assert jule.eta_ == pytest.approx(np.clip(1 - (4 / n0) ** 0.25, 0.2, 0.9))
    periods = [h for h in jule.history_ if h["period"] != "RC"]
    assert len(periods) in (4, 5)  # ceil() may leave one short last period
    assert periods[-1]["n_clusters_end"] == 4
    fixed = JULEClustering(4, eta=0.9, epochs_per_period=1, embedding_dim=8, random_state=0).fit(X)
    assert fixed.eta_ == 0.9
    assert len(fixed.history_) - 1 < len(periods)
