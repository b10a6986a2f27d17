"""Shared helpers for the benchmark scripts: data, timing, peak memory, tables.

The scripts use skjule's public API only. What they need beyond it lives
here: which public fetcher serves each benchmark set (and the sha256 of this
project's prepared copies, to check that results are comparable), the timing
and memory plumbing, and the few library rules a script must know before it
fits (each mirrors a documented rule and says which).
"""

import argparse
import gc
import hashlib
import math
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from skjule import clustering_accuracy
from skjule.datasets import fetch_coil20, fetch_coil100, fetch_mnist, fetch_umist, fetch_usps

# name -> (prepared copy in data_home, public fetcher, its arguments). COIL-100
# and UMist at 32x32, the size of the project's copies: results are comparable
# only at the same image size. ("digits" is scikit-learn's load_digits, which
# the scripts that use it call themselves.)
DATASETS = {
    "mnist-test": ("mnist.npz", fetch_mnist, {"subset": "test"}),
    "mnist-full": ("mnist.npz", fetch_mnist, {}),
    "usps": ("usps.npz", fetch_usps, {}),
    "coil20": ("coil20.npz", fetch_coil20, {}),
    "coil100": ("coil100.npz", fetch_coil100, {"image_size": 32}),
    "umist": ("umist.npz", fetch_umist, {"image_size": 32}),
}

# This project's prepared copies (../shared/datasets), on which the tables in
# benchmarks/results were measured: checked by load(verify=True) when a prepared
# copy is used. The fetchers know nothing of them (they verify the public
# originals against their own pins, and a prepared copy structurally).
SHA256 = {
    "mnist.npz": "d24f62cd7130cb5d9120db443011ab08e8c6ead5a8556ca6663753050467685d",
    "usps.npz": "e278e84b49a7ef26c95466169cce52a336acadc70264113495a2feed59e1fff4",
    "coil20.npz": "c7eb152ea5782a7d315eaa115bba8d9ab9305dc78bdc3fce326ebcd9bae9f874",
    "coil100.npz": "4225fbd49c6985ddb2d9c5bc88ac3470263d53da951e3509de93f7b7730085d7",
    "umist.npz": "2ccb2981815d745760889baf45076108e19cac2ab5d319e8b342a7d024cded1a",
}

# knn_method="auto" of GDLClustering and MergeEngine (GDLClustering's docstring):
# exact search while 2 * n^2 * d is at most this many flops, NN-descent beyond.
EXACT_KNN_FLOPS = 4e11


def parser(description, default_datasets, choices=None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--data-home",
        required=True,
        help="the fetchers' data_home: prepared copies such as mnist.npz (e.g. "
        "../shared/datasets), or the public originals, downloaded there if missing",
    )
    p.add_argument(
        "--datasets",
        nargs="+",
        default=default_datasets,
        choices=sorted(DATASETS) if choices is None else choices,
        help="data sets to run",
    )
    p.add_argument("--output", help="also write the markdown table to this file")
    p.add_argument("--seed", type=int, default=0)
    return p


