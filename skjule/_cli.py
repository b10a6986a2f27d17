"""The ``skjule`` command: cluster a folder of images, or run the benchmarks.

    skjule cluster PATH --n-clusters K [--method jule|gdl|deepgmm]
                   [--out labels.csv] [--montage DIR] [--report report.html]
                   [--export DIR [--copy]] [--min-cluster-size N]
                   [--features MODEL.pt] [--force]
    skjule benchmark --data-home DIR [--datasets ...] [--methods ...]

The command never destroys data. Before anything is loaded or fitted, every
output (``--out``, ``--montage``, ``--report``, ``--export``, ``--output``) is
planned: an output that is an input (or would land among the input images) is
refused even with ``--force``; an existing output file, or a non-empty
``--montage``/``--export`` folder, is refused without ``--force``; the folder
of each output must exist (``--montage`` and ``--export`` may be created) and
accept a file. The outputs are then written to temporary files (the export:
a temporary folder) beside their targets and moved into place together
(``os.replace``) only once all of them are complete, so a failure leaves
every file as it was.

Exit status: 0 success; 1 a data, input or output error (one line on stderr);
2 invalid options (one line); 3 an internal error, i.e. a bug (one line naming
the exception; ``--debug`` shows the traceback); 130 interrupted.
"""

import argparse
import contextlib
import csv
import math
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

_METHOD_HELP = (
    "jule: CNN + agglomerative clustering learned jointly (slow, best on "
    "images); gdl: the agglomerative engine alone (fast); deepgmm: "
    "autoencoder + Gaussian mixture learned jointly"
)

#: The names of the contact sheets; only files with such a name *and* the
#: ``_SHEET_TAG`` PNG text chunk (written by skjule) are ever removed.
_SHEET_NAME = re.compile(r"(cluster_\d+|noise)\.png\Z")
_SHEET_TAG = ("Software", "skjule contact sheet")
_TMP_SUFFIX = ".skjule-tmp"
#: With --features, the images of a folder are also read at this size, for the
#: contact sheets and the near-duplicate search (the network reads the files).
_SMALL_PX = 64


class CLIError(Exception):
    """A user or data error: printed as one line, exit code 1."""


