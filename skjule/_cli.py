"""The ``skjule`` command: cluster a folder of images, or run the benchmarks.

    skjule cluster PATH --n-clusters K [--method jule|gdl|deepgmm]
                   [--out labels.csv] [--montage DIR] [--force]
    skjule benchmark --data-home DIR [--datasets ...] [--methods ...]

The command never destroys data. Before anything is loaded or fitted, every
output (``--out``, ``--montage``, ``--output``) is planned: an output that is
an input (or would land among the input images) is refused even with
``--force``; an existing output file, or a non-empty ``--montage`` folder, is
refused without ``--force``; the folder of each output must exist (``--montage``
may be created) and accept a file. The outputs are then written to temporary
files beside their targets and moved into place together (``os.replace``) only
once all of them are complete, so a failure leaves every file as it was.

Exit status: 0 success; 1 a data, input or output error (one line on stderr);
2 invalid options (one line); 3 an internal error, i.e. a bug (one line naming
the exception; ``--debug`` shows the traceback); 130 interrupted.
"""

import argparse
import contextlib
import csv
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

EXIT_OK = 0
EXIT_ERROR = 1  # bad input data, unusable output path, failed fit or write
EXIT_USAGE = 2  # invalid options (argparse's status)
EXIT_INTERNAL = 3  # a bug in skjule
EXIT_INTERRUPTED = 130

_METHOD_HELP = ("jule: CNN + agglomerative clustering learned jointly (slow, best on "
                "images); gdl: the agglomerative engine alone (fast); deepgmm: "
                "autoencoder + Gaussian mixture learned jointly")

#: The names of the contact sheets; only files with such a name *and* the
#: ``_SHEET_TAG`` PNG text chunk (written by skjule) are ever removed.
_SHEET_NAME = re.compile(r"cluster_\d+\.png\Z")
_SHEET_TAG = ("Software", "skjule contact sheet")
_TMP_SUFFIX = ".skjule-tmp"


class CLIError(Exception):
    """A user or data error: printed as one line, exit code 1."""


