"""torch is optional: the agglomerative engine imports and runs without it.

Each check runs in a fresh interpreter (``sys.executable -c``) so that its
``sys.modules`` is clean: the test process itself has torch imported already.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A meta-path finder that makes `torch` and its submodules unimportable, as if
# torch were not installed (whether or not it is).
BLOCK_TORCH = """
import importlib.abc
import sys


class _BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torch" or fullname.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked)",
                                      name=fullname)
        return None


sys.meta_path.insert(0, _BlockTorch())
"""

BLOBS = """
import numpy as np
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

X, y = make_blobs(n_samples=150, centers=3, cluster_std=0.5, random_state=0)
"""


def run_python(code):
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_engine_works_without_torch():
    out = run_python(
        BLOCK_TORCH
        + BLOBS
        + """
import skjule
from skjule import GDLClustering, MergeEngine, cut_hierarchy, clustering_accuracy
import skjule.datasets
import skjule.metrics

try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    raise AssertionError("the torch blocker does not work")

gdl = GDLClustering(3, random_state=0).fit(X)
assert gdl.labels_.shape == (150,)
assert set(np.unique(gdl.labels_)) == {0, 1, 2}
assert adjusted_rand_score(y, gdl.labels_) > 0.9, adjusted_rand_score(y, gdl.labels_)
assert clustering_accuracy(y, gdl.labels_) > 0.9
np.testing.assert_array_equal(cut_hierarchy(gdl.children_, len(X), 3), gdl.labels_)
assert callable(skjule.datasets.load_image_folder)
assert isinstance(skjule.__version__, str)

for name in ("JULEClustering", "JULETransformer", "DeepGMMClustering",
             "AutoencoderTransformer"):
    try:
        getattr(skjule, name)
    except ImportError as exc:
        assert "skjule[deep]" in str(exc) and name in str(exc), str(exc)
    else:
        raise AssertionError(f"skjule.{name} imported without torch")
try:
    from skjule import JULEClustering  # noqa: F401
except ImportError as exc:
    assert "skjule[deep]" in str(exc), str(exc)
else:
    raise AssertionError("from skjule import JULEClustering worked without torch")
assert "torch" not in sys.modules
print("ok")
"""
    )
    assert out.strip().endswith("ok")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_import_does_not_load_torch_and_deep_estimators_load_lazily():
    out = run_python(
        BLOBS
        + """
import sys

import skjule
from skjule import GDLClustering, MergeEngine, cut_hierarchy, clustering_accuracy
import skjule.datasets

assert "torch" not in sys.modules, "import skjule imported torch"
GDLClustering(3, random_state=0).fit(X)
assert "torch" not in sys.modules, "GDLClustering.fit imported torch"

public = {"AutoencoderTransformer", "DeepGMMClustering", "GDLClustering",
          "JULEClustering", "JULETransformer", "MergeEngine", "clustering_accuracy",
          "cut_hierarchy", "__version__"}
assert public <= set(skjule.__all__), set(skjule.__all__) ^ public
assert set(skjule.__all__) <= set(dir(skjule))

from skjule import JULEClustering
from skjule._deep._jule import JULEClustering as defined

assert JULEClustering is defined is skjule.JULEClustering
assert "torch" in sys.modules
assert JULEClustering.__doc__ and "JULE" in JULEClustering.__doc__
from skjule._deep._autoencoder import AutoencoderTransformer
from skjule._deep._deepgmm import DeepGMMClustering
from skjule._deep._jule import JULETransformer

assert skjule.AutoencoderTransformer is AutoencoderTransformer
assert skjule.DeepGMMClustering is DeepGMMClustering
assert skjule.JULETransformer is JULETransformer
namespace = {}
exec("from skjule import *", namespace)
assert public <= set(namespace), public - set(namespace)
try:
    skjule.no_such_name
except AttributeError:
    pass
else:
    raise AssertionError("skjule.no_such_name did not raise AttributeError")
print("ok")
"""
    )
    assert out.strip().endswith("ok")


def test_cli_clusters_features_without_torch(tmp_path):
    out = run_python(
        BLOCK_TORCH
        + BLOBS
        + f"""
import contextlib, io
np.save({str(tmp_path / "X.npy")!r}, X)
from skjule._cli import main

rc = main(["cluster", {str(tmp_path / "X.npy")!r}, "-k", "3", "--method", "gdl",
           "--out", {str(tmp_path / "labels.csv")!r}, "--quiet"])
err = io.StringIO()
with contextlib.redirect_stderr(err):
    rc_jule = main(["cluster", {str(tmp_path / "X.npy")!r}, "-k", "3", "--method", "jule",
                    "--out", {str(tmp_path / "jule.csv")!r}, "--quiet"])
print(rc, rc_jule, repr(err.getvalue()))
assert "torch" not in sys.modules
"""
    )
    rc, rc_jule, err = out.strip().split(" ", 2)
    assert rc == "0" and (tmp_path / "labels.csv").exists()
    assert rc_jule == "1" and "skjule[deep]" in err and "Traceback" not in err
    assert not (tmp_path / "jule.csv").exists()
