"""Fetchers for the image-clustering benchmarks, in scikit-learn's style.

Each fetcher reads the data set in its original format (IDX for MNIST and
Fashion-MNIST, LIBSVM for USPS, ZIP archives of PNG files for COIL, a MATLAB
file for UMist) from ``<data_home>/<name>/``, downloading from the public
source what is not there, verifies it, converts it to arrays once and caches
those in the same folder.

Where the data come from, first match wins:

1. ``<data_home>/<name>.npz``, a *prepared copy*: arrays the user has already
   converted (``X``, ``y``, ...). No public checksum can exist for it, so it is
   verified structurally only (shapes, dtype, labels) and returned as it is.
2. ``<data_home>/<name>/<name>[_HxW].npz``, the fetcher's own cache.
3. The original files in ``<data_home>/<name>/``, put there by the user or
   downloaded there, verified against their pinned checksums (or the sha256
   recorded on first use when none is published), then converted and cached.
"""

import bz2
import gzip
import io
import re
import textwrap
import zipfile
from dataclasses import dataclass

import numpy as np
from sklearn.utils import Bunch

from ._base import (
    RemoteFile,
    _recorded,
    fetch_file,
    get_data_home,
    load_arrays,
    save_arrays,
)

__all__ = [
    "fetch_mnist",
    "fetch_fashion_mnist",
    "fetch_usps",
    "fetch_coil20",
    "fetch_coil100",
    "fetch_umist",
]

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
# COIL and UMist have no published checksum (trust on first use of an intact
# file, see RemoteFile).
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
    "umist": (
        RemoteFile("umist_cropped.mat", "https://cs.nyu.edu/~roweis/data/umist_cropped.mat", None),
    ),
}


@dataclass(frozen=True)
class _Layout:
    """What a data set holds: checked in a prepared copy, stated in errors."""

    title: str
    n_samples: int
    n_classes: int
    image_shape: tuple  # of the originals: (height, width[, channels])
    dtype: str
    n_train: int | None = None


LAYOUTS = {
    "mnist": _Layout("MNIST", 70000, 10, (28, 28), "uint8", 60000),
    "fashion_mnist": _Layout("Fashion-MNIST", 70000, 10, (28, 28), "uint8", 60000),
    "usps": _Layout("USPS", 9298, 10, (16, 16), "float32", 7291),
    "coil20": _Layout("COIL-20", 1440, 20, (128, 128), "uint8"),
    "coil100": _Layout("COIL-100", 7200, 100, (128, 128, 3), "uint8"),
    "umist": _Layout("UMist", 575, 20, (112, 92), "uint8"),
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


def read_umist_mat(path, image_size=None):
    """Images and 0-based person labels from ``umist_cropped.mat``.

    The file (MATLAB v5) holds a cell array ``facedat`` with one uint8 array
    of shape (height, width, n_images) per person (112x92 in the original);
    images come out person by person, in the file's order.
    """
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except MemoryError:
        raise
    except NotImplementedError as exc:  # scipy's message for v7.3 (HDF5) files
        raise ValueError(
            f"{path} cannot be read ({exc}); the original umist_cropped.mat is a MATLAB v5 file."
        ) from None
    except Exception as exc:  # noqa: BLE001 (many kinds: OSError, ValueError, ...)
        raise ValueError(
            f"{path} cannot be read as a MATLAB file ({type(exc).__name__}: {exc}); "
            "it is damaged or not umist_cropped.mat."
        ) from None
    layout = (
        "the original holds a cell array 'facedat' of one uint8 array "
        "(height, width, n_images) per person"
    )
    cells = mat.get("facedat")
    if cells is None:
        names = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path} has no variable 'facedat' (it has {names}); {layout}.")
    if cells.dtype != object or cells.size == 0:
        raise ValueError(f"{path}: 'facedat' is not a cell array ({cells.dtype}); {layout}.")
    images = []
    for i, cell in enumerate(cells.ravel(order="F")):
        cell = np.asarray(cell)
        if cell.ndim == 2:  # MATLAB drops a trailing dimension of 1
            cell = cell[:, :, None]
        if cell.ndim != 3 or cell.dtype != np.uint8 or cell.shape[2] == 0:
            raise ValueError(
                f"{path}: person {i + 1} of 'facedat' is {cell.dtype} of shape "
                f"{cell.shape}; {layout}."
            )
        if images and cell.shape[:2] != images[0].shape[1:]:
            raise ValueError(
                f"{path}: person {i + 1} has images of {cell.shape[:2]}, person 1 of "
                f"{images[0].shape[1:]}; {layout}, all of the same size."
            )
        images.append(np.moveaxis(cell, 2, 0))
    counts = [len(a) for a in images]
    images = np.ascontiguousarray(np.concatenate(images))
    if image_size is not None:
        images = _resize(images, image_size)
    return images, np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def _resize(images, image_size):
    """Images resized (Lanczos) to ``image_size`` (height, width), as uint8."""
    from PIL import Image

    size = tuple(image_size)[::-1]  # PIL takes (width, height)
    return np.stack(
        [np.asarray(Image.fromarray(im).resize(size, Image.Resampling.LANCZOS)) for im in images]
    )