def _one_line(text):
    """``text`` on one line (messages may hold newlines, e.g. from numpy)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors reported on one line (status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"skjule: error: {_one_line(message)} "
                              f"(see '{self.prog} --help')\n")


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _n_clusters(text):
    """``-k``: a positive integer, or ``auto`` (None: chosen by the estimator)."""
    if text.strip().lower() == "auto":
        return None
    return _positive_int(text)


def _seed(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32 - 1], got {v}")
    return v


def build_parser():
    from . import __version__
    from ._benchmark import DATASETS, METHODS

    parser = _Parser(
        prog="skjule",
        description="Deep image clustering (JULE) from the command line.",
        epilog="Exit status: 0 success, 1 data/input/output error, 2 invalid options, "
               "3 internal error (a bug), 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"skjule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--force", action="store_true",
                        help="replace existing output files and the contact sheets "
                             "an earlier run wrote (other files are never touched)")
    common.add_argument("--debug", action="store_true",
                        help="show the traceback of an internal error")

    c = sub.add_parser(
        "cluster", help="cluster a folder of images or an .npy/.npz array",
        parents=[common],
        description="Cluster the images in PATH (a folder of PNG/JPEG/... files, "
                    "searched recursively, or an .npy/.npz file holding an array of "
                    "images (n, H, W[, C]) or of feature vectors (n, d)) and write "
                    "one 'file,cluster' line per sample. Output paths are checked "
                    "before the fit; outputs are written atomically and never "
                    "replace an input.",
    )
    c.add_argument("path", metavar="PATH", help="folder of images, or .npy/.npz file")
    c.add_argument("--n-clusters", "-k", type=_n_clusters, required=True,
                   help="number of clusters K, or 'auto' to choose it from the merge "
                        "history (jule and gdl)")
    c.add_argument("--method", choices=("jule", "gdl", "deepgmm"), default="jule",
                   help=_METHOD_HELP + " (default: jule)")
    c.add_argument("--out", "-o", metavar="CSV",
                   help="write the labels to this CSV file (default, or '-': standard "
                        "output); an existing file needs --force")
    c.add_argument("--montage", metavar="DIR",
                   help="write one PNG contact sheet per cluster into DIR (created if "
                        "missing; a non-empty DIR needs --force)")
    c.add_argument("--montage-size", type=_positive_int, default=64, metavar="N",
                   help="at most N images per contact sheet (default: 64)")
    c.add_argument("--resize", type=_positive_int, metavar="PX",
                   help="resize images to PX x PX (needed when sizes differ)")
    c.add_argument("--grey", action="store_true", help="convert colour images to grey")
    c.add_argument("--key", help="array to use in an .npz file (default: X, images, "
                                 "data, or its only array)")
    c.add_argument("--random-state", type=_seed, default=0, help="seed (default: 0)")
    c.add_argument("--device", default="auto",
                   help="torch device for jule/deepgmm: auto, cpu, cuda, ... (default: auto)")
    c.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    b = sub.add_parser(
        "benchmark", help="print the comparison table on the benchmark sets",
        parents=[common],
        description="Cluster benchmark sets stored as .npz files (arrays X and y) "
                    "with skjule and scikit-learn in one process and print a markdown "
                    "table: dataset, method, NMI, ACC, seconds, peak memory.",
    )
    b.add_argument("--data-home", required=True, metavar="DIR",
                   help="folder holding mnist.npz, usps.npz, coil20.npz, ...")
    b.add_argument("--datasets", nargs="+", default=["usps"], choices=sorted(DATASETS),
                   metavar="NAME", help=f"from {', '.join(sorted(DATASETS))} "
                                        "(default: usps)")
    b.add_argument("--methods", nargs="+", default=["kmeans", "spectral", "gdl"],
                   choices=METHODS, metavar="METHOD",
                   help=f"from {', '.join(METHODS)} (default: kmeans spectral gdl)")
    b.add_argument("--output", metavar="MD", help="also write the table to this file "
                                                  "(an existing file needs --force)")
    b.add_argument("--random-state", type=_seed, default=0, help="seed (default: 0)")
    return parser


# ------------------------------------------------------------ output planning


def _real(path):
    return Path(os.path.realpath(path))


def _inside(path, folder):
    """Whether ``path`` is ``folder`` or lies below it (both real paths)."""
    return path == folder or folder in path.parents


class _Inputs:
    """What a command reads, to refuse outputs that would replace or join it.

    ``files`` are input files; ``folders`` are image folders: every image file
    under them is an input (found as the loader does, following symbolic links),
    and a new image file or contact sheet inside them would be read as an image
    by the next run.
    """

    def __init__(self, files=(), folders=()):
        from .datasets._image_folder import IMAGE_EXTENSIONS

        self._ext = tuple(e.lower() for e in IMAGE_EXTENSIONS)
        self.files = [_real(f) for f in files]
        self.folders = [_real(d) for d in folders]
        self._ids = None

    def _walk(self):
        """The real folders under the input folders and the (dev, inode) of
        every input file (symbolic links followed, each real folder once)."""
        ids, seen, stack = set(), set(), list(self.folders)
        for f in self.files:
            with contextlib.suppress(OSError):
                st = os.stat(f)
                ids.add((st.st_dev, st.st_ino))
        while stack:
            d = stack.pop()
            if d in seen:
                continue
            seen.add(d)
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                with contextlib.suppress(OSError):
                    if e.is_dir():
                        stack.append(_real(e.path))
                    elif e.name.lower().endswith(self._ext):
                        st = os.stat(e.path)
                        ids.add((st.st_dev, st.st_ino))
        self.all_folders = seen
        return ids

    def check_file(self, opt, shown, real):
        """Refuse the output file ``real`` if it is (or would become) an input."""
        if self._ids is None:
            self._ids = self._walk()
        same = real in self.files
        with contextlib.suppress(OSError):  # another name of it (a hard link)
            st = os.stat(real)
            same = same or (st.st_dev, st.st_ino) in self._ids
        if same:
            what = "file" if self.files else "image"
            raise CLIError(f"{opt} {shown} is the input {what}; choose another name")
        if real.name.lower().endswith(self._ext):
            for d in self.folders + sorted(self.all_folders):  # the given folder first
                if _inside(real, d):
                    raise CLIError(f"{opt} {shown} is in the input folder {d}, where it "
                                   "would be read as an image; write it elsewhere")

    def check_folder(self, opt, shown, real):
        """Refuse the output folder ``real`` if it is an input or in an input folder."""
        if self._ids is None:
            self._ids = self._walk()
        if real in self.files:
            raise CLIError(f"{opt} {shown} is the input file; choose another folder")
        for d in self.folders + sorted(self.all_folders):
            if _inside(real, d):
                raise CLIError(f"{opt} {shown} is in the input folder {d}, where the "
                               "contact sheets would be read as images; choose a folder "
                               "outside it")


def _probe_writable(opt, shown, folder):
    """Create and remove a temporary file in ``folder``: the only reliable test."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".skjule-probe-")
    except OSError as exc:
        raise CLIError(f"{opt} {shown}: cannot write in {folder} "
                       f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(tmp)


def _plan_file(opt, path, inputs, force):
    """Pre-flight check of one output file; returns the real path to write."""
    if path == "":
        raise CLIError(f"{opt}: empty path")
    shown = path
    p = Path(path)
    real = _real(p)
    inputs.check_file(opt, shown, real)
    exists = os.path.lexists(p) or os.path.lexists(real)
    if real.is_dir():
        raise CLIError(f"{opt} {shown} is a folder; give a file name")
    if exists and not force:
        raise CLIError(f"{opt} {shown} already exists; pass --force to replace it")
    if exists and real.exists() and not real.is_file():
        raise CLIError(f"{opt} {shown} is not a regular file; refusing to replace it")
    if not real.parent.is_dir():
        raise CLIError(f"{opt} {shown}: the folder {p.parent} does not exist")
    _probe_writable(opt, shown, real.parent)
    return real


def _plan_montage(path, inputs, force):
    """Pre-flight check of the contact-sheet folder; returns its real path."""
    opt = "--montage"
    if path == "":
        raise CLIError(f"{opt}: empty path")
    shown = path
    real = _real(path)
    inputs.check_folder(opt, shown, real)
    if real.exists() or os.path.lexists(real):
        if not real.is_dir():
            raise CLIError(f"{opt} {shown} is not a folder")
        entries = os.listdir(real)
        if entries and not force:
            raise CLIError(f"{opt} {shown} is not empty ({len(entries)} entries); pass "
                           "--force to replace the contact sheets skjule wrote there "
                           "(other files are kept)")
        _probe_writable(opt, shown, real)
        return real
    ancestor = real.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CLIError(f"{opt} {shown}: {ancestor} is not a folder")
    _probe_writable(opt, shown, ancestor)
    return real


class _Plan:
    """The outputs of ``skjule cluster``, checked before anything is loaded."""

    def __init__(self, args, inputs):
        self.out = None
        if args.out is not None and args.out != "-":
            self.out = _plan_file("--out", args.out, inputs, args.force)
        self.montage = None
        if args.montage is not None:
            self.montage = _plan_montage(args.montage, inputs, args.force)
        if self.out is not None and self.montage is not None:
            if _inside(self.montage, self.out):
                raise CLIError(f"--out {args.out} and --montage {args.montage} are the "
                               "same path" if self.montage == self.out else
                               f"--montage {args.montage} is inside --out {args.out}")
            if (self.out.parent == self.montage
                    and _SHEET_NAME.match(self.out.name)):
                raise CLIError(f"--out {args.out} would be overwritten by a contact "
                               "sheet; choose another name")


# -------------------------------------------------------------- atomic writes


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Staging:
    """Outputs written to temporary files beside their targets, then moved into
    place together by :meth:`commit` (``os.replace``: atomic on one file system).

    Leaving the ``with`` block without a commit removes the temporary files
    and any folder the staging created, so a failure changes nothing.
    """

    def __init__(self):
        self._moves = []
        self._made = []
        self._tmps = []
        self._mode = 0o666 & ~_umask()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for tmp in self._tmps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        for d in reversed(self._made):
            with contextlib.suppress(OSError):
                os.rmdir(d)
        return False

    def makedirs(self, folder):
        missing = []
        d = Path(folder)
        while not d.exists():
            missing.append(d)
            d = d.parent
        for d in reversed(missing):
            d.mkdir()
            self._made.append(d)

    @contextlib.contextmanager
    def open(self, target, mode="w", **kwargs):
        target = Path(target)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                   suffix=_TMP_SUFFIX)
        self._tmps.append(tmp)
        os.chmod(tmp, self._mode)
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        self._moves.append((tmp, target))

    def commit(self):
        for tmp, target in self._moves:
            os.replace(tmp, target)
            self._tmps.remove(tmp)
        self._made = []
        return [target for _, target in self._moves]


