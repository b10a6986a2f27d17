"""Shared helpers for the benchmark scripts: data loading, timing, peak memory, tables."""

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from skjule._benchmark import (  # noqa: E402,F401  (shared with `skjule benchmark`)
    DATASETS,
    SHA256,
    Table,
    flat_l2,
    machine_line,
    measure,
    scores,
)
from skjule._benchmark import load_benchmark as _load  # noqa: E402


def parser(description, default_datasets, choices=None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-home", required=True,
                   help="folder with the benchmark .npz files (e.g. ../shared/datasets)")
    p.add_argument("--datasets", nargs="+", default=default_datasets,
                   choices=sorted(DATASETS) if choices is None else choices,
                   help="data sets to run")
    p.add_argument("--output", help="also write the markdown table to this file")
    p.add_argument("--seed", type=int, default=0)
    return p


def load(data_home, name, verify=True):
    """Images (uint8 or float) and labels of a benchmark set."""
    try:
        return _load(data_home, name, verify)
    except (OSError, ValueError) as exc:
        raise SystemExit(str(exc)) from None


def unit_pixels(X):
    """Images as float32 rows scaled to [0, 1] by the largest value."""
    Xf = X.reshape(X.shape[0], -1).astype(np.float32)
    Xf /= max(float(Xf.max()), 1e-12)
    return Xf


def block_mean(X, size):
    """Images (n, H, W[, C]) shrunk to (n, size, size[, C]) by block means
    (unchanged when they are not larger than ``size``)."""
    f = X.shape[1] // size
    if X.ndim < 3 or f <= 1:
        return X
    shape = (X.shape[0], size, f, size, f) + X.shape[3:]
    return X[:, : size * f, : size * f].reshape(shape).mean(axis=(2, 4)).astype(np.float32)


def nlogn_exponent(n0, n1):
    """The ``b`` with ``n^b`` growing as ``n log n`` from ``n0`` to ``n1``."""
    return 1 + math.log(math.log(n1) / math.log(n0)) / math.log(n1 / n0)


def warm_up():
    """Compile numba code (skjule's kernels, pynndescent) outside the timed calls."""
    from skjule import GDLClustering
    from skjule._graph import knn_search

    rng = np.random.RandomState(0)
    X = rng.rand(300, 5).astype(np.float32)
    GDLClustering(3).fit(X)
    knn_search(X, 5, method="nndescent", random_state=rng)


def write(path, title, table, notes=""):
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"# {title}\n\n{machine_line()}\n\nCommand: `{' '.join(sys.argv)}`\n\n")
        f.write(table.markdown() + "\n")
        if notes:
            f.write("\n" + notes.strip() + "\n")