# ---------------------------------------------------------------- fetchers


def _image_size(image_size):
    """``image_size`` as (height, width), or None."""
    if image_size is None:
        return None
    try:
        size = (
            (int(image_size), int(image_size))
            if np.isscalar(image_size)
            else tuple(int(s) for s in image_size)
        )
    except (TypeError, ValueError):
        size = ()
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image_size must be an int or (height, width); got {image_size!r}.")
    return size


def _prepared(name, home, image_size=None):
    """Arrays of the prepared copy ``<home>/<name>.npz``; None when there is none.

    A prepared copy is a converted archive the user put directly in
    ``data_home``: ``X`` (the images) and ``y`` (0-based labels), optionally
    ``n_train`` and ``pose`` (or ``angle``). Nothing public can pin its bytes,
    so it is checked structurally against ``LAYOUTS[name]``, with the image
    size ``image_size`` asks for (the originals' when None).
    """
    path = home / f"{name}.npz"
    if not path.is_file():
        return None
    layout = LAYOUTS[name]
    try:
        with np.load(path, allow_pickle=False) as d:
            arrays = {k: d[k] for k in ("X", "y", "n_train", "pose", "angle") if k in d.files}
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        # numpy, zipfile and zlib raise many kinds (ValueError, BadZipFile,
        # EOFError, zlib.error, ...): all mean "this file cannot be read".
        raise OSError(
            f"{path} is damaged or not a NumPy .npz archive ({type(exc).__name__}: {exc}). "
            f"Lying directly in data_home, it is read as a prepared copy of {layout.title}: "
            "replace it with a good copy, or move it away to use the original files."
        ) from None

    image = layout.image_shape if image_size is None else image_size + layout.image_shape[2:]
    shape = (layout.n_samples, *image)
    k = layout.n_classes

    def wrong(what):
        extra = (
            f", n_train = {layout.n_train} (optional)"
            if layout.n_train is not None
            else ", pose (optional)"
            if name.startswith("coil")
            else ""
        )
        return ValueError(
            f"{path} is not a prepared copy of {layout.title}: {what}. A prepared copy, an "
            f"archive of converted arrays lying directly in data_home, holds X ({layout.dtype} "
            f"of shape {shape}) and y (integer labels 0 to {k - 1}){extra}; fix it, or move it "
            "away to use the original files."
        )

    X, y = arrays.get("X"), arrays.get("y")
    if X is None or y is None:
        raise wrong("it has no array " + ("X" if X is None else "y"))
    if (
        X.ndim == len(shape)
        and X.shape[0] == layout.n_samples
        and X.shape[3:] == shape[3:]
        and X.shape[1:3] != shape[1:3]
        and name in _RESIZABLE
    ):
        h, w = X.shape[1:3]
        asked = "the originals' size" if image_size is None else f"image_size={image_size}"
        raise ValueError(
            f"{path} is a prepared copy of {layout.title} with {h}x{w} images, but the call "
            f"asks for {shape[1]}x{shape[2]} ({asked}). A prepared copy is never resized: "
            f"pass image_size=({h}, {w}) to use it, or use another data_home to get the "
            "original files at another size."
        )
    if X.dtype != np.dtype(layout.dtype) or X.shape != shape:
        raise wrong(f"X is {X.dtype} of shape {X.shape}")
    if X.dtype.kind == "f" and not (np.all(np.isfinite(X)) and X.min() >= 0 and X.max() <= 1):
        raise wrong("X has values outside [0, 1]")
    if y.shape != (layout.n_samples,) or y.dtype.kind not in "iu":
        raise wrong(f"y is {y.dtype} of shape {y.shape}")
    if not np.array_equal(np.unique(y), np.arange(k)):
        raise wrong(f"y holds {len(np.unique(y))} labels from {y.min()} to {y.max()}")
    out = {"images": X, "target": y.astype(np.int64, copy=False)}
    if layout.n_train is not None:
        n_train = arrays.get("n_train", np.array(layout.n_train))
        if n_train.shape != () or n_train.dtype.kind not in "iu" or n_train != layout.n_train:
            raise wrong(f"n_train is {n_train!r}")
        out["n_train"] = np.array(layout.n_train)
    pose = arrays.get("pose", arrays.get("angle"))
    if pose is not None and (pose.shape != (layout.n_samples,) or pose.dtype.kind not in "iu"):
        raise wrong(f"pose is {pose.dtype} of shape {pose.shape}")
    out["pose"] = pose
    return out


