"""Issue 23, item 5: inputs that used to be accepted and then silently misused.

* a COIL download cut short without a Content-Length was recorded as the
  trusted file (trust on first use) and then failed with ``BadZipFile``
  forever;
* a pandas DataFrame's column names were dropped, so predicting with the
  columns reordered silently gave other labels;
* ``AutoencoderTransformer`` returned all-NaN codes when training diverged;
* ``image_shape=(4.5, 4)`` was truncated to ``(4, 4)``, and
  ``DeepGMMClustering`` ignored its ``image_shape`` when given an autoencoder.
"""

import bz2
import email.message
import gzip
import hashlib
import io
import warnings
import zipfile

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import check_dataframe_column_names_consistency

from skjule import (
    AutoencoderTransformer,
    DeepGMMClustering,
    GDLClustering,
    JULEClustering,
    JULETransformer,
)
from skjule._deep._inputs import check_image_shape, resolve_image_shape
from skjule.datasets import _base, _fetchers, fetch_coil20
from skjule.datasets._base import RemoteFile, archive_damage

pd = pytest.importorskip("pandas")

TINY_AE = dict(hidden_dims=(8,), epochs=1, random_state=0)
FAST_JULE = dict(epochs_per_period=1, n_neighbors=5, embedding_dim=8, random_state=0)

# ------------------------------------------------------------------ fetchers


def _coil_zip_bytes(n_obj=2, n_pose=2):
    from PIL import Image

    buf = io.BytesIO()
    rng = np.random.RandomState(0)
    with zipfile.ZipFile(buf, "w") as z:
        for o in range(1, n_obj + 1):
            for p in range(n_pose):
                img = io.BytesIO()
                Image.fromarray(rng.randint(0, 256, (128, 128)).astype(np.uint8), "L").save(
                    img, format="PNG"
                )
                z.writestr(f"coil-20-proc/obj{o}__{p}.png", img.getvalue())
    return buf.getvalue()


class _Response:
    """What ``urlopen`` returns, here without a Content-Length header (as a
    server streaming the file, or a proxy, may send it)."""

    def __init__(self, body):
        self._body = io.BytesIO(body)
        self.headers = email.message.Message()

    def read(self, n=-1):
        return self._body.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def coil(monkeypatch):
    """``serve(body)`` makes the next downloads return ``body``; no network."""
    served = {}
    monkeypatch.setitem(
        _fetchers.REMOTES,
        "coil20",
        (RemoteFile("coil-20-proc.zip", "http://example.invalid/coil-20-proc.zip", None),),
    )
    monkeypatch.setattr(
        _base.urllib.request, "urlopen", lambda url, timeout=None: _Response(served["body"])
    )
    return lambda body: served.update(body=body)