def _one_line(text):
    """``text`` on one line (messages may hold newlines, e.g. from numpy)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors reported on one line (status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"skjule: error: {_one_line(message)} (see '{self.prog} --help')\n")


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


def _fraction(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return v


def _bits(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= v <= 64:
        raise argparse.ArgumentTypeError(f"must be in [0, 64], got {v}")
    return v


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
    common.add_argument(
        "--force",
        action="store_true",
        help="replace existing output files, the contact sheets and the "
        "export an earlier run wrote (other files are never touched)",
    )
    common.add_argument(
        "--debug", action="store_true", help="show the traceback of an internal error"
    )

    c = sub.add_parser(
        "cluster",
        help="cluster a folder of images or an .npy/.npz array",
        parents=[common],
        description="Cluster the images in PATH (a folder of PNG/JPEG/... files, "
        "searched recursively, or an .npy/.npz file holding an array of "
        "images (n, H, W[, C]) or of feature vectors (n, d)) and write "
        "one CSV line per sample: file, cluster (-1: noise), "
        "distance_to_centroid, least_typical, duplicate_group. Output "
        "paths are checked before the fit; outputs are written atomically "
        "and never replace an input.",
    )
    c.add_argument("path", metavar="PATH", help="folder of images, or .npy/.npz file")
    c.add_argument(
        "--n-clusters",
        "-k",
        type=_n_clusters,
        required=True,
        help="number of clusters K, or 'auto' to choose it from the merge history (jule and gdl)",
    )
    c.add_argument(
        "--method",
        choices=("jule", "gdl", "deepgmm"),
        default=None,
        help=_METHOD_HELP + " (default: jule; gdl with --features)",
    )
    c.add_argument(
        "--out",
        "-o",
        metavar="CSV",
        help="write the labels to this CSV file (default, or '-': standard "
        "output); an existing file needs --force",
    )
    c.add_argument(
        "--montage",
        metavar="DIR",
        help="write one PNG contact sheet per cluster into DIR (created if "
        "missing; a non-empty DIR needs --force)",
    )
    c.add_argument(
        "--montage-size",
        type=_positive_int,
        default=64,
        metavar="N",
        help="at most N images per contact sheet (default: 64)",
    )
    c.add_argument(
        "--report",
        metavar="HTML",
        help="write one self-contained HTML page with thumbnails of every "
        "cluster, the least typical photos, the noise and the "
        "near-duplicates (an existing file needs --force)",
    )
    c.add_argument(
        "--report-size",
        type=_positive_int,
        default=200,
        metavar="N",
        help="at most N thumbnails per cluster in the report (default: 200)",
    )
    c.add_argument(
        "--export",
        metavar="DIR",
        help="sort the photos into DIR/cluster_00/, ... (symbolic links; "
        "the least typical in cluster_00/_least_typical/, noise in "
        "noise/); a folder input only; a non-empty DIR needs --force",
    )
    c.add_argument(
        "--copy", action="store_true", help="with --export: copy the photos instead of linking them"
    )
    c.add_argument(
        "--min-cluster-size",
        type=_positive_int,
        default=1,
        metavar="N",
        help="members of clusters smaller than N get the label -1 (noise: "
        "they fit no cluster) (default: 1, no noise)",
    )
    c.add_argument(
        "--least-typical",
        type=_fraction,
        default=0.1,
        metavar="FRAC",
        help="mark the FRAC of each cluster farthest from its centroid as "
        "least typical (default: 0.1; 0: none)",
    )
    c.add_argument(
        "--duplicate-bits",
        type=_bits,
        default=10,
        metavar="N",
        help="images whose 64-bit difference hashes differ in at most N bits "
        "(and of similar brightness) are near-duplicates (default: 10)",
    )
    c.add_argument(
        "--features",
        metavar="MODEL.pt",
        help="embed the images with this TorchScript network (frozen) and "
        "cluster the features; --resize PX is then the network's input "
        "size (centre crop)",
    )
    c.add_argument(
        "--feature-norm",
        choices=("none", "imagenet", "clip"),
        default="none",
        help="with --features: normalise the pixels (in [0, 1]) by the "
        "per-channel mean and std of ImageNet or CLIP networks "
        "(default: none; the model may do it itself)",
    )
    c.add_argument(
        "--resize",
        type=_positive_int,
        metavar="PX",
        help="resize images to PX x PX (needed when sizes differ)",
    )
    c.add_argument("--grey", action="store_true", help="convert colour images to grey")
    c.add_argument(
        "--key", help="array to use in an .npz file (default: X, images, data, or its only array)"
    )
    c.add_argument("--random-state", type=_seed, default=0, help="seed (default: 0)")
    c.add_argument(
        "--device",
        default="auto",
        help="torch device for jule/deepgmm/--features: auto, cpu, cuda, ... (default: auto)",
    )
    c.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    b = sub.add_parser(
        "benchmark",
        help="print the comparison table on the benchmark sets",
        parents=[common],
        description="Cluster benchmark sets stored as .npz files (arrays X and y) "
        "with skjule and scikit-learn in one process and print a markdown "
        "table: dataset, method, NMI, ACC, seconds, peak memory.",
    )
    b.add_argument(
        "--data-home",
        required=True,
        metavar="DIR",
        help="folder holding mnist.npz, usps.npz, coil20.npz, ...",
    )
    b.add_argument(
        "--datasets",
        nargs="+",
        default=["usps"],
        choices=sorted(DATASETS),
        metavar="NAME",
        help=f"from {', '.join(sorted(DATASETS))} (default: usps)",
    )
    b.add_argument(
        "--methods",
        nargs="+",
        default=["kmeans", "spectral", "gdl"],
        choices=METHODS,
        metavar="METHOD",
        help=f"from {', '.join(METHODS)} (default: kmeans spectral gdl)",
    )
    b.add_argument(
        "--output",
        metavar="MD",
        help="also write the table to this file (an existing file needs --force)",
    )
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
                    raise CLIError(
                        f"{opt} {shown} is in the input folder {d}, where it "
                        "would be read as an image; write it elsewhere"
                    )

    def check_folder(self, opt, shown, real, what="contact sheets"):
        """Refuse the output folder ``real`` if it is an input or in an input folder."""
        if self._ids is None:
            self._ids = self._walk()
        if real in self.files:
            raise CLIError(f"{opt} {shown} is the input file; choose another folder")
        for d in self.folders + sorted(self.all_folders):
            if _inside(real, d):
                raise CLIError(
                    f"{opt} {shown} is in the input folder {d}, where the "
                    f"{what} would be read as images; choose a folder "
                    "outside it"
                )

    def check_not_around(self, opt, shown, real):
        """Refuse the output folder ``real`` if an input lies inside it."""
        for inp in self.folders + self.files:
            if _inside(inp, real):
                kind = "folder" if inp in self.folders else "file"
                raise CLIError(
                    f"{opt} {shown} contains the input {kind} {inp}; choose a folder outside it"
                )


def _probe_writable(opt, shown, folder):
    """Create and remove a temporary file in ``folder``: the only reliable test."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".skjule-probe-")
    except OSError as exc:
        raise CLIError(f"{opt} {shown}: cannot write in {folder} ({exc.strerror or exc})") from None
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