_RESIZABLE = ("coil20", "coil100", "umist")


def _cached(name, home, download_if_missing, build, keys, suffix=""):
    folder = home / name
    cache = folder / f"{name}{suffix}.npz"
    if cache.exists():
        arrays = load_arrays(cache, keys)
        if arrays is not None:
            return arrays
    remotes = REMOTES[name]
    missing = [r for r in remotes if not (folder / r.filename).exists()]
    if missing and not download_if_missing:  # says all there is to know; creates nothing
        raise FileNotFoundError(
            f"{LAYOUTS[name].title} is not in {home} and download_if_missing=False: "
            f"{folder} lacks {', '.join(r.filename for r in missing)}. Put the original "
            f"files there (from {', '.join(r.url for r in missing)}), or a prepared copy "
            f"at {home / (name + '.npz')}, or allow the download."
        )
    # sha256 recorded on first use only for files that convert: a wrong file
    # (not the data set at all) must not become the reference.
    unrecorded = [
        _recorded(r, folder)
        for r in remotes
        if r.checksum is None and not _recorded(r, folder).exists()
    ]
    paths = [fetch_file(r, folder, download_if_missing=download_if_missing) for r in remotes]
    try:
        arrays = build(paths)
    except Exception:
        for record in unrecorded:
            record.unlink(missing_ok=True)
        raise
    save_arrays(cache, **arrays)
    return arrays


def _load(name, data_home, download_if_missing, build, keys, descr, image_size=None):
    """(arrays, DESCR): the prepared copy when there is one, else the originals."""
    home = get_data_home(data_home)
    arrays = _prepared(name, home, image_size)
    if arrays is not None:
        return arrays, (
            f"{descr}\n\nRead from {home / (name + '.npz')}, a prepared copy (converted "
            "arrays supplied by the user), verified structurally only."
        )
    suffix = "" if image_size is None else f"_{image_size[0]}x{image_size[1]}"
    return _cached(name, home, download_if_missing, build, keys, suffix), descr


