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


# ------------------------------------------------------------------- UMist


def _umist_mat(path, rng, counts=(3, 1, 2), size=(112, 92)):
    """A small file in umist_cropped.mat's layout: a 1xP cell array ``facedat``
    of uint8 arrays (height, width, n_images), one per person, and ``dirnames``."""
    from scipy.io import savemat

    faces = np.empty((1, len(counts)), dtype=object)
    names = np.empty((1, len(counts)), dtype=object)
    people = []
    for i, n in enumerate(counts):
        arr = rng.randint(0, 256, size=(*size, n)).astype(np.uint8)
        faces[0, i] = arr
        names[0, i] = f"1{'abcdefghijklmnopqrst'[i]}"
        people.append(np.moveaxis(arr, 2, 0))
    savemat(path, {"facedat": faces, "dirnames": names})
    return np.concatenate(people), np.repeat(np.arange(len(counts)), counts)


def _dead_remotes(monkeypatch, name):
    """Point ``name``'s remotes at a port where nothing listens: any download fails."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    s.close()
    monkeypatch.setitem(
        _fetchers.REMOTES,
        name,
        tuple(
            RemoteFile(r.filename, dead + r.filename, r.checksum) for r in _fetchers.REMOTES[name]
        ),
    )


def test_umist_fetcher_reads_the_mat_file_trusting_on_first_use(server, tmp_path, monkeypatch):
    root, base, handler = server
    X, y = _umist_mat(root / "umist_cropped.mat", np.random.RandomState(0))
    _point(monkeypatch, "umist", base, root, None)
    home = tmp_path / "home"

    with pytest.warns(UserWarning, match="No checksum is published"):
        data = datasets.fetch_umist(data_home=home)
    assert data.images.shape == (6, 112, 92) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images, X)
    np.testing.assert_array_equal(data.target, y)  # person by person, file order
    assert data.target.dtype == np.int64 and data.data.shape == (6, 112 * 92)
    assert "UMist" in data.DESCR
    recorded = (home / "umist" / "umist_cropped.mat.sha256").read_text().split()[0]
    assert recorded == _sha256(root / "umist_cropped.mat")

    # Resized like the COIL fetchers (Lanczos), cached per size, no new download.
    X32, y32 = datasets.fetch_umist(data_home=home, image_size=32, return_X_y=True)
    assert X32.shape == (6, 32, 32) and X32.dtype == np.uint8
    expected = np.asarray(Image.fromarray(X[4]).resize((32, 32), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(X32[4], expected)
    assert (home / "umist" / "umist_32x32.npz").exists()
    assert len(handler.requests) == 1
    with pytest.raises(ValueError, match="image_size"):
        datasets.fetch_umist(data_home=home, image_size=(32,))


def test_umist_layout_errors(tmp_path):
    from scipy.io import savemat

    path = tmp_path / "u.mat"
    savemat(path, {"faces": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="no variable 'facedat'.*cell array"):
        _fetchers.read_umist_mat(path)
    savemat(path, {"facedat": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="not a cell array"):
        _fetchers.read_umist_mat(path)
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0] = np.zeros((112, 92, 2), np.uint8)
    cells[0, 1] = np.zeros((112, 92, 2))  # double, not uint8
    savemat(path, {"facedat": cells})
    with pytest.raises(ValueError, match="person 2 .*float64"):
        _fetchers.read_umist_mat(path)
    cells[0, 1] = np.zeros((100, 92, 2), np.uint8)
    savemat(path, {"facedat": cells})
    with pytest.raises(ValueError, match="person 2 has images of \\(100, 92\\)"):
        _fetchers.read_umist_mat(path)
    path.write_bytes(b"not a MATLAB file at all")
    with pytest.raises(ValueError, match="cannot be read as a MATLAB file"):
        _fetchers.read_umist_mat(path)


# -------------------------------------------- original files already at hand


def test_original_files_already_at_hand_are_verified_and_used(tmp_path, monkeypatch):
    # MNIST with pinned sha256: files put in <data_home>/mnist/, no network.
    home = tmp_path / "home"
    (home / "mnist").mkdir(parents=True)
    X, y = _mnist_files(home / "mnist", np.random.RandomState(6))
    _point(monkeypatch, "mnist", "http://unused/", home / "mnist", lambda p: "sha256:" + _sha256(p))
    _dead_remotes(monkeypatch, "mnist")
    data = datasets.fetch_mnist(data_home=home, download_if_missing=False)
    np.testing.assert_array_equal(data.images, X)
    np.testing.assert_array_equal(data.target, y)

    # UMist without a published checksum: the user's copy is read through,
    # then its sha256 recorded (trust on first use), as a download's would be.
    X, y = _umist_mat(home / "umist_cropped.mat", np.random.RandomState(7), counts=(2, 2))
    (home / "umist").mkdir()
    (home / "umist_cropped.mat").rename(home / "umist" / "umist_cropped.mat")
    _dead_remotes(monkeypatch, "umist")
    with pytest.warns(UserWarning, match="recorded the sha256 of the copy at"):
        data = datasets.fetch_umist(data_home=home, download_if_missing=False)
    np.testing.assert_array_equal(data.images, X)
    np.testing.assert_array_equal(data.target, y)
    recorded = (home / "umist" / "umist_cropped.mat.sha256").read_text().split()[0]
    assert recorded == _sha256(home / "umist" / "umist_cropped.mat")


def test_a_wrong_file_at_hand_is_not_trusted(tmp_path, monkeypatch):
    from scipy.io import savemat

    folder = tmp_path / "umist"
    folder.mkdir()
    savemat(folder / "umist_cropped.mat", {"faces": np.zeros((3, 3))})  # intact, but not UMist
    _dead_remotes(monkeypatch, "umist")
    with pytest.warns(UserWarning, match="recorded the sha256"):
        with pytest.raises(ValueError, match="no variable 'facedat'"):
            datasets.fetch_umist(data_home=tmp_path, download_if_missing=False)
    assert not (folder / "umist_cropped.mat.sha256").exists()  # not the reference
    assert (folder / "umist_cropped.mat").exists()


def test_a_bad_copy_at_hand_is_reported_and_kept(tmp_path, monkeypatch):
    home = tmp_path / "home"
    folder = home / "mnist"
    folder.mkdir(parents=True)
    _mnist_files(folder, np.random.RandomState(8))
    _point(monkeypatch, "mnist", "http://unused/", folder, lambda p: "sha256:" + _sha256(p))
    _dead_remotes(monkeypatch, "mnist")
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-2] + b"zz")
    with pytest.raises(OSError, match="does not match its checksum.*not the pinned.*Replace it"):
        datasets.fetch_mnist(data_home=home, download_if_missing=False)
    assert bad.exists()  # the user's file is never deleted
    # Allowed to download: it says so, and keeps the file when the download fails.
    with pytest.warns(UserWarning, match="does not match its checksum"):
        with pytest.raises(OSError, match="Could not download"):
            datasets.fetch_mnist(data_home=home)
    assert bad.exists()

    # A damaged archive without a published checksum, and a record taken from it.
    folder = home / "umist"
    folder.mkdir()
    _umist_mat(folder / "umist_cropped.mat", np.random.RandomState(9))
    raw = (folder / "umist_cropped.mat").read_bytes()
    (folder / "umist_cropped.mat").write_bytes(raw[: len(raw) // 2])
    record = folder / "umist_cropped.mat.sha256"
    record.write_text(f"{_sha256(folder / 'umist_cropped.mat')}  umist_cropped.mat\n")
    _dead_remotes(monkeypatch, "umist")
    with pytest.raises(OSError, match="damaged archive"):
        datasets.fetch_umist(data_home=home, download_if_missing=False)
    assert (folder / "umist_cropped.mat").exists() and not record.exists()


def test_missing_files_without_download_create_nothing(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for fetch, name, needle in [
        (datasets.fetch_mnist, "mnist", "train-images-idx3-ubyte.gz"),
        (datasets.fetch_usps, "usps", "usps.t.bz2"),
        (datasets.fetch_coil20, "coil20", "coil-20-proc.zip"),
        (datasets.fetch_coil100, "coil100", "coil-100.zip"),
        (datasets.fetch_umist, "umist", "umist_cropped.mat"),
    ]:
        with pytest.raises(FileNotFoundError, match="download_if_missing=False") as info:
            fetch(data_home=home, download_if_missing=False)
        message = str(info.value)
        assert needle in message and str(home / name) in message
        assert str(home / f"{name}.npz") in message  # the prepared copy, the other way
    assert list(home.iterdir()) == []


# ---------------------------------------------------------- prepared copies


def _small_layouts(monkeypatch, **changes):
    from dataclasses import replace

    for name, fields in changes.items():
        monkeypatch.setitem(_fetchers.LAYOUTS, name, replace(_fetchers.LAYOUTS[name], **fields))


def test_prepared_copy_is_used_as_it_is(tmp_path):
    rng = np.random.RandomState(10)
    X = rng.randint(0, 256, size=(575, 32, 32)).astype(np.uint8)
    y = np.repeat(np.arange(20), [28] * 15 + [31] * 5)
    np.savez_compressed(tmp_path / "umist.npz", X=X, y=y)
    data = datasets.fetch_umist(data_home=tmp_path, image_size=32, download_if_missing=False)
    assert data.images.tobytes() == X.tobytes() and data.target.tobytes() == y.tobytes()
    assert "prepared copy" in data.DESCR and data.data.shape == (575, 1024)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["umist.npz"]  # nothing written

    # Never resized: the originals' 112x92 (image_size=None) or another size is refused.
    for size, asked in ((None, "112x92 \\(the originals' size\\)"), (64, "64x64")):
        with pytest.raises(
            ValueError, match=f"32x32 images.*asks for {asked}.*image_size=\\(32, 32\\)"
        ):
            datasets.fetch_umist(data_home=tmp_path, image_size=size)


def test_prepared_copy_with_a_train_test_split(tmp_path, monkeypatch):
    _small_layouts(monkeypatch, mnist=dict(n_samples=12, n_train=8, n_classes=3))
    rng = np.random.RandomState(11)
    X = rng.randint(0, 256, size=(12, 28, 28)).astype(np.uint8)
    y = np.arange(12) % 3
    np.savez(tmp_path / "mnist.npz", X=X, y=y, n_train=8)
    X_test, y_test = datasets.fetch_mnist(data_home=tmp_path, subset="test", return_X_y=True)
    np.testing.assert_array_equal(X_test, X[8:])
    np.testing.assert_array_equal(y_test, y[8:])
    assert datasets.fetch_mnist(data_home=tmp_path).n_train == 8
    np.savez(tmp_path / "mnist.npz", X=X, y=y, n_train=6)
    with pytest.raises(ValueError, match="not a prepared copy of MNIST: n_train"):
        datasets.fetch_mnist(data_home=tmp_path)


@pytest.mark.parametrize(
    "arrays, needle",
    [
        (dict(X=np.zeros((12, 16, 16), np.float32)), "no array y"),
        (dict(X=np.zeros((12, 16, 16)), y=np.arange(12) % 3), "X is float64"),
        (dict(X=np.zeros((11, 16, 16), np.float32), y=np.arange(11) % 3), "of shape \\(11,"),
        (dict(X=np.full((12, 16, 16), 2, np.float32), y=np.arange(12) % 3), "outside \\[0, 1\\]"),
        (dict(X=np.zeros((12, 16, 16), np.float32), y=np.arange(12) % 3 + 1), "from 1 to 3"),
        (dict(X=np.zeros((12, 16, 16), np.float32), y=np.zeros(12)), "y is float64"),
    ],
)
def test_prepared_copy_is_checked_structurally(tmp_path, monkeypatch, arrays, needle):
    _small_layouts(monkeypatch, usps=dict(n_samples=12, n_train=8, n_classes=3))
    np.savez(tmp_path / "usps.npz", **arrays)
    with pytest.raises(ValueError, match=f"not a prepared copy of USPS: .*{needle}"):
        datasets.fetch_usps(data_home=tmp_path)


def test_damaged_prepared_copy_is_a_clear_error(tmp_path):
    (tmp_path / "coil20.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(OSError, match="coil20.npz is damaged.*prepared copy of COIL-20"):
        datasets.fetch_coil20(data_home=tmp_path)


# --------------------------------------------------------- benchmark loaders


def test_benchmark_loaders_go_through_the_fetchers(tmp_path, monkeypatch):
    import sys

    from skjule._benchmark import load_benchmark

    rng = np.random.RandomState(12)
    X = rng.randint(0, 256, size=(575, 32, 32)).astype(np.uint8)
    y = np.repeat(np.arange(20), [28] * 15 + [31] * 5)
    np.savez_compressed(tmp_path / "umist.npz", X=X, y=y)
    Xb, yb = load_benchmark(tmp_path, "umist")
    assert Xb.tobytes() == X.tobytes() and yb.tobytes() == y.tobytes()
    with pytest.raises(FileNotFoundError, match="usps.npz.*downloads nothing.*fetch_usps"):
        load_benchmark(tmp_path, "usps")

    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    monkeypatch.delitem(sys.modules, "_common", raising=False)
    import _common

    with pytest.raises(SystemExit, match="not this project's copy"):
        _common.load(str(tmp_path), "umist")
    Xc, yc = _common.load(str(tmp_path), "umist", verify=False)
    assert Xc.tobytes() == X.tobytes() and yc.tobytes() == y.tobytes()
    _dead_remotes(monkeypatch, "coil20")
    with pytest.raises(SystemExit, match="Cannot load coil20: Could not download"):
        _common.load(str(tmp_path), "coil20")


@pytest.mark.slow
def test_fetchers_read_the_project_copies_as_the_benchmarks_did(benchmark_data):
    from skjule._benchmark import DATASETS, load_benchmark

    for name, (fname, _, _) in DATASETS.items():
        path = os.path.join(benchmark_data, fname)
        if not os.path.exists(path):
            continue
        with np.load(path) as d:
            X0, y0 = d["X"], d["y"]
        if name == "mnist-test":
            X0, y0 = X0[60000:], y0[60000:]
        X, y = load_benchmark(benchmark_data, name)
        assert X.dtype == X0.dtype and X.shape == X0.shape and X.tobytes() == X0.tobytes()
        assert y.dtype == y0.dtype and y.tobytes() == y0.tobytes()
