"""skjule.datasets: fetchers against a local HTTP server, and image folders."""

import bz2
import gzip
import hashlib
import http.server
import io
import os
import threading
import zipfile
from functools import partial

import numpy as np
import pytest

from skjule import datasets
from skjule.datasets import _fetchers
from skjule.datasets._base import RemoteFile

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

# ------------------------------------------------------------ local server


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate = set()  # file names served with a body cut short
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        name = self.path.lstrip("/")
        if name in self.truncate:
            body = open(os.path.join(self.directory, name), "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    _Handler.truncate = set()
    _Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_Handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/", _Handler
    httpd.shutdown()
    httpd.server_close()


def _sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


# ------------------------------------------------- files in original formats


def _write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def _mnist_files(root, rng, n_train=6, n_test=4):
    X = rng.randint(0, 256, size=(n_train + n_test, 28, 28)).astype(np.uint8)
    y = rng.randint(0, 10, size=n_train + n_test).astype(np.uint8)
    for name, arr in zip(_fetchers._IDX, (X[:n_train], y[:n_train], X[n_train:], y[n_train:])):
        _write_idx(root / name, arr)
    return X, y


def _usps_row(label, values):
    # LIBSVM omits zero features, as the real file does.
    items = " ".join(f"{i}:{v:.6f}" for i, v in enumerate(values, 1) if v != 0)
    return f"{label} {items}\n"


def _usps_files(root, rng):
    X = rng.choice([-1.0, -0.5, 0.0, 0.25, 1.0], size=(5, 256))
    y = np.array([1, 10, 3, 5, 2])
    for name, sl in (("usps.bz2", slice(0, 3)), ("usps.t.bz2", slice(3, 5))):
        with bz2.open(root / name, "wt") as f:
            f.writelines(_usps_row(lab, row) for lab, row in zip(y[sl], X[sl]))
    return (X.reshape(-1, 16, 16) + 1) / 2, y - 1


def _coil_zip(path, rng, folder, n_obj, n_pose, mode):
    images = {}
    with zipfile.ZipFile(path, "w") as z:
        for o in range(1, n_obj + 1):
            for p in range(n_pose):
                shape = (128, 128, 3) if mode == "RGB" else (128, 128)
                arr = rng.randint(0, 256, size=shape).astype(np.uint8)
                buf = io.BytesIO()
                Image.fromarray(arr, mode).save(buf, format="PNG")
                z.writestr(f"{folder}/obj{o}__{p * 5}.png", buf.getvalue())
                images[(o, p * 5)] = arr
    return images


def _point(monkeypatch, name, base, root, checksum):
    remotes = tuple(
        RemoteFile(
            r.filename, base + r.filename, None if checksum is None else checksum(root / r.filename)
        )
        for r in _fetchers.REMOTES[name]
    )
    monkeypatch.setitem(_fetchers.REMOTES, name, remotes)


# ------------------------------------------------------------------ fetchers


@pytest.mark.parametrize(
    "fetch, name",
    [(datasets.fetch_mnist, "mnist"), (datasets.fetch_fashion_mnist, "fashion_mnist")],
)
def test_idx_fetchers_download_verify_convert_and_cache(server, tmp_path, monkeypatch, fetch, name):
    root, base, handler = server
    X, y = _mnist_files(root, np.random.RandomState(0))
    _point(monkeypatch, name, base, root, lambda p: "sha256:" + _sha256(p))
    home = tmp_path / "home"

    data = fetch(data_home=home)
    np.testing.assert_array_equal(data.images, X)
    np.testing.assert_array_equal(data.target, y)
    assert data.images.dtype == np.uint8 and data.target.dtype == np.int64
    assert data.n_train == 6 and data.data.shape == (10, 784)
    assert len(handler.requests) == 4

    # Second call: from the converted cache, no network.
    X_test, y_test = fetch(data_home=home, subset="test", return_X_y=True)
    np.testing.assert_array_equal(X_test, X[6:])
    np.testing.assert_array_equal(y_test, y[6:])
    assert len(handler.requests) == 4
    assert not [p for p in (home / name).iterdir() if p.name.endswith(".part")]

    with pytest.raises(ValueError, match="subset"):
        fetch(data_home=home, subset="validation")


def test_usps_fetcher_reads_libsvm_and_checks_md5(server, tmp_path, monkeypatch):
    root, base, _ = server
    X, y = _usps_files(root, np.random.RandomState(1))
    _point(monkeypatch, "usps", base, root, lambda p: "md5:" + _md5(p))
    data = datasets.fetch_usps(data_home=tmp_path / "home")
    np.testing.assert_allclose(data.images, X, atol=1e-6)
    np.testing.assert_array_equal(data.target, y)
    assert data.images.shape == (5, 16, 16) and data.n_train == 3
    assert data.images.min() >= 0 and data.images.max() <= 1


@pytest.mark.parametrize(
    "fetch, name, folder, mode",
    [
        (datasets.fetch_coil20, "coil20", "coil-20-proc", "L"),
        (datasets.fetch_coil100, "coil100", "coil-100", "RGB"),
    ],
)
def test_coil_fetchers_trust_on_first_use(server, tmp_path, monkeypatch, fetch, name, folder, mode):
    root, base, _ = server
    rng = np.random.RandomState(2)
    zname = _fetchers.REMOTES[name][0].filename
    images = _coil_zip(root / zname, rng, folder, n_obj=3, n_pose=2, mode=mode)
    _point(monkeypatch, name, base, root, None)
    home = tmp_path / "home"

    with pytest.warns(UserWarning, match="No checksum is published"):
        data = fetch(data_home=home)
    assert data.images.shape == ((6, 128, 128, 3) if mode == "RGB" else (6, 128, 128))
    np.testing.assert_array_equal(data.target, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(data.pose, [0, 5, 0, 5, 0, 5])
    np.testing.assert_array_equal(data.images[2], images[(2, 0)])
    recorded = (home / name / (zname + ".sha256")).read_text().split()[0]
    assert recorded == _sha256(root / zname)

    small = fetch(data_home=home, image_size=32)
    assert small.images.shape[1:3] == (32, 32)

    # The upstream file changes: the recorded sha256 now rejects it.
    (home / name / zname).unlink()
    for p in (home / name).glob("*.npz"):
        p.unlink()
    _coil_zip(root / zname, rng, folder, n_obj=3, n_pose=2, mode=mode)
    with pytest.raises(OSError, match="sha256"):
        fetch(data_home=home)
    assert not (home / name / zname).exists()


def test_corrupted_download_is_rejected_and_leaves_nothing(server, tmp_path, monkeypatch):
    root, base, _ = server
    _mnist_files(root, np.random.RandomState(0))
    _point(monkeypatch, "mnist", base, root, lambda p: "sha256:" + _sha256(p))
    # Corrupt one file on the server after its checksum was pinned.
    target = root / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-3] + b"xyz")
    home = tmp_path / "home"
    with pytest.raises(OSError, match="sha256 is .* not the pinned"):
        datasets.fetch_mnist(data_home=home)
    left = sorted(p.name for p in (home / "mnist").iterdir())
    assert "train-labels-idx1-ubyte.gz" not in left
    assert not [n for n in left if n.endswith(".part") or n.endswith(".npz")]


