"""Fetchers for the image-clustering benchmarks, in scikit-learn's style.

Each fetcher downloads the data set from its public source in its original
format (IDX for MNIST and Fashion-MNIST, LIBSVM for USPS, ZIP archives of PNG
files for COIL), verifies it, converts it to arrays once and caches those
under ``data_home``.
"""

import bz2
import gzip
import io
import re
import zipfile

import numpy as np
from sklearn.utils import Bunch

from ._base import RemoteFile, fetch_file, get_data_home, load_arrays, save_arrays

__all__ = ["fetch_mnist", "fetch_fashion_mnist", "fetch_usps", "fetch_coil20", "fetch_coil100"]

_IDX = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _idx_remotes(base, sha256s):
    return tuple(RemoteFile(f, base + f, "sha256:" + h) for f, h in zip(_IDX, sha256s))


# Checksums: MNIST and Fashion-MNIST sha256 as published with the data sets'
# common mirrors; USPS md5 as published by torchvision (no sha256 is published);
# COIL has no published checksum (trust on first use of an intact archive, see
# RemoteFile).
REMOTES = {
    "mnist": _idx_remotes(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    ),
    "fashion_mnist": _idx_remotes(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        ),
    ),
    "usps": (
        RemoteFile(
            "usps.bz2",
            "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/usps.bz2",
            "md5:ec16c51db3855ca6c91edd34d0e9b197",
        ),
        RemoteFile(
            "usps.t.bz2",
            "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/usps.t.bz2",
            "md5:8ea070ee2aca1ac39742fdd1ef5ed118",
        ),
    ),
    "coil20": (
        RemoteFile(
            "coil-20-proc.zip",
            "https://www.cs.columbia.edu/CAVE/databases/"
            "SLAM_coil-20_coil-100/coil-20/coil-20-proc.zip",
            None,
        ),
    ),
    "coil100": (
        RemoteFile(
            "coil-100.zip",
            "https://www.cs.columbia.edu/CAVE/databases/"
            "SLAM_coil-20_coil-100/coil-100/coil-100.zip",
            None,
        ),
    ),
}

# ---------------------------------------------------------------- parsers