def load(data_home, name, verify=True):
    """Images (uint8 or float) and labels of a benchmark set, from skjule's fetchers.

    ``data_home`` is the fetchers' folder. A prepared copy there (e.g.
    ``mnist.npz`` in ../shared/datasets) is used as it is; otherwise the
    fetcher reads the public originals from ``<data_home>/<set>/``,
    downloading what is missing, verified against their published checksums.
    With ``verify``, a prepared copy must be this project's (``SHA256``): the
    tables in benchmarks/results were measured on those bytes.

    Exits with a message for an unknown name, a prepared copy that is not the
    project's (with ``verify``), or data the fetcher cannot provide.
    """
    if name not in DATASETS:
        raise SystemExit(f"Unknown data set {name!r}; choose from {', '.join(DATASETS)}.")
    fname, fetch, kwargs = DATASETS[name]
    path = os.path.join(data_home, fname)
    if verify and os.path.exists(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != SHA256[fname]:
            raise SystemExit(
                f"{path} is damaged or not this project's copy (sha256 {h.hexdigest()} != "
                f"{SHA256[fname]}), so results on it are not comparable with "
                "benchmarks/results. Use the project's copy, move it away to have the "
                "fetcher use the public originals, or call load(..., verify=False)."
            )
    try:
        return fetch(data_home=data_home, return_X_y=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"Cannot load {name}: {exc}") from None


def flat_l2(X):
    """Rows flattened to float32 and scaled to unit L2 norm (zero rows kept)."""
    X = X.reshape(len(X), -1).astype(np.float32)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    n[n == 0] = 1
    return X / n


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


def auto_n_neighbors(n_samples, n_clusters):
    """The ``Ks`` that ``n_neighbors="auto"`` takes, for a script that needs it
    before fitting: ``n_samples / n_clusters / 7`` clipped to [10, 20], as
    GDLClustering's docstring states (a fitted estimator reports it as
    ``n_neighbors_``; :func:`warm_up` checks the two agree)."""
    return int(np.clip(round(n_samples / max(n_clusters, 1) / 7), 10, 20))


def knn_indices(X, n_neighbors, random_state, method="auto"):
    """The ``n_neighbors`` nearest other rows of each row of ``X`` (Euclidean),
    searched as MergeEngine's ``knn_method`` does, with public libraries.

    ``"exact"``: scikit-learn's brute-force ``NearestNeighbors``.
    ``"nndescent"``: ``pynndescent.NNDescent`` with the engine's settings and
    seed (one draw from the ``random_state`` RandomState), so on the same
    rows it returns the engine's neighbours. ``"auto"``: exact while
    ``2 n^2 d <= EXACT_KNN_FLOPS``. Rows are not sorted by distance.
    """
    n, d = X.shape
    if method == "auto":
        method = "exact" if 2.0 * n * n * d <= EXACT_KNN_FLOPS else "nndescent"
    if method == "exact":
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=n_neighbors, algorithm="brute").fit(X)
        return nn.kneighbors(return_distance=False).astype(np.int64)
    from pynndescent import NNDescent

    seed = int(random_state.randint(2**31 - 1))
    index = NNDescent(
        X,
        metric="euclidean",
        n_neighbors=n_neighbors + 1,
        random_state=seed,
        low_memory=True,
        compressed=True,
    )
    idx = np.asarray(index.neighbor_graph[0], dtype=np.int64)
    # Drop each row's own index (the farthest candidate where it is missing).
    is_self = idx == np.arange(n)[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    idx = idx[~is_self].reshape(n, n_neighbors)
    # NN-descent can leave a slot empty (-1) on heavily duplicated data; the
    # engine fills it with the row's nearest neighbour, so does this.
    empty = idx < 0
    idx[empty] = idx[np.nonzero(empty)[0], 0]
    return idx


def warm_up():
    """Compile numba code (skjule's kernels, pynndescent) outside the timed calls."""
    from skjule import GDLClustering

    rng = np.random.RandomState(0)
    X = rng.rand(300, 5).astype(np.float32)
    gdl = GDLClustering(3).fit(X)
    knn_indices(X, 5, rng, method="nndescent")
    if gdl.n_neighbors_ != auto_n_neighbors(300, 3):
        raise RuntimeError(
            f'n_neighbors="auto" took {gdl.n_neighbors_}, auto_n_neighbors says '
            f"{auto_n_neighbors(300, 3)}: update auto_n_neighbors to the library's rule."
        )


def _status_mb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def measure(fn):
    """Run ``fn()``; return (result, seconds, peak RSS in MB during the call,
    peak minus RSS before the call in MB). Linux resets the kernel's peak-RSS
    counter before the call (/proc/self/clear_refs); elsewhere the peak is
    NaN."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    base = _status_mb("VmRSS")
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    peak = _status_mb("VmHWM")
    return out, dt, peak, peak - base


def scores(y, labels):
    """(NMI, ACC) of ``labels`` against ``y``."""
    return normalized_mutual_info_score(y, labels), clustering_accuracy(y, labels)


def fmt(v):
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


class Table:
    """Markdown table printed row by row as results come in."""

    def __init__(self, columns, file=None):
        self.columns = columns
        self.rows = []
        self.file = sys.stdout if file is None else file

    def header(self):
        print("| " + " | ".join(self.columns) + " |", file=self.file)
        print("|" + "|".join("---" for _ in self.columns) + "|", file=self.file, flush=True)

    def add(self, *row):
        self.rows.append(row)
        print("| " + " | ".join(fmt(v) for v in row) + " |", file=self.file, flush=True)

    def markdown(self):
        lines = [
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" for _ in self.columns) + "|",
        ]
        lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in self.rows]
        return "\n".join(lines)


def seed_summary(results):
    """Print and return the table of mean and standard deviation over the seeds;
    ``results`` maps ``(dataset, method)`` to a list of ``(NMI, ACC, seconds)``."""
    summary = Table(["dataset", "method", "NMI mean", "NMI std", "ACC mean", "seconds mean"])
    print()
    summary.header()
    for (name, method), rows in results.items():
        a = np.array(rows)
        summary.add(name, method, a[:, 0].mean(), a[:, 0].std(), a[:, 1].mean(), a[:, 2].mean())
    return "Mean and standard deviation over the seeds:\n\n" + summary.markdown() + "\n"


def machine_line():
    import sklearn

    try:
        import torch
    except ImportError:  # the engine runs without torch (skjule[deep] not installed)
        torch_version = "not installed"
    else:
        torch_version = torch.__version__
    return (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, torch {torch_version}"
    )


def write(path, title, table, notes=""):
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        # shell-quoted, so the line pastes into a shell (JSON arguments, spaces)
        command = shlex.join(["python", *sys.argv])
        f.write(f"# {title}\n\n{machine_line()}\n\nCommand: `{command}`\n\n")
        f.write(table.markdown() + "\n")
        if notes:
            f.write("\n" + notes.strip() + "\n")