def _is_our_sheet(path):
    """A contact sheet skjule wrote: its name and its PNG text chunk say so."""
    from PIL import Image

    if not _SHEET_NAME.match(path.name) or not path.is_file() or path.is_symlink():
        return False
    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.text.get(_SHEET_TAG[0]) == _SHEET_TAG[1]
    except Exception:  # not an image, or damaged: not ours
        return False


# --------------------------------------------------------------------- inputs


def _check_npy_header(f, available, where):
    """Refuse an .npy stream whose header promises more bytes than it holds
    (truncated or corrupt; loading it would try to allocate them)."""
    from numpy.lib import format as npf

    version = npf.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = npf.read_array_header_1_0(f)
    else:
        shape, _, dtype = npf.read_array_header_2_0(f)
    if dtype.hasobject:
        raise CLIError(f"{where} holds Python objects (dtype {dtype}); expected numbers")
    needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if needed > available - f.tell():
        raise CLIError(f"{where} is truncated or corrupt: its header promises an array "
                       f"of shape {shape} ({needed} bytes), the file holds "
                       f"{max(available - f.tell(), 0)}")


def _load_array(path, key):
    with open(path, "rb") as f:
        if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):  # not a zip (an .npz)
            f.seek(0)
            _check_npy_header(f, os.fstat(f.fileno()).st_size, path)
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.ndarray):
        return data
    with data:
        return _pick(data, path, key)