def test_truncated_download_is_neither_kept_nor_recorded_and_a_retry_works(coil, tmp_path):
    good = _coil_zip_bytes()
    home = tmp_path / "home"
    folder = home / "coil20"
    coil(good[: len(good) * 2 // 3])  # cut short, and no Content-Length to notice it
    with pytest.raises(OSError, match=r"archive is damaged .*cut short.*try again"):
        fetch_coil20(data_home=home)
    assert sorted(p.name for p in folder.iterdir()) == []  # no file, no sha256, no .part

    coil(good)
    with pytest.warns(UserWarning, match="No checksum is published"):
        data = fetch_coil20(data_home=home)
    assert data.images.shape == (4, 128, 128)
    recorded = (folder / "coil-20-proc.zip.sha256").read_text().split()[0]
    assert recorded == hashlib.sha256(good).hexdigest()


def test_damaged_archive_recorded_earlier_is_replaced_not_trusted(coil, tmp_path):
    # The state the old code left behind: the truncated archive and its sha256.
    good = _coil_zip_bytes()
    bad = good[: len(good) // 2]
    folder = tmp_path / "home" / "coil20"
    folder.mkdir(parents=True)
    (folder / "coil-20-proc.zip").write_bytes(bad)
    (folder / "coil-20-proc.zip.sha256").write_text(
        f"{hashlib.sha256(bad).hexdigest()}  coil-20-proc.zip\n"
    )
    coil(good)
    with pytest.warns(UserWarning) as record:
        data = fetch_coil20(data_home=tmp_path / "home")
    messages = " | ".join(str(w.message) for w in record)
    assert "is a damaged archive" in messages and "No checksum is published" in messages
    assert data.images.shape == (4, 128, 128)
    assert (folder / "coil-20-proc.zip").read_bytes() == good
    assert (folder / "coil-20-proc.zip.sha256").read_text().split()[0] == hashlib.sha256(
        good
    ).hexdigest()


@pytest.mark.parametrize("suffix", [".zip", ".gz", ".bz2"])
def test_archive_damage_reads_each_format_through(tmp_path, suffix):
    payload = np.random.RandomState(0).bytes(50_000)
    if suffix == ".zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("a.bin", payload)
        data = buf.getvalue()
    else:
        data = (gzip if suffix == ".gz" else bz2).compress(payload)
    path = tmp_path / ("f" + suffix)
    path.write_bytes(data)
    assert archive_damage(path) is None
    path.write_bytes(data[: len(data) // 2])
    assert archive_damage(path) is not None
    # the format comes from the given name (downloads go to a ".part" file)
    part = tmp_path / "f.part"
    part.write_bytes(data[: len(data) // 2])
    assert archive_damage(part, "f" + suffix) is not None


# ------------------------------------------------------------- feature names


@pytest.fixture
def frame():
    X, _ = make_blobs(90, n_features=4, centers=3, cluster_std=[0.5, 1.0, 2.0], random_state=0)
    X[:, 0] *= 5  # columns of different scales: reordering them changes distances
    return pd.DataFrame(X, columns=["width", "height", "depth", "mass"])


def test_dataframe_columns_are_remembered_and_checked(frame):
    est = GDLClustering(3, random_state=0).fit(frame)
    assert isinstance(est.feature_names_in_, np.ndarray)
    assert est.feature_names_in_.dtype == object
    assert list(est.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(est.predict(frame), est.labels_)

    reordered = frame[["mass", "depth", "height", "width"]]
    with pytest.raises(ValueError, match="same order as they were in fit"):
        est.predict(reordered)
    with pytest.raises(ValueError, match="unseen at fit time"):
        est.predict(frame.rename(columns={"mass": "weight"}))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.predict(frame.to_numpy())

    # refitted on an array: the old names go, and arrays predict silently
    est.fit(frame.to_numpy())
    assert not hasattr(est, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict(frame.to_numpy())


def test_failed_fit_keeps_the_previous_feature_names(frame):
    est = GDLClustering(3, random_state=0).fit(frame)
    bad = frame.rename(columns=str.upper)
    bad.iloc[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad)
    assert list(est.feature_names_in_) == list(frame.columns)


@pytest.mark.parametrize(
    "estimator",
    [
        GDLClustering(2),
        AutoencoderTransformer(3, **TINY_AE),
        JULEClustering(2, **FAST_JULE),
        JULETransformer(2, **FAST_JULE),
        DeepGMMClustering(
            2,
            epochs=1,
            pseudo_label_epochs=1,
            gmm_n_init=1,
            random_state=0,
            autoencoder=AutoencoderTransformer(3, **TINY_AE),
        ),
    ],
    ids=lambda e: type(e).__name__,
)
def test_sklearn_dataframe_column_names_check(estimator):
    # scikit-learn's own check (not in parametrize_with_checks' default set):
    # feature_names_in_ after fitting a DataFrame, and every method (predict,
    # transform, predict_proba, score, ...) refusing missing, unseen or
    # reordered columns.
    check_dataframe_column_names_consistency(type(estimator).__name__, estimator)


def test_deepgmm_checks_a_prefit_autoencoders_columns(frame):
    ae = AutoencoderTransformer(3, **TINY_AE).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        dgmm = DeepGMMClustering(
            3, epochs=1, pseudo_label_epochs=1, gmm_n_init=1, autoencoder=ae, random_state=0
        ).fit(frame)
        dgmm.predict(frame)
    assert list(ae.feature_names_in_) == list(frame.columns)  # the given one untouched
    with pytest.raises(ValueError, match="feature names"):
        DeepGMMClustering(3, epochs=1, pseudo_label_epochs=1, gmm_n_init=1, autoencoder=ae).fit(
            frame[frame.columns[::-1]]
        )


# ------------------------------------------------------------------ divergence


def test_autoencoder_divergence_in_fit_is_an_error_not_nan_codes():
    X, _ = make_blobs(60, n_features=6, random_state=0)
    for variational in (False, True):
        ae = AutoencoderTransformer(
            2,
            hidden_dims=(8,),
            epochs=5,
            learning_rate=1e6,
            variational=variational,
            random_state=0,
        )
        with pytest.raises(
            ValueError,
            match=r"training diverged\. Use a smaller "
            r"learning_rate \(now 1000000\.0\)",
        ):
            ae.fit(X)
        assert not hasattr(ae, "network_") and not hasattr(ae, "n_features_in_")


def test_autoencoder_with_broken_weights_does_not_return_nan_codes():
    X, _ = make_blobs(30, n_features=6, random_state=0)
    ae = AutoencoderTransformer(2, **TINY_AE).fit(X)
    assert np.isfinite(ae.transform(X)).all()
    with torch.no_grad():
        next(ae.network_.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="embeddings became NaN or infinite: training diverged"):
        ae.transform(X)


# ----------------------------------------------------------------- image_shape


@pytest.mark.parametrize(
    "bad, match",
    [
        ((4.5, 4), "must hold integers.*4.5"),
        ((4.0, 4), "must hold integers.*4.0"),  # whole floats too: refused, not truncated
        ((np.float64(4), 4), "must hold integers"),
        ((True, 16), "must hold integers"),
        ((0, 16), "must hold positive integers"),
        ((-4, -4), "must hold positive integers"),
        (("4", "4"), "must hold integers"),
        ((16,), r"must be \(height, width\)"),
        ((2, 2, 2, 2), r"must be \(height, width\)"),
        (16, r"must be \(height, width\)"),
    ],
)
def test_image_shape_must_be_positive_integers(bad, match):
    with pytest.raises(ValueError, match="image_shape " + match):
        resolve_image_shape((16,), bad)


def test_image_shape_accepts_python_and_numpy_ints():
    assert check_image_shape((np.int64(4), np.int32(4))) == (4, 4)
    assert resolve_image_shape((16,), np.array([4, 4])) == (4, 4, 1)
    assert resolve_image_shape((16,), [2, 2, 4]) == (2, 2, 4)
    assert all(type(v) is int for v in resolve_image_shape((16,), np.array([4, 4])))


@pytest.mark.parametrize(
    "make",
    [
        lambda s: AutoencoderTransformer(2, architecture="conv", image_shape=s, **TINY_AE),
        lambda s: JULEClustering(2, image_shape=s, **FAST_JULE),
        lambda s: DeepGMMClustering(
            2, epochs=1, image_shape=s, autoencoder=AutoencoderTransformer(2, **TINY_AE)
        ),
    ],
    ids=["autoencoder", "jule", "deepgmm-with-autoencoder"],
)
def test_estimators_refuse_fractional_image_shape(make):
    X = np.random.RandomState(0).rand(30, 16)
    with pytest.raises(ValueError, match=r"image_shape must hold integers"):
        make((4.5, 4)).fit(X)


def test_deepgmm_passes_image_shape_to_a_given_autoencoder():
    X = np.random.RandomState(0).rand(30, 16)
    ae = AutoencoderTransformer(2, architecture="auto", **TINY_AE)
    dgmm = DeepGMMClustering(
        2, epochs=1, gmm_n_init=1, image_shape=(4, 4), autoencoder=ae, random_state=0
    ).fit(X)
    assert dgmm.autoencoder_.image_shape_ == (4, 4, 1)
    assert dgmm.autoencoder_.architecture_ == "conv"
    assert ae.image_shape is None  # the given (unfitted) one is cloned, not modified


def test_deepgmm_image_shape_conflicting_with_the_autoencoder_is_an_error():
    X = np.random.RandomState(0).rand(30, 16)
    unfitted = AutoencoderTransformer(2, architecture="conv", image_shape=(2, 8), **TINY_AE)
    with pytest.raises(ValueError, match=r"image_shape=\(4, 4\).*conflicts.*2x8x1"):
        DeepGMMClustering(
            2, epochs=1, pseudo_label_epochs=1, image_shape=(4, 4), autoencoder=unfitted
        ).fit(X)

    flat = AutoencoderTransformer(2, **TINY_AE).fit(X)
    with pytest.raises(ValueError, match=r"conflicts.*fitted on flat vectors"):
        DeepGMMClustering(
            2, epochs=1, pseudo_label_epochs=1, image_shape=(4, 4), autoencoder=flat
        ).fit(X)

    conv = AutoencoderTransformer(2, architecture="conv", image_shape=(4, 4), **TINY_AE).fit(X)
    with pytest.raises(ValueError, match=r"conflicts.*fitted on images of 4x4x1"):
        DeepGMMClustering(
            2, epochs=1, pseudo_label_epochs=1, image_shape=(2, 8), autoencoder=conv
        ).fit(X)
    # the same shape in both places is fine, also spelled (H, W, 1)
    DeepGMMClustering(
        2, epochs=1, gmm_n_init=1, image_shape=(4, 4, 1), autoencoder=conv, random_state=0
    ).fit(X)