def _result(arrays, subset, n_train, return_X_y, descr, **extra):
    images, target = arrays["images"], arrays["target"]
    if subset not in ("all", "train", "test"):
        raise ValueError(f"subset must be 'all', 'train' or 'test'; got {subset!r}.")
    sl = {"all": slice(None), "train": slice(None, n_train), "test": slice(n_train, None)}[subset]
    images, target = images[sl], target[sl]
    if return_X_y:
        return images, target
    extra = {k: None if v is None else v[sl] for k, v in extra.items()}
    return Bunch(
        images=images,
        data=images.reshape(len(images), -1),
        target=target,
        n_train=n_train if subset == "all" else None,
        DESCR=descr,
        **extra,
    )


def _fetch_idx(name, data_home, subset, download_if_missing, return_X_y, descr):
    if subset not in ("all", "train", "test"):  # before anything is read
        raise ValueError(f"subset must be 'all', 'train' or 'test'; got {subset!r}.")

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

    arrays, descr = _load(
        name, data_home, download_if_missing, build, ("images", "target", "n_train"), descr
    )
    return _result(arrays, subset, int(arrays["n_train"]), return_X_y, descr)


# ------------------------------------------------------------- docstrings

_DOC = """
    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder of the data; see :func:`get_data_home` and the Notes.
    {param}download_if_missing : bool, default=True
        Download the original files that are not in ``data_home``; if False,
        raise ``OSError`` instead.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``images`` ({shape}),
        ``data`` (the images flattened, a view), ``target`` (int64, 0-based),
        {extra}``DESCR``.
    (images, target) : tuple of ndarray
        Returned instead of the Bunch when ``return_X_y`` is True: the same
        ``images`` and ``target`` arrays, without the other fields.

    Raises
    ------
    OSError
        When an original file is missing and ``download_if_missing`` is
        False, when a download fails, when a file does not match its
        checksum and cannot be replaced by a verified download, or when the
        prepared copy cannot be read.
    ValueError
        When a file does not have the data set's layout, or the prepared copy
        does not have the expected structure (see the Notes).

    Notes
    -----
    **Original files you already have.** Put {files} in
    ``<data_home>/{name}/``: {check} and then used without any download
    (converted once and cached there as ``{name}{cache}.npz``). A file that
    fails verification is never deleted: with ``download_if_missing=True`` a
    verified download replaces it, otherwise ``OSError`` says what is wrong.

    **A prepared copy.** An archive ``<data_home>/{name}.npz`` holding arrays
    ``X`` ({prepared}) and ``y`` (integer labels, 0-based){optional} is
    taken as a copy already converted by the user and returned as it is,
    before any original file is looked at; nothing is downloaded or written.
    No public checksum can exist for converted arrays, so it is verified
    structurally only: {n} images, that dtype and shape, labels 0 to
    {k_1}.{size_rule}

    Examples
    --------
    >>> from skjule.datasets import {func}
    >>> {example}  # doctest: +SKIP
    >>> {shape_call}  # doctest: +SKIP
    {shape_out}
"""

_SPLIT = dict(
    param="""subset : {'all', 'train', 'test'}, default='all'
        Which part: the training images, the test images or both (training
        first).
    """,
    extra="""``n_train`` (number of training samples at the start of
        ``images`` when ``subset="all"``), """,
    cache="",
    size_rule="",
)

_IMAGE_SIZE = """image_size : int or (int, int), default=None
        Resize every image (Lanczos) to this size (height, width); ``None``
        keeps the originals' {size}.
    """

_SIZE_RULE = """

    Its images must already have the size the call asks for: the originals'
    {size} with ``image_size=None``, ``image_size`` otherwise (a prepared
    copy is never resized: a 32x32 one needs ``image_size=32``, and one of
    another size raises ``ValueError``). Results on resampled images are
    comparable only between copies of the same size, and even then only
    approximately unless the same resampling made them.
"""

_TOFU = (
    "as no checksum is published for it, the sha256 of the first intact copy "
    "(downloaded or yours, read through to check it) is recorded next to it in "
    "``{file}.sha256`` and later copies must match it; it is verified"
)