def _pick(d, path, key):
    names = list(d.keys())
    if not names:
        raise CLIError(f"{path} holds no arrays")
    if key is None:
        key = next((k for k in ("X", "images", "data") if k in names),
                   names[0] if len(names) == 1 else None)
        if key is None:
            raise CLIError(f"{path} holds several arrays ({', '.join(names)}); "
                           "choose one with --key")
    if key not in names:
        raise CLIError(f"{path} has no array {key!r}; it holds {', '.join(names)}")
    member = f"{key}.npy"
    with contextlib.suppress(KeyError):
        info = d.zip.getinfo(member)
        with d.zip.open(info) as f:
            _check_npy_header(f, info.file_size, f"{path} (array {key!r})")
    return d[key]


def _input_path(args):
    """The input, checked to exist and to be of a kind the command reads."""
    if args.path == "":
        raise CLIError("PATH: empty path")
    path = Path(args.path)
    if not path.exists():
        raise CLIError(f"{path}: no such file or folder")
    if path.is_dir():
        return path
    if not path.is_file():
        raise CLIError(f"{path}: not a regular file or a folder")
    if path.suffix.lower() not in (".npy", ".npz"):
        raise CLIError(f"{path}: expected a folder of images or an .npy/.npz file")
    return path


def _load_input(args, path):
    if path.is_dir():
        from PIL import Image

        from .datasets import load_image_folder

        try:
            data = load_image_folder(path, resize=args.resize,
                                     color="grey" if args.grey else "auto", labels=None,
                                     verbose=0 if args.quiet else 1)
        except (ValueError, OSError, Image.DecompressionBombError) as exc:
            msg = str(exc).replace("pass resize=(height, width)", "pass --resize PX")
            raise CLIError(msg) from None
        return data.images, list(data.filenames)
    try:
        X = _load_array(path, args.key)
    except CLIError:
        raise
    except Exception as exc:
        # Parsing untrusted bytes: numpy, zipfile and zlib raise many kinds of
        # errors for a damaged file (ValueError, EOFError, BadZipFile,
        # zlib.error, tokenize.TokenError, struct.error, MemoryError, ...);
        # all of them mean "this file cannot be read".
        if isinstance(exc, OSError):
            raise CLIError(f"cannot read {path}: {_describe(exc)}") from None
        if isinstance(exc, MemoryError):
            raise CLIError(f"cannot read {path}: not enough memory "
                           f"({_describe(exc)})") from None
        raise CLIError(f"cannot read {path}: damaged, or not an .npy/.npz file "
                       f"({_describe(exc)})") from None
    return X, [str(i) for i in range(len(X))] if X.ndim else []