def _plan_folder(opt, path, inputs, force, what):
    """Pre-flight check of an output folder (--montage, --export); returns its real
    path. It may exist (a folder; not empty only with --force) or be created."""
    if path == "":
        raise CLIError(f"{opt}: empty path")
    shown = path
    real = _real(path)
    inputs.check_folder(opt, shown, real, what)
    if real.exists() or os.path.lexists(real):
        if not real.is_dir():
            raise CLIError(f"{opt} {shown} is not a folder")
        entries = os.listdir(real)
        if entries and not force:
            raise CLIError(
                f"{opt} {shown} is not empty ({len(entries)} entries); pass "
                f"--force to replace the {what} skjule wrote there "
                "(other files are kept)"
            )
        _probe_writable(opt, shown, real)
        return real
    ancestor = real.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CLIError(f"{opt} {shown}: {ancestor} is not a folder")
    _probe_writable(opt, shown, ancestor)
    return real


def _plan_montage(path, inputs, force):
    """Pre-flight check of the contact-sheet folder; returns its real path."""
    return _plan_folder("--montage", path, inputs, force, "contact sheets")


def _plan_export(path, inputs, force, input_path):
    """Pre-flight check of the --export folder; returns its real path."""
    if not input_path.is_dir():
        raise CLIError(
            f"--export needs a folder of image files as input; {input_path} "
            "is an array file (use --montage or --report to see its images)"
        )
    real = _plan_folder("--export", path, inputs, force, "exported photos")
    inputs.check_not_around("--export", path, real)
    return real