def test_interrupted_download_leaves_nothing_and_resumes(server, tmp_path, monkeypatch):
    root, base, handler = server
    X, _ = _mnist_files(root, np.random.RandomState(3))
    _point(monkeypatch, "mnist", base, root, lambda p: "sha256:" + _sha256(p))
    handler.truncate = {"t10k-images-idx3-ubyte.gz"}
    home = tmp_path / "home"
    with pytest.raises(OSError, match="Could not download"):
        datasets.fetch_mnist(data_home=home)
    left = sorted(p.name for p in (home / "mnist").iterdir())
    assert "t10k-images-idx3-ubyte.gz" not in left
    assert not [n for n in left if n.endswith(".part")]
    handler.truncate = set()
    np.testing.assert_array_equal(datasets.fetch_mnist(data_home=home).images, X)


def test_offline_and_download_if_missing(tmp_path, monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    dead = f"http://127.0.0.1:{port}/"
    monkeypatch.setitem(
        _fetchers.REMOTES,
        "usps",
        tuple(
            RemoteFile(r.filename, dead + r.filename, r.checksum) for r in _fetchers.REMOTES["usps"]
        ),
    )
    with pytest.raises(OSError, match="Could not download .*put the file at"):
        datasets.fetch_usps(data_home=tmp_path)
    with pytest.raises(OSError, match="download_if_missing=False"):
        datasets.fetch_usps(data_home=tmp_path, download_if_missing=False)


def test_damaged_cache_is_rebuilt(server, tmp_path, monkeypatch):
    root, base, _ = server
    X, _ = _mnist_files(root, np.random.RandomState(4))
    _point(monkeypatch, "mnist", base, root, lambda p: "sha256:" + _sha256(p))
    home = tmp_path / "home"
    datasets.fetch_mnist(data_home=home)
    (home / "mnist" / "mnist.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.warns(UserWarning, match="unreadable cache"):
        data = datasets.fetch_mnist(data_home=home)
    np.testing.assert_array_equal(data.images, X)


def test_damaged_raw_file_is_downloaded_again(server, tmp_path, monkeypatch):
    root, base, handler = server
    X, _ = _mnist_files(root, np.random.RandomState(5))
    _point(monkeypatch, "mnist", base, root, lambda p: "sha256:" + _sha256(p))
    folder = tmp_path / "home" / "mnist"
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"half a file")
    with pytest.warns(UserWarning, match="does not match its checksum"):
        data = datasets.fetch_mnist(data_home=tmp_path / "home")
    np.testing.assert_array_equal(data.images, X)


def test_truncated_idx_is_a_clear_error(tmp_path):
    path = tmp_path / "x.gz"
    _write_idx(path, np.zeros((3, 4, 4)))
    raw = gzip.open(path).read()
    with gzip.open(path, "wb") as f:
        f.write(raw[:-5])
    with pytest.raises(ValueError, match="truncated or damaged"):
        _fetchers.read_idx(path)
    path.write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        _fetchers.read_idx(path)


def test_get_data_home_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SKJULE_DATA", str(tmp_path / "cache"))
    assert datasets.get_data_home() == tmp_path / "cache"
    assert (tmp_path / "cache").is_dir()
    datasets.clear_data_home()
    assert not (tmp_path / "cache").exists()


# -------------------------------------------------------------- image folder


def _png(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8), mode).save(path)


