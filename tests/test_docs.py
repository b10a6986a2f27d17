"""The documentation builds with warnings as errors, and the examples run."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(tmp_path):
    """sphinx-build -W on a copy of docs/ and examples/ (the build writes the
    gallery and API stubs next to the sources). Runs every plot_*.py example."""
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("numpydoc")
    for d in ("docs", "examples"):
        shutil.copytree(
            os.path.join(ROOT, d),
            tmp_path / d,
            ignore=shutil.ignore_patterns("_build", "generated", "auto_examples"),
        )
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(tmp_path / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = tmp_path / "html"
    for page in (
        "index",
        "install",
        "user_guide",
        "cli",
        "jule",
        "api",
        "auto_examples/index",
        "auto_examples/plot_pictures",
        "generated/skjule.JULEClustering",
        "generated/skjule.datasets.fetch_mnist",
    ):
        assert (html / f"{page}.html").exists(), page
    # every executed example produced its figures
    images = os.listdir(html / "_images")
    for example in ("plot_compare_methods", "plot_pipeline_gridsearch", "plot_pictures"):
        assert any(example in name for name in images), example


@pytest.mark.slow
def test_transfer_example_runs(benchmark_data):
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "examples", "transfer_mnist_usps.py"),
            "--data-home",
            benchmark_data,
            "--max-samples",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[1].startswith("mnist-test -> usps") and lines[2].startswith("usps -> mnist")
    assert all(0 <= float(v) <= 1 for line in lines[1:] for v in line.split()[3:6])