class _Plan:
    """The outputs of ``skjule cluster``, checked before anything is loaded."""

    def __init__(self, args, inputs, input_path):
        self.out = None
        if args.out is not None and args.out != "-":
            self.out = _plan_file("--out", args.out, inputs, args.force)
        self.report = None
        if args.report is not None:
            self.report = _plan_file("--report", args.report, inputs, args.force)
        self.montage = None
        if args.montage is not None:
            self.montage = _plan_montage(args.montage, inputs, args.force)
        self.export = None
        if args.export is not None:
            self.export = _plan_export(args.export, inputs, args.force, input_path)
        self._check_overlaps(args)

    def _check_overlaps(self, args):
        """No output may replace another, or be written into an output folder it would
        spoil (an export folder holds only the export)."""
        outs = [
            (o, shown, real)
            for o, shown, real in (
                ("--out", args.out, self.out),
                ("--report", args.report, self.report),
                ("--montage", args.montage, self.montage),
                ("--export", args.export, self.export),
            )
            if real is not None
        ]
        folders = {"--montage", "--export"}
        for i, (a, a_shown, a_real) in enumerate(outs):
            for b, b_shown, b_real in outs[i + 1 :]:
                if a_real == b_real:
                    raise CLIError(f"{a} {a_shown} and {b} {b_shown} are the same path")
                for (x, x_shown, x_real), (y, y_shown, y_real) in (
                    ((a, a_shown, a_real), (b, b_shown, b_real)),
                    ((b, b_shown, b_real), (a, a_shown, a_real)),
                ):
                    if not _inside(x_real, y_real):
                        continue  # x is not inside y
                    if y == "--montage" and x not in folders:
                        if _SHEET_NAME.match(x_real.name) and x_real.parent == y_real:
                            raise CLIError(
                                f"{x} {x_shown} would be overwritten by a "
                                "contact sheet; choose another name"
                            )
                        continue  # a file beside the contact sheets: allowed
                    raise CLIError(f"{x} {x_shown} is inside {y} {y_shown}")


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
        self._tmp_dirs = []
        self._first = []
        self._mode = 0o666 & ~_umask()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        import shutil

        for tmp in self._tmps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        for d in self._tmp_dirs:  # holds only what skjule made (links are not followed)
            if os.path.isdir(d) and not os.path.islink(d):
                shutil.rmtree(d, ignore_errors=True)
        for d in reversed(self._made):
            with contextlib.suppress(OSError):
                os.rmdir(d)
        return False

    def temporary_folder(self, folder):
        """Register a temporary folder, removed with its contents unless committed."""
        self._tmp_dirs.append(folder)

    def before_commit(self, action):
        """``action()`` runs first in :meth:`commit` (moving a built folder into place)."""
        self._first.append(action)

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
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=_TMP_SUFFIX)
        self._tmps.append(tmp)
        os.chmod(tmp, self._mode)
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        self._moves.append((tmp, target))

    def commit(self):
        for action in self._first:
            action()
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
    except Exception:  # noqa: BLE001 - not an image, or damaged: not ours
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
        raise CLIError(
            f"{where} is truncated or corrupt: its header promises an array "
            f"of shape {shape} ({needed} bytes), the file holds "
            f"{max(available - f.tell(), 0)}"
        )


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
        key = next(
            (k for k in ("X", "images", "data") if k in names),
            names[0] if len(names) == 1 else None,
        )
        if key is None:
            raise CLIError(
                f"{path} holds several arrays ({', '.join(names)}); choose one with --key"
            )
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
    """(X, names, files): the samples, their names for the CSV, and the image
    files (absolute paths) of a folder input (None for an array file)."""
    if path.is_dir():
        from PIL import Image

        from .datasets import load_image_folder

        # with --features the network reads the files itself; the array is then
        # small images, for the contact sheets and the near-duplicate search
        resize = _SMALL_PX if args.features else args.resize
        try:
            data = load_image_folder(
                path,
                resize=resize,
                color="grey" if args.grey else "auto",
                labels=None,
                verbose=0 if args.quiet else 1,
            )
        except (ValueError, OSError, Image.DecompressionBombError) as exc:
            msg = str(exc).replace("pass resize=(height, width)", "pass --resize PX")
            raise CLIError(msg) from None
        names = list(data.filenames)
        root = os.path.abspath(path)
        return data.images, names, [os.path.join(root, n) for n in names]
    try:
        X = _load_array(path, args.key)
    except CLIError:
        raise
    except Exception as exc:  # noqa: BLE001
        # Parsing untrusted bytes: numpy, zipfile and zlib raise many kinds of
        # errors for a damaged file (ValueError, EOFError, BadZipFile,
        # zlib.error, tokenize.TokenError, struct.error, MemoryError, ...);
        # all of them mean "this file cannot be read".
        if isinstance(exc, OSError):
            raise CLIError(f"cannot read {path}: {_describe(exc)}") from None
        if isinstance(exc, MemoryError):
            raise CLIError(f"cannot read {path}: not enough memory ({_describe(exc)})") from None
        raise CLIError(
            f"cannot read {path}: damaged, or not an .npy/.npz file ({_describe(exc)})"
        ) from None
    return X, [str(i) for i in range(len(X))] if X.ndim else [], None


_KINDS = {
    "U": "strings",
    "S": "bytes",
    "O": "Python objects",
    "V": "records",
    "c": "complex numbers",
    "M": "dates",
    "m": "time spans",
}