def test_load_image_folder_flat_and_labelled(tmp_path):
    rng = np.random.RandomState(0)
    arrs = {}
    for cls in ("cats", "dogs"):
        for i in range(3):
            arrs[f"{cls}/{i}.png"] = rng.randint(0, 256, (12, 10))
            _png(tmp_path / cls / f"{i}.png", arrs[f"{cls}/{i}.png"])
    (tmp_path / "notes.txt").write_text("not an image")
    data = datasets.load_image_folder(tmp_path)
    assert data.images.shape == (6, 12, 10) and data.images.dtype == np.uint8
    assert list(data.filenames) == sorted(arrs)
    np.testing.assert_array_equal(data.target, [0, 0, 0, 1, 1, 1])
    assert list(data.target_names) == ["cats", "dogs"]
    for img, name in zip(data.images, data.filenames):
        np.testing.assert_array_equal(img, arrs[name])
    assert datasets.load_image_folder(tmp_path, labels=None).target is None


def test_load_image_folder_colour_resize_and_errors(tmp_path):
    rng = np.random.RandomState(1)
    _png(tmp_path / "a.png", rng.randint(0, 256, (8, 8)))
    _png(tmp_path / "b.jpg", rng.randint(0, 256, (16, 20, 3)), "RGB")
    with pytest.raises(ValueError, match="different sizes.*resize="):
        datasets.load_image_folder(tmp_path)
    data = datasets.load_image_folder(tmp_path, resize=8)
    assert data.images.shape == (2, 8, 8, 3)  # one colour image -> all RGB
    assert data.target is None  # images at the top level: no labels
    grey = datasets.load_image_folder(tmp_path, resize=(6, 9), color="grey")
    assert grey.images.shape == (2, 6, 9)
    with pytest.raises(ValueError, match="labels='subfolders'"):
        datasets.load_image_folder(tmp_path, resize=8, labels="subfolders")

    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="Cannot read the image .*broken.png"):
        datasets.load_image_folder(tmp_path, resize=8)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        datasets.load_image_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No image files"):
        datasets.load_image_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="resize"):
        datasets.load_image_folder(tmp_path, resize=0)
    with pytest.raises(ValueError, match="color"):
        datasets.load_image_folder(tmp_path, color="cmyk")


def test_load_image_folder_feeds_the_estimators(tmp_path):
    from skjule import GDLClustering

    rng = np.random.RandomState(2)
    stripes = np.zeros((8, 8))
    stripes[::2] = 200
    for cls, pattern in (("rows", stripes), ("columns", stripes.T)):
        for i in range(15):
            _png(tmp_path / cls / f"{i}.png", np.clip(pattern + rng.randint(0, 40, (8, 8)), 0, 255))
    data = datasets.load_image_folder(tmp_path)
    labels = GDLClustering(n_clusters=2, n_neighbors=5).fit_predict(data.images)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(data.target, labels) == 1.0
