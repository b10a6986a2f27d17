"""The ``skjule benchmark`` command: a comparison table on benchmark sets.

Loads the benchmark sets through the public fetchers (:mod:`skjule.datasets`)
from ``data_home``, where a prepared copy such as ``mnist.npz`` (arrays ``X``
and ``y``) or the original files in ``<data_home>/mnist/`` must already be:
the command downloads nothing. It times each method, records its peak memory
and prints one markdown table with scikit-learn baselines run in the same
process. The scripts in ``benchmarks/`` also check the sha256 of the
project's prepared copies; the package knows no such hash.
"""

import gc
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from .metrics import clustering_accuracy

# name -> (prepared copy in data_home, fetcher in skjule.datasets, its
# arguments). COIL-100 and UMist at 32x32, as in the benchmark copies.
DATASETS = {
    "mnist-test": ("mnist.npz", "fetch_mnist", {"subset": "test"}),
    "mnist-full": ("mnist.npz", "fetch_mnist", {}),
    "usps": ("usps.npz", "fetch_usps", {}),
    "coil20": ("coil20.npz", "fetch_coil20", {}),
    "coil100": ("coil100.npz", "fetch_coil100", {"image_size": 32}),
    "umist": ("umist.npz", "fetch_umist", {"image_size": 32}),
}


def load_benchmark(data_home, name, download_if_missing=False):
    """Images and labels of a benchmark set, through its public fetcher.

    ``data_home`` is the fetchers' folder: the prepared copy
    ``<data_home>/<file>.npz`` when it is there (checked structurally), else
    the original files in ``<data_home>/<set>/`` (checked against their
    checksums), downloaded only if ``download_if_missing``.

    Raises
    ------
    ValueError
        For an unknown name, or data without the set's layout.
    OSError
        When the data are missing (FileNotFoundError) or damaged.
    """
    from . import datasets

    if name not in DATASETS:
        raise ValueError(f"Unknown data set {name!r}; choose from {', '.join(DATASETS)}.")
    _, fetcher, kwargs = DATASETS[name]
    try:
        return getattr(datasets, fetcher)(
            data_home=data_home, download_if_missing=download_if_missing, return_X_y=True, **kwargs
        )
    except FileNotFoundError as exc:
        if download_if_missing:
            raise
        raise FileNotFoundError(
            f"{exc} (skjule benchmark downloads nothing: to download the originals, run "
            f"skjule.datasets.{fetcher}(data_home={str(data_home)!r}) once in Python.)"
        ) from None


def flat_l2(X):
    """Rows flattened to float32 and scaled to unit L2 norm (zero rows kept)."""
    X = X.reshape(len(X), -1).astype(np.float32)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    n[n == 0] = 1
    return X / n


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


# ------------------------------------------------------------------ methods


def _methods(k, seed):
    from sklearn.cluster import KMeans, SpectralClustering

    from ._engine._gdl import GDLClustering

    def deep(name):
        # imported here, outside the timed runs; without torch only running the
        # method fails, with skjule's "pip install 'skjule[deep]'" ImportError
        import skjule

        try:
            return getattr(skjule, name)
        except ImportError as exc:
            error = exc

            def missing(*args, **kwargs):
                raise error

            return missing

    JULEClustering = deep("JULEClustering")
    DeepGMMClustering = deep("DeepGMMClustering")

    return {
        "kmeans": (
            "KMeans",
            lambda X: KMeans(k, n_init=10, random_state=seed).fit_predict(flat_l2(X)),
        ),
        "spectral": (
            "SpectralClustering (kNN 20)",
            lambda X: SpectralClustering(
                k,
                affinity="nearest_neighbors",
                n_neighbors=20,
                random_state=seed,
                assign_labels="cluster_qr",
            ).fit_predict(flat_l2(X)),
        ),
        "gdl": ("GDLClustering", lambda X: GDLClustering(k, random_state=seed).fit_predict(X)),
        "jule": ("JULEClustering", lambda X: JULEClustering(k, random_state=seed).fit_predict(X)),
        "deepgmm": (
            "DeepGMMClustering",
            lambda X: DeepGMMClustering(k, random_state=seed).fit_predict(X),
        ),
    }


METHODS = ("kmeans", "spectral", "gdl", "jule", "deepgmm")


def run_benchmark(data_home, datasets, methods=("kmeans", "spectral", "gdl"), seed=0, file=None):
    """Cluster each data set with each method; print and return the table."""
    table = Table(["dataset", "n", "K", "method", "NMI", "ACC", "seconds", "peak MB"], file=file)
    table.header()
    for name in datasets:
        X, y = load_benchmark(data_home, name)
        k = len(np.unique(y))
        registry = _methods(k, seed)
        for m in methods:
            label, run = registry[m]
            labels, dt, peak, _ = measure(lambda: run(X))
            nmi, acc = scores(y, labels)
            table.add(name, len(X), k, label, nmi, acc, dt, peak)
    return table