def _doc(summary, intro, **fields):
    """The docstring, with the paragraphs of its Notes filled to 79 columns."""
    doc = f"{summary}\n{intro}" + _DOC.format(**fields)
    head, rest = doc.split("    Notes\n    -----\n")
    notes, examples = rest.split("    Examples\n")
    notes = "\n\n".join(
        textwrap.fill(
            " ".join(paragraph.split()),
            79,
            initial_indent="    ",
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        for paragraph in notes.split("\n\n")
        if paragraph.strip()
    )
    return f"{head}    Notes\n    -----\n{notes}\n\n    Examples\n{examples}"


# ---------------------------------------------------------------- fetchers


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


_IDX_FILES = (
    "the four IDX files ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``, "
    "``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (gzip-compressed, "
    "as published)"
)
_IDX_FIELDS = dict(
    files=_IDX_FILES,
    check="each is verified against its pinned sha256",
    shape="uint8 of shape (n, 28, 28)",
    prepared="uint8 of shape (70000, 28, 28), training images first",
    optional=" and optionally ``n_train`` (60000)",
    n="70,000",
    k_1="9",
    **_SPLIT,
)

fetch_mnist.__doc__ = _doc(
    "MNIST digits (LeCun et al.), 70,000 images of 28x28, 10 classes.",
    """
    Downloaded in the original IDX format from a public mirror and verified
    against pinned sha256 sums.
""",
    name="mnist",
    func="fetch_mnist",
    example='X, y = fetch_mnist(subset="test", return_X_y=True)',
    shape_call="X.shape",
    shape_out="(10000, 28, 28)",
    **_IDX_FIELDS,
)

fetch_fashion_mnist.__doc__ = _doc(
    "Fashion-MNIST (Xiao et al.), 70,000 images of 28x28, 10 classes.",
    """
    Downloaded in the original IDX format from Zalando's public bucket and
    verified against pinned sha256 sums.
""",
    name="fashion_mnist",
    func="fetch_fashion_mnist",
    example="fashion = fetch_fashion_mnist()",
    shape_call="fashion.images.shape, fashion.n_train",
    shape_out="((70000, 28, 28), 60000)",
    **_IDX_FIELDS,
)


def fetch_usps(*, data_home=None, subset="all", download_if_missing=True, return_X_y=False):
    if subset not in ("all", "train", "test"):  # before anything is read
        raise ValueError(f"subset must be 'all', 'train' or 'test'; got {subset!r}.")

    def build(paths):
        X1, y1 = read_usps_libsvm(paths[0])
        X2, y2 = read_usps_libsvm(paths[1])
        return {
            "images": np.concatenate([X1, X2]),
            "target": np.concatenate([y1, y2]),
            "n_train": np.array(len(y1)),
        }

    arrays, descr = _load(
        "usps",
        data_home,
        download_if_missing,
        build,
        ("images", "target", "n_train"),
        "USPS handwritten digits, 7,291 training + 2,007 test images.",
    )
    return _result(arrays, subset, int(arrays["n_train"]), return_X_y, descr)


fetch_usps.__doc__ = _doc(
    "USPS digits, 9,298 images of 16x16 in [0, 1], 10 classes.",
    """
    Downloaded from the LIBSVM data page (``usps.bz2``, ``usps.t.bz2``) and
    verified against the md5 sums torchvision publishes (no sha256 is
    published for these files). The JULE paper used an 11,000-image copy.
""",
    name="usps",
    func="fetch_usps",
    files="``usps.bz2`` (training) and ``usps.t.bz2`` (test), bz2-compressed as published",
    check="each is verified against its pinned md5",
    shape="float32 of shape (n, 16, 16)",
    prepared="float32 in [0, 1] of shape (9298, 16, 16), training images first",
    optional=" and optionally ``n_train`` (7291)",
    n="9,298",
    k_1="9",
    example="usps = fetch_usps()",
    shape_call="usps.images.shape, usps.n_train",
    shape_out="((9298, 16, 16), 7291)",
    **_SPLIT,
)


def _fetch_coil(name, data_home, image_size, download_if_missing, return_X_y, descr):
    image_size = _image_size(image_size)

    def build(paths):
        X, y, pose = read_coil_zip(paths[0], image_size)
        return {"images": X, "target": y, "pose": pose}

    arrays, descr = _load(
        name, data_home, download_if_missing, build, ("images", "target", "pose"), descr, image_size
    )
    return _result(arrays, "all", None, return_X_y, descr, pose=arrays["pose"])


_COIL_INTRO = """
    Downloaded from Columbia's CAVE page as the original ZIP of PNG files. No
    checksum is published for it: the first download whose archive reads
    through intact (every member's CRC checked) has its sha256 recorded in
    ``data_home``, and later downloads must match it. A damaged (truncated)
    download is deleted, not recorded: fetching again retries it.
"""


def _coil_fields(name, zname, shape, n, k):
    return dict(
        name=name,
        func=f"fetch_{name}",
        param=_IMAGE_SIZE.format(size="128x128"),
        extra="""``pose`` (pose index or angle from the file
        name; None from a prepared copy without one), """,
        files=f"``{zname}`` (as published)",
        check=_TOFU.format(file=zname),
        cache="[_HxW]",
        shape=f"uint8 of shape (n, {shape})",
        prepared=f"uint8 of shape ({n}, {shape}) with images of the requested size",
        optional=" and optionally ``pose`` (or ``angle``)",
        n=f"{int(n):,}",
        k_1=str(k - 1),
        size_rule=_SIZE_RULE.format(size="128x128"),
        example=f"X, y = fetch_{name}(image_size=32, return_X_y=True)",
        shape_call="X.shape",
        shape_out=f"({int(n)}, {shape.replace('128, 128', '32, 32')})",
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


fetch_coil20.__doc__ = _doc(
    "COIL-20 objects, 1,440 grey images of 128x128, 20 classes.",
    _COIL_INTRO,
    **_coil_fields("coil20", "coil-20-proc.zip", "128, 128", 1440, 20),
)
fetch_coil100.__doc__ = _doc(
    "COIL-100 objects, 7,200 RGB images of 128x128, 100 classes.",
    _COIL_INTRO,
    **_coil_fields("coil100", "coil-100.zip", "128, 128, 3", 7200, 100),
)


def fetch_umist(*, data_home=None, image_size=None, download_if_missing=True, return_X_y=False):
    image_size = _image_size(image_size)

    def build(paths):
        X, y = read_umist_mat(paths[0], image_size)
        return {"images": X, "target": y}

    arrays, descr = _load(
        "umist",
        data_home,
        download_if_missing,
        build,
        ("images", "target"),
        "UMist faces (Graham and Allinson), cropped: 575 grey images of 112x92 of "
        "20 people, each turning from profile to frontal view.",
        image_size,
    )
    return _result(arrays, "all", None, return_X_y, descr)


fetch_umist.__doc__ = _doc(
    "UMist faces, 575 grey images of 112x92 of 20 people (the classes).",
    """
    The cropped UMist set as Sam Roweis distributed it, downloaded from his
    data page as the original MATLAB file ``umist_cropped.mat`` (a cell
    array ``facedat`` of one 112x92xN uint8 array per person) and read with
    :func:`scipy.io.loadmat`. No checksum is published for it: the first
    download that reads through intact has its sha256 recorded in
    ``data_home``, and later downloads must match it. The JULE paper used
    the images at 112x92.
""",
    name="umist",
    func="fetch_umist",
    param=_IMAGE_SIZE.format(size="112x92"),
    extra="",
    files="``umist_cropped.mat`` (as published)",
    check=_TOFU.format(file="umist_cropped.mat"),
    cache="[_HxW]",
    shape="uint8 of shape (n, 112, 92)",
    prepared="uint8 of shape (575, 112, 92) with images of the requested size",
    optional="",
    n="575",
    k_1="19",
    size_rule=_SIZE_RULE.format(size="112x92"),
    example="X, y = fetch_umist(image_size=32, return_X_y=True)",
    shape_call="X.shape, len(set(y))",
    shape_out="((575, 32, 32), 20)",
)
