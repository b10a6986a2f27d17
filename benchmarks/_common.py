"""Shared helpers for the benchmark scripts: data loading, timing, peak memory, tables."""

import argparse
import gc
import hashlib
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from skjule.metrics import clustering_accuracy  # noqa: E402

# name -> (file, slice of samples)
DATASETS = {
    "mnist-test": ("mnist.npz", slice(60000, None)),
    "mnist-full": ("mnist.npz", slice(None)),
    "usps": ("usps.npz", slice(None)),
    "coil20": ("coil20.npz", slice(None)),
    "coil100": ("coil100.npz", slice(None)),
    "umist": ("umist.npz", slice(None)),
}

SHA256 = {
    "mnist.npz": "d24f62cd7130cb5d9120db443011ab08e8c6ead5a8556ca6663753050467685d",
    "usps.npz": "e278e84b49a7ef26c95466169cce52a336acadc70264113495a2feed59e1fff4",
    "coil20.npz": "c7eb152ea5782a7d315eaa115bba8d9ab9305dc78bdc3fce326ebcd9bae9f874",
    "coil100.npz": "4225fbd49c6985ddb2d9c5bc88ac3470263d53da951e3509de93f7b7730085d7",
    "umist.npz": "2ccb2981815d745760889baf45076108e19cac2ab5d319e8b342a7d024cded1a",
}


def parser(description, default_datasets):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-home", required=True,
                   help="folder with the benchmark .npz files (e.g. ../shared/datasets)")
    p.add_argument("--datasets", nargs="+", default=default_datasets,
                   choices=sorted(DATASETS), help="data sets to run")
    p.add_argument("--output", help="also write the markdown table to this file")
    p.add_argument("--seed", type=int, default=0)
    return p


def load(data_home, name, verify=True):
    """Images (uint8 or float) and labels of a benchmark set."""
    fname, sl = DATASETS[name]
    path = os.path.join(data_home, fname)
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found: pass --data-home pointing at the .npz files")
    if verify:
        h = hashlib.sha256(open(path, "rb").read()).hexdigest()
        if h != SHA256[fname]:
            raise SystemExit(f"{path} is damaged: sha256 {h} != {SHA256[fname]}")
    with np.load(path) as d:
        return d["X"][sl], d["y"][sl]


def flat_l2(X):
    X = X.reshape(len(X), -1).astype(np.float32)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    n[n == 0] = 1
    return X / n


def warm_up():
    """Compile numba code (skjule's kernels, pynndescent) outside the timed calls."""
    from skjule import GDLClustering
    from skjule._graph import knn_search

    rng = np.random.RandomState(0)
    X = rng.rand(300, 5).astype(np.float32)
    GDLClustering(3).fit(X)
    knn_search(X, 5, method="nndescent", random_state=rng)


def _status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def measure(fn):
    """Run ``fn()``; return (result, seconds, peak RSS in MB during the call,
    peak minus RSS before the call in MB). The kernel's peak-RSS counter is
    reset before the call (Linux /proc/self/clear_refs)."""
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
    return normalized_mutual_info_score(y, labels), clustering_accuracy(y, labels)


class Table:
    def __init__(self, columns):
        self.columns = columns
        self.rows = []

    def add(self, *row):
        self.rows.append(row)
        print("| " + " | ".join(_fmt(v) for v in row) + " |", flush=True)

    def header(self):
        print("| " + " | ".join(self.columns) + " |")
        print("|" + "|".join("---" for _ in self.columns) + "|", flush=True)

    def markdown(self):
        lines = ["| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in self.rows]
        return "\n".join(lines)


def _fmt(v):
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def machine_line():
    import sklearn
    import torch

    return (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
            f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, torch {torch.__version__}")


def write(path, title, table, notes=""):
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"# {title}\n\n{machine_line()}\n\nCommand: `{' '.join(sys.argv)}`\n\n")
        f.write(table.markdown() + "\n")
        if notes:
            f.write("\n" + notes.strip() + "\n")