_KINDS = {"U": "strings", "S": "bytes", "O": "Python objects", "V": "records",
          "c": "complex numbers", "M": "dates", "m": "time spans"}


def _check_data(args, X, path):
    """Everything about the data that can be checked before the (long) fit."""
    if X.dtype.kind not in "biuf":
        raise CLIError(f"{path} holds {_KINDS.get(X.dtype.kind, 'non-numbers')} "
                       f"(dtype {X.dtype}); expected real numbers")
    if X.ndim < 2:
        raise CLIError(f"{path}: expected one sample per row, got an array of shape "
                       f"{X.shape}")
    if X.ndim > 4:
        raise CLIError(f"{path}: expected feature vectors (n, d) or images (n, H, W[, C]), "
                       f"got an array of shape {X.shape}")
    if len(X) == 0:
        raise CLIError(f"{path} holds no samples (shape {X.shape})")
    if X.size == 0:
        raise CLIError(f"{path}: the samples are empty (shape {X.shape})")
    if X.dtype.kind == "f":
        with np.errstate(all="ignore"):
            finite = np.isfinite(X.reshape(len(X), -1)).all(axis=1)
        if not finite.all():
            raise CLIError(f"{path}: sample {int(np.argmin(finite))} holds NaN or "
                           "infinite values")
    if args.n_clusters is not None and args.n_clusters > len(X):
        raise CLIError(f"--n-clusters {args.n_clusters} is more than the {len(X)} "
                       "samples in the input")
    if args.resize is not None and X.ndim >= 3 and not path.is_dir():
        raise CLIError("--resize applies to image folders; resize the array yourself")
    if args.montage is not None:
        if X.ndim == 2:
            raise CLIError("--montage needs images; the input holds feature vectors of "
                           f"shape {X.shape}")
        if X.ndim == 4 and X.shape[-1] not in (1, 3, 4):
            raise CLIError(f"--montage needs grey, RGB or RGBA images; the input has "
                           f"{X.shape[-1]} channels (shape {X.shape})")


def _check_device(args):
    from ._networks import resolve_device

    try:
        resolve_device(args.device)
    except ValueError as exc:
        raise CLIError(f"--device {args.device}: {_describe(exc)}") from None


def _estimator(args):
    from ._deepgmm import DeepGMMClustering
    from ._gdl import GDLClustering
    from ._jule import JULEClustering

    verbose = 0 if args.quiet else 1
    if args.method == "gdl":
        return GDLClustering(args.n_clusters, random_state=args.random_state,
                             verbose=verbose)
    cls = JULEClustering if args.method == "jule" else DeepGMMClustering
    return cls(args.n_clusters, device=args.device, random_state=args.random_state,
               verbose=verbose)


def _fit(args, X):
    try:
        labels = _estimator(args).fit_predict(X)
    except ValueError as exc:  # the estimators' documented error for unusable data
        raise CLIError(_describe(exc)) from None
    return np.asarray(labels)


# -------------------------------------------------------------------- outputs


def _write_csv(f, names, labels):
    w = csv.writer(f)
    w.writerow(["file", "cluster"])
    w.writerows(zip(names, labels.tolist()))