def _check_data(args, X, path):
    """Everything about the data that can be checked before the (long) fit."""
    if X.dtype.kind not in "biuf":
        raise CLIError(
            f"{path} holds {_KINDS.get(X.dtype.kind, 'non-numbers')} "
            f"(dtype {X.dtype}); expected real numbers"
        )
    if X.ndim < 2:
        raise CLIError(f"{path}: expected one sample per row, got an array of shape {X.shape}")
    if X.ndim > 4:
        raise CLIError(
            f"{path}: expected feature vectors (n, d) or images (n, H, W[, C]), "
            f"got an array of shape {X.shape}"
        )
    if len(X) == 0:
        raise CLIError(f"{path} holds no samples (shape {X.shape})")
    if X.size == 0:
        raise CLIError(f"{path}: the samples are empty (shape {X.shape})")
    if X.dtype.kind == "f":
        with np.errstate(all="ignore"):
            finite = np.isfinite(X.reshape(len(X), -1)).all(axis=1)
        if not finite.all():
            raise CLIError(f"{path}: sample {int(np.argmin(finite))} holds NaN or infinite values")
    if args.n_clusters is not None and args.n_clusters > len(X):
        raise CLIError(
            f"--n-clusters {args.n_clusters} is more than the {len(X)} samples in the input"
        )
    if args.resize is not None and X.ndim >= 3 and not path.is_dir() and not args.features:
        raise CLIError(
            "--resize applies to image folders (and to the network's input "
            "with --features); resize the array yourself"
        )
    for opt in ("--montage", "--report", "--features"):
        if getattr(args, opt[2:]) is None:
            continue
        if X.ndim == 2:
            raise CLIError(
                f"{opt} needs images; the input holds feature vectors of shape {X.shape}"
            )
        if X.ndim == 4 and X.shape[-1] not in (1, 3, 4):
            raise CLIError(
                f"{opt} needs grey, RGB or RGBA images; the input has "
                f"{X.shape[-1]} channels (shape {X.shape})"
            )


