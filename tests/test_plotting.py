"""skjule.plotting: each plot draws what it says, and refuses what it cannot draw."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.cluster.hierarchy import is_valid_linkage  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from skjule import (  # noqa: E402
    GDLClustering,
    JULEClustering,
    cut_hierarchy,
    plotting,  # noqa: E402
)
from skjule._montage import make_montage, to_uint8  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(n_class=5, return_X_y=True)
    return X.reshape(-1, 8, 8), y


@pytest.fixture(scope="module")
def gdl(digits):
    return GDLClustering(n_clusters=5, random_state=0).fit(digits[0])


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_montage_geometry_and_scaling():
    imgs = np.arange(5 * 4 * 4, dtype=np.float64).reshape(5, 4, 4)
    sheet = make_montage(imgs, n_cols=3, min_cell=8, pad=1)
    # 2 rows x 3 cols of 8x8 cells (4 px enlarged x2), 1 px padding
    assert sheet.shape == (2 * 9 + 1, 3 * 9 + 1) and sheet.dtype == np.uint8
    u = to_uint8(imgs)
    assert (u.reshape(5, -1).min(1) == 0).all() and (u.reshape(5, -1).max(1) == 255).all()
    rgb = make_montage(np.zeros((2, 40, 40, 3), np.uint8))
    assert rgb.shape[-1] == 3
    with pytest.raises(ValueError, match="needs images"):
        make_montage(np.zeros((3, 10)))


def test_cluster_montage_has_one_row_per_cluster(digits, gdl):
    ax = plotting.plot_cluster_montage(digits[0], gdl.labels_, n_per_cluster=6)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 5
    sizes = [int(t.split("(")[1].rstrip(")")) for t in labels]
    assert sum(sizes) == len(digits[0])
    img = ax.get_images()[0].get_array()
    assert img.shape[1] == 6 * 34 + 2  # 6 cells of 32 px + padding
    ax = plotting.plot_cluster_montage(digits[0], gdl.labels_, max_clusters=2)
    assert len(ax.get_yticklabels()) == 2
    with pytest.raises(ValueError, match="one label each"):
        plotting.plot_cluster_montage(digits[0], gdl.labels_[:-1])


@pytest.mark.parametrize("method, dim", [("pca", 2), ("pca", 3), ("none", 2)])
def test_embedding_scatter(digits, gdl, method, dim):
    X = digits[0].reshape(len(digits[0]), -1)
    ax = plotting.plot_embedding(X, gdl.labels_, method=method, n_components=dim, max_points=300)
    offsets = ax.collections[0].get_offsets()
    assert len(offsets) == 300
    if dim == 3:
        assert ax.name == "3d"


def test_embedding_errors(digits):
    X = digits[0].reshape(len(digits[0]), -1)
    with pytest.raises(ValueError, match="n_components"):
        plotting.plot_embedding(X, digits[1], n_components=4)
    with pytest.raises(ValueError, match="method"):
        plotting.plot_embedding(X, digits[1], method="umap")
    with pytest.raises(ValueError, match="one label per row"):
        plotting.plot_embedding(X, digits[1][:3])


def test_dendrogram_linkage_matches_the_hierarchy(gdl):
    n = len(gdl.labels_)
    Z, sizes, final, top = plotting.dendrogram_linkage(gdl.children_, gdl.labels_, 25)
    assert is_valid_linkage(Z)
    assert sizes.sum() == n and len(sizes) == 25
    # the leaves are exactly the clusters of the hierarchy cut at 25
    cut = cut_hierarchy(gdl.children_, n, 25)
    assert sorted(sizes) == sorted(np.bincount(cut))
    assert set(final) == set(gdl.labels_)
    assert top == 25 - gdl.n_clusters_
    ax = plotting.plot_dendrogram(gdl, n_leaves=25)
    assert len(ax.get_xticklabels()) == 25
    with pytest.raises(ValueError, match="n_leaves must exceed"):
        plotting.dendrogram_linkage(gdl.children_, gdl.labels_, 5)


def test_history_and_unfitted_errors(digits):
    est = JULEClustering(n_clusters=5, epochs_per_period=2, random_state=0)
    est.fit(digits[0][:200])
    ax = plotting.plot_history(est)
    periods = [h for h in est.history_ if h["period"] != "RC"]
    assert len(ax.lines[0].get_xdata()) == len(periods) + 1
    assert ax.lines[0].get_ydata()[-1] == 5
    assert np.isfinite(ax.right_ax.lines[0].get_ydata()).all()
    plotting.plot_dendrogram(est, n_leaves=12)
    with pytest.raises(ValueError, match="call fit first"):
        plotting.plot_history(JULEClustering())
    with pytest.raises(ValueError, match="call fit first"):
        plotting.plot_dendrogram(GDLClustering())