def _write_montages(staging, folder, images, labels, per_cluster, seed):
    """Stage one contact sheet per cluster (tagged as skjule's in a PNG text chunk)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from . import _montage

    staging.makedirs(folder)
    info = PngInfo()
    info.add_text(*_SHEET_TAG)
    width = len(str(int(labels.max())))
    written = []
    for k, idx in _montage.cluster_samples(labels, per_cluster, random_state=seed).items():
        sheet = _montage.make_montage(images[idx])
        target = folder / f"cluster_{int(k):0{width}d}.png"
        with staging.open(target, "wb") as f:
            Image.fromarray(sheet).save(f, format="PNG", pnginfo=info)
        written.append(target)
    return written


def _remove_old_sheets(folder, keep):
    """Remove the contact sheets an earlier run wrote, and nothing else."""
    removed = 0
    for entry in os.scandir(folder):
        path = Path(entry.path)
        if path not in keep and _is_our_sheet(path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
    return removed


def _cluster(args):
    if args.n_clusters is None and args.method == "deepgmm":
        raise CLIError("-k auto works with --method jule or gdl; deepgmm needs a number")
    path = _input_path(args)
    inputs = _Inputs(folders=[path]) if path.is_dir() else _Inputs(files=[path])
    plan = _Plan(args, inputs)  # every output path is checked before the long work
    if args.method != "gdl":
        _check_device(args)
    X, names = _load_input(args, path)
    _check_data(args, X, path)
    labels = _fit(args, X)

    sheets = []
    with _Staging() as staging:
        if plan.out is not None:
            with staging.open(plan.out, "w", newline="", encoding="utf-8",
                              errors="surrogateescape") as f:
                _write_csv(f, names, labels)
        if plan.montage is not None:
            sheets = _write_montages(staging, plan.montage, X, labels, args.montage_size,
                                     args.random_state)
        staging.commit()
    if plan.montage is not None and args.force:
        _remove_old_sheets(plan.montage, set(sheets))
    if plan.out is None:
        try:
            _write_csv(sys.stdout, names, labels)
            sys.stdout.flush()
        except UnicodeEncodeError:
            raise CLIError("a file name cannot be printed in the encoding of standard "
                           "output; write the labels with --out") from None

    msg = f"{len(X)} samples -> {len(np.unique(labels))} clusters ({args.method})"
    if plan.out is not None:
        msg += f"; labels in {args.out}"
    if plan.montage is not None:
        msg += f"; {len(sheets)} contact sheets in {args.montage}"
    if not args.quiet:
        print(msg, file=sys.stderr)


def _benchmark(args):
    from ._benchmark import DATASETS, machine_line, run_benchmark

    if not os.path.isdir(args.data_home):
        raise CLIError(f"--data-home {args.data_home}: no such folder")
    out = None
    if args.output is not None:
        inputs = _Inputs(files=[os.path.join(args.data_home, DATASETS[name][0])
                                for name in args.datasets])
        out = _plan_file("--output", args.output, inputs, args.force)
    print(machine_line() + "\n")
    try:
        table = run_benchmark(args.data_home, args.datasets, args.methods,
                              seed=args.random_state)
    except (OSError, ValueError) as exc:
        raise CLIError(_describe(exc)) from None
    if out is not None:
        with _Staging() as staging:
            with staging.open(out, "w", encoding="utf-8") as f:
                f.write(f"# skjule benchmark\n\n{machine_line()}\n\n{table.markdown()}\n")
            staging.commit()


# ----------------------------------------------------------------------- main


def _describe(exc):
    return _one_line(exc) or type(exc).__name__


def _error(message, code=EXIT_ERROR):
    print(f"skjule: error: {_one_line(message)}", file=sys.stderr)
    return code


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings on one line, as the errors."""
    print(f"skjule: warning: {_one_line(message)}", file=sys.stderr)


def main(argv=None):
    """Entry point of the ``skjule`` command; returns the exit status.

    Invalid options raise ``SystemExit(2)`` (argparse), as ``--help`` and
    ``--version`` raise ``SystemExit(0)``; every other outcome is returned:
    0, 1 (data/input/output error), 3 (internal error) or 130 (interrupted),
    with exactly one ``skjule: error:`` line on standard error on failure.
    """
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            (_cluster if args.command == "cluster" else _benchmark)(args)
        except CLIError as exc:
            return _error(exc)
        except KeyboardInterrupt:
            print("skjule: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            with contextlib.suppress(Exception):  # no second error at interpreter exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return _error("standard output was closed (broken pipe)")
        except MemoryError as exc:
            if debug:
                raise
            return _error(f"not enough memory: {_describe(exc)}")
        except OSError as exc:  # the file system: full disk, permissions, ...
            if debug:
                raise
            return _error(_describe(exc))
        except Exception as exc:
            if debug:
                raise
            return _error(f"internal error: {type(exc).__name__}: {_describe(exc)} (a bug "
                          "in skjule; rerun with --debug for the traceback)",
                          EXIT_INTERNAL)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