def read_idx(path):
    """Array stored in an IDX file (gzip-compressed or not), as uint8."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(v) for v in np.frombuffer(raw[4:header], dtype=">u4"))
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(
            f"{path}: the IDX header announces {shape} but the file holds "
            f"{len(raw) - header} bytes of data; it is truncated or damaged."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_usps_libsvm(path):
    """16x16 USPS images in [0, 1] and 0-based labels from a LIBSVM file."""
    opener = bz2.open if str(path).endswith(".bz2") else open
    images, labels = [], []
    with opener(path, "rt") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                label = int(float(parts[0]))
                row = np.zeros(256, dtype=np.float32)  # LIBSVM omits zeros
                for item in parts[1:]:
                    i, v = item.split(":")
                    row[int(i) - 1] = float(v)
            except (ValueError, IndexError) as exc:
                raise ValueError(
                    f"{path}, line {lineno}: not a 256-feature LIBSVM row ({exc})."
                ) from None
            images.append(row)
            labels.append(label - 1)
    X = (np.asarray(images).reshape(-1, 16, 16) + 1.0) / 2.0  # [-1, 1] -> [0, 1]
    return np.clip(X, 0, 1).astype(np.float32), np.asarray(labels, dtype=np.int64)


_COIL_NAME = re.compile(r"obj(\d+)__(\d+)\.png$")


def read_coil_zip(path, image_size=None):
    """Images, 0-based object labels and pose numbers from a COIL ZIP archive."""
    from PIL import Image

    entries = []
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            m = _COIL_NAME.search(name)
            if m:
                entries.append((int(m.group(1)), int(m.group(2)), name))
        if not entries:
            raise ValueError(f"{path} holds no objN__P.png images; is it a COIL archive?")
        entries.sort()
        images = []
        for _, _, name in entries:
            with Image.open(io.BytesIO(z.read(name))) as im:
                im.load()
                if image_size is not None:
                    im = im.resize(image_size[::-1], Image.Resampling.LANCZOS)
                images.append(np.asarray(im))
    labels = np.array([o for o, _, _ in entries], dtype=np.int64)
    return (
        np.stack(images),
        labels - labels.min(),
        np.array([p for _, p, _ in entries], dtype=np.int64),
    )


# ---------------------------------------------------------------- fetchers


def _cached(name, data_home, download_if_missing, build, keys, suffix=""):
    folder = get_data_home(data_home) / name
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / f"{name}{suffix}.npz"
    if cache.exists():
        arrays = load_arrays(cache, keys)
        if arrays is not None:
            return arrays
    paths = [fetch_file(r, folder, download_if_missing=download_if_missing) for r in REMOTES[name]]
    arrays = build(paths)
    save_arrays(cache, **arrays)
    return arrays


def _result(arrays, subset, n_train, return_X_y, descr, **extra):
    images, target = arrays["images"], arrays["target"]
    if subset not in ("all", "train", "test"):
        raise ValueError(f"subset must be 'all', 'train' or 'test'; got {subset!r}.")
    sl = {"all": slice(None), "train": slice(None, n_train), "test": slice(n_train, None)}[subset]
    images, target = images[sl], target[sl]
    if return_X_y:
        return images, target
    extra = {k: v[sl] for k, v in extra.items()}
    return Bunch(
        images=images,
        data=images.reshape(len(images), -1),
        target=target,
        n_train=n_train if subset == "all" else None,
        DESCR=descr,
        **extra,
    )


def _fetch_idx(name, data_home, subset, download_if_missing, return_X_y, descr):
    def build(paths):
        X_train, y_train, X_test, y_test = (read_idx(p) for p in paths)
        for X, y in ((X_train, y_train), (X_test, y_test)):
            if X.ndim != 3 or y.ndim != 1 or len(X) != len(y):
                raise ValueError(
                    f"{name}: images of shape {X.shape} do not match labels of shape {y.shape}."
                )
        return {
            "images": np.concatenate([X_train, X_test]),
            "target": np.concatenate([y_train, y_test]).astype(np.int64),
            "n_train": np.array(len(y_train)),
        }

    arrays = _cached(name, data_home, download_if_missing, build, ("images", "target", "n_train"))
    return _result(arrays, subset, int(arrays["n_train"]), return_X_y, descr)


_DOC = """
    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.
    {param}download_if_missing : bool, default=True
        Download the data when it is not cached; if False, raise ``OSError``.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``images`` ({shape}), ``data`` (the images flattened, a view),
        ``target`` (int64, 0-based), {extra}``DESCR``.
    (images, target) : tuple if ``return_X_y`` is True.
"""
_SPLIT = dict(
    param="""subset : {'all', 'train', 'test'}, default='all'
        Which part: the training images, the test images or both (training
        first).
    """,
    extra="""``n_train`` (number of training samples at the start of
        ``images`` when ``subset="all"``), """,
)


def fetch_mnist(*, data_home=None, subset="all", download_if_missing=True, return_X_y=False):
    return _fetch_idx(
        "mnist",
        data_home,
        subset,
        download_if_missing,
        return_X_y,
        "MNIST handwritten digits, 60,000 training + 10,000 test images.",
    )


def fetch_fashion_mnist(
    *, data_home=None, subset="all", download_if_missing=True, return_X_y=False
):
    return _fetch_idx(
        "fashion_mnist",
        data_home,
        subset,
        download_if_missing,
        return_X_y,
        "Fashion-MNIST (Zalando), 60,000 + 10,000 images.",
    )


fetch_mnist.__doc__ = """MNIST digits (LeCun et al.), 70,000 images of 28x28, 10 classes.

    Downloaded in the original IDX format from a public mirror and verified
    against pinned sha256 sums.