def _needs_torch(what):
    """Import torch for ``what`` or end with the one-line install hint."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise CLIError(
            f"{what} needs PyTorch: pip install 'skjule[deep]' (or install "
            "torch yourself first, e.g. the CPU build)."
        ) from None


def _check_device(args):
    _needs_torch("--features" if args.method == "gdl" else f"--method {args.method}")
    from ._deep._networks import resolve_device

    try:
        resolve_device(args.device)
    except ValueError as exc:
        raise CLIError(f"--device {args.device}: {_describe(exc)}") from None


# ------------------------------------------------------------------- features

#: --feature-norm: the per-channel (mean, std) the network was trained with.
_FEATURE_NORMS = {
    "none": (None, None),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
}


def _load_model(args):
    """The --features TorchScript network, loaded (onto the CPU) before any image."""
    opt, path = "--features", args.features
    if path == "":
        raise CLIError(f"{opt}: empty path")
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{opt} {path}: no such file")
    if not p.is_file():
        raise CLIError(f"{opt} {path}: not a regular file")
    try:
        import torch

        from ._deep._features import FeatureExtractor  # noqa: F401 - fail here if missing
    except ImportError as exc:
        raise CLIError(
            f"{opt} needs PyTorch: pip install 'skjule[deep]' ({_describe(exc)})"
        ) from None
    with warnings.catch_warnings():  # recent torch deprecates TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return torch.jit.load(str(p), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - whatever torch says, the file is the cause
            error = exc
        with contextlib.suppress(Exception):  # a torch.export program (.pt2)?
            return torch.export.load(str(p)).module()
    why = _describe(error).split(". ")[0][:200]
    raise CLIError(
        f"{opt} {path}: not a TorchScript model (nor a torch.export program), "
        f"or a damaged one ({type(error).__name__}: {why}); export it with "
        "torch.jit.script(net).save(path) or torch.jit.trace"
    )


def _embed(args, module, source):
    """Features of the images (an array, or the files of a folder) by the network."""
    from ._deep._features import FeatureExtractor

    mean, std = _FEATURE_NORMS[args.feature_norm]
    fe = FeatureExtractor(
        module,
        input_size=args.resize,
        mean=mean,
        std=std,
        device=args.device,
        verbose=0 if args.quiet else 1,
    )
    try:
        F = fe.fit_transform(source)
    except (ValueError, RuntimeError, TypeError) as exc:
        msg = (
            _describe(exc)
            .replace(
                "pass size=(height, width) (input_size= for FeatureExtractor)", "pass --resize PX"
            )
            .replace("set input_size", "set --resize PX")
        )
        raise CLIError(f"--features {args.features}: {msg}") from None
    F = np.asarray(F)
    bad = ~np.isfinite(F).all(axis=1) if F.ndim == 2 else None
    if F.ndim != 2 or len(F) != len(source):
        raise CLIError(
            f"--features {args.features}: the network returned features of "
            f"shape {F.shape} for {len(source)} images"
        )
    if bad.any():
        raise CLIError(
            f"--features {args.features}: the network returned NaN or "
            f"infinite features for image {int(np.argmax(bad))}"
        )
    return F


# ------------------------------------------------------------------------ fit


def _estimator(args):
    verbose = 0 if args.quiet else 1
    if args.method == "gdl":
        from ._engine._gdl import GDLClustering

        return GDLClustering(args.n_clusters, random_state=args.random_state, verbose=verbose)
    _needs_torch(f"--method {args.method}")
    if args.method == "jule":
        from ._deep._jule import JULEClustering as cls
    else:
        from ._deep._deepgmm import DeepGMMClustering as cls
    return cls(args.n_clusters, device=args.device, random_state=args.random_state, verbose=verbose)


def _fit(args, X):
    est = _estimator(args)
    try:
        labels = est.fit_predict(X)
    except ValueError as exc:  # the estimators' documented error for unusable data
        raise CLIError(_describe(exc)) from None
    return est, np.asarray(labels)


def _feature_space(args, est, X):
    """The samples as the clustering saw them, for the distances to the centroids."""
    if args.method == "jule":
        return est.embedding_
    if args.method == "deepgmm":
        return est.transform(X)
    from ._validation import l2_normalize

    Z = np.asarray(X).reshape(len(X), -1)
    if Z.dtype not in (np.float32, np.float64):
        Z = Z.astype(np.float32)
    return l2_normalize(Z) if getattr(est, "normalize", True) else Z


class _Results:
    """Labels (noise: -1), distance to the centroid, least typical, duplicate group."""

    def __init__(self, args, est, X_fit, X, labels):
        from ._outliers import (
            find_near_duplicates,
            least_typical,
            small_clusters_as_noise,
        )

        self.labels = small_clusters_as_noise(labels, args.min_cluster_size)
        self.least_typical, self.distances = least_typical(
            _feature_space(args, est, X_fit),
            self.labels,
            fraction=args.least_typical,
            return_distances=True,
        )
        self.duplicates = find_near_duplicates(
            X,
            max_distance=args.duplicate_bits if X.ndim >= 3 else None,
            random_state=args.random_state,
        )
        self.n_clusters = len(np.unique(self.labels[self.labels >= 0]))
        self.n_noise = int((self.labels < 0).sum())
        self.n_groups = int(self.duplicates.max()) + 1 if len(self.duplicates) else 0


# -------------------------------------------------------------------- outputs

CSV_HEADER = ["file", "cluster", "distance_to_centroid", "least_typical", "duplicate_group"]


def _write_csv(f, names, res):
    w = csv.writer(f)
    w.writerow(CSV_HEADER)
    for name, k, d, lt, g in zip(
        names,
        res.labels.tolist(),
        res.distances.tolist(),
        res.least_typical.tolist(),
        res.duplicates.tolist(),
    ):
        w.writerow([name, k, f"{d:.6g}" if math.isfinite(d) else "", int(lt), g])


def _write_montages(staging, folder, images, labels, per_cluster, seed):
    """Stage one contact sheet per cluster (tagged as skjule's in a PNG text chunk)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from . import _montage

    staging.makedirs(folder)
    info = PngInfo()
    info.add_text(*_SHEET_TAG)
    width = len(str(max(int(labels.max()), 0)))
    written = []
    for k, idx in _montage.cluster_samples(labels, per_cluster, random_state=seed).items():
        sheet = _montage.make_montage(images[idx])
        name = "noise.png" if k < 0 else f"cluster_{int(k):0{width}d}.png"
        target = folder / name
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


def _stage_export(staging, target, files, names, res, copy):
    """Build the export folder under a temporary name; it is moved into place by
    the staging's commit (see :mod:`skjule._report`)."""
    from . import _report

    try:
        sources = _report.check_export_sources(files)
    except _report.ExportError as exc:
        raise CLIError(f"--export: {exc}") from None
    existing = target.is_dir()
    if not existing:
        staging.makedirs(target.parent)
    build = _report.new_build_dir(str(target), existing)
    staging.temporary_folder(build)
    try:
        _, removable = _report.build_export(
            build,
            str(target),
            sources,
            res.labels,
            names=names,
            least_typical=res.least_typical,
            distances=res.distances,
            duplicate_groups=res.duplicates,
            copy=copy,
            existing=existing,
        )
    except _report.ExportError as exc:
        raise CLIError(f"--export {target}: {exc}") from None
    staging.before_commit(lambda: _report.commit_export(build, str(target), existing, removable))


def _report_text(args, path, X, files, names, res):
    from . import _report

    what = [f"method {args.method}", f"-k {args.n_clusters or 'auto'}"]
    if args.features:
        what.append(f"features from {os.path.basename(args.features)}")
    if args.min_cluster_size > 1:
        what.append(f"clusters under {args.min_cluster_size} photos are noise")
    return _report.render_report(
        files if files is not None else X,
        res.labels,
        names=names,
        distances=res.distances,
        least_typical=res.least_typical,
        duplicate_groups=res.duplicates,
        title=f"skjule: {path.name or path}",
        description="Clustered with " + ", ".join(what) + ".",
        max_per_cluster=args.report_size,
    )


def _cluster(args):
    if args.method is None:
        args.method = "gdl" if args.features else "jule"
    if args.n_clusters is None and args.method == "deepgmm":
        raise CLIError("-k auto works with --method jule or gdl; deepgmm needs a number")
    path = _input_path(args)
    model_files = [args.features] if args.features else []
    inputs = (
        _Inputs(files=model_files, folders=[path])
        if path.is_dir()
        else _Inputs(files=[path, *model_files])
    )
    plan = _Plan(args, inputs, path)  # every output path is checked before the long work
    if args.method != "gdl" or args.features:
        _check_device(args)
    module = _load_model(args) if args.features else None
    X, names, files = _load_input(args, path)
    _check_data(args, X, path)
    X_fit = X if module is None else _embed(args, module, files if files else X)
    est, labels = _fit(args, X_fit)
    res = _Results(args, est, X_fit, X, labels)

    sheets = []
    with _Staging() as staging:
        if plan.out is not None:
            with staging.open(
                plan.out, "w", newline="", encoding="utf-8", errors="surrogateescape"
            ) as f:
                _write_csv(f, names, res)
        if plan.montage is not None:
            sheets = _write_montages(
                staging, plan.montage, X, res.labels, args.montage_size, args.random_state
            )
        if plan.report is not None:
            with staging.open(plan.report, "w", encoding="utf-8", errors="replace") as f:
                f.write(_report_text(args, path, X, files, names, res))
        if plan.export is not None:
            _stage_export(staging, plan.export, files, names, res, args.copy)
        staging.commit()
    if plan.montage is not None and args.force:
        _remove_old_sheets(plan.montage, set(sheets))
    if plan.out is None:
        try:
            _write_csv(sys.stdout, names, res)
            sys.stdout.flush()
        except UnicodeEncodeError:
            raise CLIError(
                "a file name cannot be printed in the encoding of standard "
                "output; write the labels with --out"
            ) from None

    msg = f"{len(X)} samples -> {res.n_clusters} clusters"
    if res.n_noise:
        msg += f" + {res.n_noise} noise"
    msg += f" ({args.method})"
    if res.n_groups:
        msg += f"; {res.n_groups} near-duplicate groups"
    if plan.out is not None:
        msg += f"; labels in {args.out}"
    if plan.montage is not None:
        msg += f"; {len(sheets)} contact sheets in {args.montage}"
    if plan.report is not None:
        msg += f"; report in {args.report}"
    if plan.export is not None:
        msg += f"; {'copies' if args.copy else 'links'} in {args.export}"
    if not args.quiet:
        print(msg, file=sys.stderr)


def _benchmark(args):
    from ._benchmark import DATASETS, machine_line, run_benchmark

    if not os.path.isdir(args.data_home):
        raise CLIError(f"--data-home {args.data_home}: no such folder")
    out = None
    if args.output is not None:
        inputs = _Inputs(
            files=[os.path.join(args.data_home, DATASETS[name][0]) for name in args.datasets]
        )
        out = _plan_file("--output", args.output, inputs, args.force)
    print(machine_line() + "\n")
    try:
        table = run_benchmark(args.data_home, args.datasets, args.methods, seed=args.random_state)
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "cluster" and args.copy and args.export is None:
        parser.error("--copy needs --export DIR")
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
            return _error(
                f"internal error: {type(exc).__name__}: {_describe(exc)} (a bug "
                "in skjule; rerun with --debug for the traceback)",
                EXIT_INTERNAL,
            )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
