"""The ``skjule`` command: cluster a folder of images, or run the benchmarks.

    skjule cluster PATH --n-clusters K [--method jule|gdl|deepgmm]
                   [--out labels.csv] [--montage DIR]
    skjule benchmark --data-home DIR [--datasets ...] [--methods ...]
"""

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

_METHOD_HELP = ("jule: CNN + agglomerative clustering learned jointly (slow, best on "
                "images); gdl: the agglomerative engine alone (fast); deepgmm: "
                "autoencoder + Gaussian mixture learned jointly")


class CLIError(Exception):
    """A user error: printed as one line, exit code 1."""


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


def build_parser():
    from . import __version__
    from ._benchmark import DATASETS, METHODS

    parser = argparse.ArgumentParser(
        prog="skjule",
        description="Deep image clustering (JULE) from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"skjule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser(
        "cluster", help="cluster a folder of images or an .npy/.npz array",
        description="Cluster the images in PATH (a folder of PNG/JPEG/... files, "
                    "searched recursively, or an .npy/.npz file holding an array of "
                    "images (n, H, W[, C]) or of feature vectors (n, d)) and write "
                    "one 'file,cluster' line per sample.",
    )
    c.add_argument("path", metavar="PATH", help="folder of images, or .npy/.npz file")
    c.add_argument("--n-clusters", "-k", type=_n_clusters, required=True,
                   help="number of clusters K, or 'auto' to choose it from the merge "
                        "history (jule and gdl)")
    c.add_argument("--method", choices=("jule", "gdl", "deepgmm"), default="jule",
                   help=_METHOD_HELP + " (default: jule)")
    c.add_argument("--out", "-o", metavar="CSV",
                   help="write the labels to this CSV file (default: standard output)")
    c.add_argument("--montage", metavar="DIR",
                   help="write one PNG contact sheet per cluster into DIR")
    c.add_argument("--montage-size", type=_positive_int, default=64, metavar="N",
                   help="at most N images per contact sheet (default: 64)")
    c.add_argument("--resize", type=_positive_int, metavar="PX",
                   help="resize images to PX x PX (needed when sizes differ)")
    c.add_argument("--grey", action="store_true", help="convert colour images to grey")
    c.add_argument("--key", help="array to use in an .npz file (default: X, images, "
                                 "data, or its only array)")
    c.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    c.add_argument("--device", default="auto",
                   help="torch device for jule/deepgmm: auto, cpu, cuda, ... (default: auto)")
    c.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    b = sub.add_parser(
        "benchmark", help="print the comparison table on the benchmark sets",
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
    b.add_argument("--output", metavar="MD", help="also write the table to this file")
    b.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    return parser


# ------------------------------------------------------------------- cluster


def _load_array(path, key):
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise CLIError(f"cannot read {path}: {exc}") from None
    with np.load(path, allow_pickle=False) as d:
        names = list(d.keys())
        if key is None:
            key = next((k for k in ("X", "images", "data") if k in names),
                       names[0] if len(names) == 1 else None)
            if key is None:
                raise CLIError(f"{path} holds several arrays ({', '.join(names)}); "
                               "choose one with --key")
        if key not in names:
            raise CLIError(f"{path} has no array {key!r}; it holds {', '.join(names)}")
        return d[key]


def _load_input(args):
    from .datasets import load_image_folder

    path = Path(args.path)
    if not path.exists():
        raise CLIError(f"{path}: no such file or folder")
    if path.is_dir():
        try:
            data = load_image_folder(path, resize=args.resize,
                                     color="grey" if args.grey else "auto", labels=None,
                                     verbose=0 if args.quiet else 1)
        except ValueError as exc:
            msg = str(exc).replace("pass resize=(height, width)", "pass --resize PX")
            raise CLIError(msg) from None
        return data.images, list(data.filenames)
    if path.suffix not in (".npy", ".npz"):
        raise CLIError(f"{path}: expected a folder of images or an .npy/.npz file")
    try:
        X = _load_array(path, args.key)
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None
    if X.ndim < 2:
        raise CLIError(f"{path}: expected one sample per row, got an array of shape "
                       f"{X.shape}")
    if args.resize is not None and X.ndim >= 3:
        raise CLIError("--resize applies to image folders; resize the array yourself")
    return X, [str(i) for i in range(len(X))]


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


def _write_montages(folder, images, labels, per_cluster, seed):
    from PIL import Image

    from ._montage import cluster_samples, make_montage

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width = len(str(int(labels.max())))
    written = []
    for k, idx in cluster_samples(labels, per_cluster, random_state=seed).items():
        sheet = make_montage(images[idx])
        out = folder / f"cluster_{int(k):0{width}d}.png"
        Image.fromarray(sheet).save(out)
        written.append(out)
    return written


def _cluster(args):
    if args.n_clusters is None and args.method == "deepgmm":
        raise CLIError("-k auto works with --method jule or gdl; deepgmm needs a number")
    X, names = _load_input(args)
    if args.n_clusters is not None and args.n_clusters > len(X):
        raise CLIError(f"--n-clusters {args.n_clusters} is more than the {len(X)} "
                       "samples in the input")
    # Everything that can be checked is checked before the (long) fit.
    if args.montage and X.ndim == 2:
        raise CLIError("--montage needs images; the input holds feature vectors of "
                       f"shape {X.shape}")
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise CLIError(f"--out {args.out}: the folder {Path(args.out).parent} does not exist")
    labels = _estimator(args).fit_predict(X)  # a ValueError is reported by main()
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        w = csv.writer(out)
        w.writerow(["file", "cluster"])
        w.writerows(zip(names, labels.tolist()))
    finally:
        if args.out:
            out.close()
    msg = f"{len(X)} samples -> {len(np.unique(labels))} clusters ({args.method})"
    if args.out:
        msg += f"; labels in {args.out}"
    if args.montage:
        sheets = _write_montages(args.montage, X, labels, args.montage_size,
                                 args.random_state)
        msg += f"; {len(sheets)} contact sheets in {args.montage}"
    if not args.quiet:
        print(msg, file=sys.stderr)


def _benchmark(args):
    from ._benchmark import machine_line, run_benchmark

    if not os.path.isdir(args.data_home):
        raise CLIError(f"--data-home {args.data_home}: no such folder")
    print(machine_line() + "\n")
    try:
        table = run_benchmark(args.data_home, args.datasets, args.methods,
                              seed=args.random_state)
    except (OSError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if args.output:
        with open(args.output, "w") as f:
            f.write(f"# skjule benchmark\n\n{machine_line()}\n\n{table.markdown()}\n")


def main(argv=None):
    """Entry point of the ``skjule`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        (_cluster if args.command == "cluster" else _benchmark)(args)
    except CLIError as exc:
        print(f"skjule: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"skjule: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("skjule: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