""" + _DOC.format(shape="uint8 of shape (n, 28, 28)", **_SPLIT)

fetch_fashion_mnist.__doc__ = """Fashion-MNIST (Xiao et al.), 70,000 images of 28x28, 10 classes.

    Downloaded in the original IDX format from Zalando's public bucket and
    verified against pinned sha256 sums.
""" + _DOC.format(shape="uint8 of shape (n, 28, 28)", **_SPLIT)


def fetch_usps(*, data_home=None, subset="all", download_if_missing=True, return_X_y=False):
    def build(paths):
        X1, y1 = read_usps_libsvm(paths[0])
        X2, y2 = read_usps_libsvm(paths[1])
        return {
            "images": np.concatenate([X1, X2]),
            "target": np.concatenate([y1, y2]),
            "n_train": np.array(len(y1)),
        }

    arrays = _cached("usps", data_home, download_if_missing, build, ("images", "target", "n_train"))
    return _result(
        arrays,
        subset,
        int(arrays["n_train"]),
        return_X_y,
        "USPS handwritten digits, 7,291 training + 2,007 test images.",
    )


fetch_usps.__doc__ = """USPS digits, 9,298 images of 16x16 in [0, 1], 10 classes.

    Downloaded from the LIBSVM data page (``usps.bz2``, ``usps.t.bz2``) and
    verified against the md5 sums torchvision publishes (no sha256 is
    published for these files). The JULE paper used an 11,000-image copy.
""" + _DOC.format(shape="float32 of shape (n, 16, 16)", **_SPLIT)


def _fetch_coil(name, data_home, image_size, download_if_missing, return_X_y, descr):
    if image_size is not None:
        image_size = (
            (int(image_size), int(image_size))
            if np.isscalar(image_size)
            else tuple(int(s) for s in image_size)
        )
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"image_size must be an int or (height, width); got {image_size!r}.")
    suffix = "" if image_size is None else f"_{image_size[0]}x{image_size[1]}"

    def build(paths):
        X, y, pose = read_coil_zip(paths[0], image_size)
        return {"images": X, "target": y, "pose": pose}

    arrays = _cached(
        name, data_home, download_if_missing, build, ("images", "target", "pose"), suffix=suffix
    )
    return _result(arrays, "all", None, return_X_y, descr, pose=arrays["pose"])


_COIL_INTRO = """
    Downloaded from Columbia's CAVE page as the original ZIP of PNG files. No
    checksum is published for it: the first download whose archive reads
    through intact (every member's CRC checked) has its sha256 recorded in
    ``data_home``, and later downloads must match it. A damaged (truncated)
    download is deleted, not recorded: fetching again retries it.
"""
_COIL = dict(
    param="""image_size : int or (int, int), default=None
        Resize every image (Lanczos) to this size; ``None`` keeps 128x128.
    """,
    extra="""``pose`` (pose index or angle from the file
        name), """,
)


def fetch_coil20(*, data_home=None, image_size=None, download_if_missing=True, return_X_y=False):
    return _fetch_coil(
        "coil20",
        data_home,
        image_size,
        download_if_missing,
        return_X_y,
        "COIL-20 (processed): 20 objects x 72 poses, grey.",
    )


def fetch_coil100(*, data_home=None, image_size=None, download_if_missing=True, return_X_y=False):
    return _fetch_coil(
        "coil100",
        data_home,
        image_size,
        download_if_missing,
        return_X_y,
        "COIL-100: 100 objects x 72 poses, RGB.",
    )


fetch_coil20.__doc__ = (
    "COIL-20 objects, 1,440 grey images of 128x128, 20 classes.\n"
    + _COIL_INTRO
    + _DOC.format(shape="uint8 of shape (n, 128, 128)", **_COIL)
)
fetch_coil100.__doc__ = (
    "COIL-100 objects, 7,200 RGB images of 128x128, 100 classes.\n"
    + _COIL_INTRO
    + _DOC.format(shape="uint8 of shape (n, 128, 128, 3)", **_COIL)
)
