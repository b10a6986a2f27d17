"""Fitted estimators inside dask_ml's ParallelPostFit on a real distributed cluster,
and hyper-parameter search on the dask joblib backend (the optional `dask` extra)."""

import os

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import GridSearchCV, KFold

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
wrappers = pytest.importorskip("dask_ml.wrappers")

from skjule import GDLClustering, JULEClustering, JULETransformer  # noqa: E402

FAST = dict(epochs_per_period=1, embedding_dim=16, random_state=0)


@pytest.fixture(scope="module")
def client():
    # distributed's nanny writes OMP/MKL/OPENBLAS_NUM_THREADS=1 into this
    # process's environment for its workers and leaves them there: every later
    # subprocess (the docs build, the examples, the CLI) would then run on one
    # thread. Restore the environment afterwards.
    environ = dict(os.environ)
    try:
        yield from _client()
    finally:
        os.environ.clear()
        os.environ.update(environ)


def _client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y  # flat (n, 64) rows: image_shape says they are 8x8


def test_parallel_post_fit_predict_and_transform(client, digits):
    X, y = digits
    dX = da.from_array(X, chunks=300)
    assert len(client.scheduler_info()["workers"]) == 2
    for est in (JULEClustering(10, image_shape=(8, 8), **FAST), GDLClustering(10)):
        ppf = wrappers.ParallelPostFit(est).fit(X)  # the probe: a single zero row
        pred = ppf.predict(dX)
        assert isinstance(pred, da.Array)
        np.testing.assert_array_equal(pred.compute(), est.predict(X))
        assert normalized_mutual_info_score(y, pred.compute()) > 0.6
    trans = JULETransformer(10, image_shape=(8, 8), **FAST)
    Z = wrappers.ParallelPostFit(trans).fit(X).transform(dX)
    # Same values up to float32 rounding: the workers' chunks (300 rows) are
    # other batch shapes than the in-memory call's, and a CPU convolution may
    # sum in another order for another shape (seen: 1-ulp differences).
    np.testing.assert_allclose(Z.compute(), trans.transform(X), rtol=1e-5, atol=1e-6)


def test_grid_search_on_the_dask_backend(client, digits):
    X, y = digits
    X, y = X[:600], y[:600]
    grid = GridSearchCV(
        JULEClustering(10, image_shape=(8, 8), **FAST),
        {"n_neighbors": [5, 10]},
        scoring="normalized_mutual_info_score",
        cv=KFold(2),
        n_jobs=2,
    )
    with parallel_config(backend="dask"):
        grid.fit(X, y)
    assert set(grid.cv_results_["param_n_neighbors"]) == {5, 10}
    assert grid.best_score_ > 0.5
