"""The `skjule` command line tool, end to end."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from skjule._cli import main


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory):
    """90 digit images (3 classes) as 8x8 PNG files in nested folders."""
    root = tmp_path_factory.mktemp("photos")
    X, y = load_digits(n_class=3, return_X_y=True)
    X, y = X[:90], y[:90]
    for i, (x, c) in enumerate(zip(X, y)):
        sub = root / f"batch{i % 2}"
        sub.mkdir(exist_ok=True)
        Image.fromarray((x.reshape(8, 8) * 16).clip(0, 255).astype(np.uint8)).save(
            sub / f"img{i:03d}.png")
    return root, y


def _read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "cluster"]
    return rows[1:]


@pytest.mark.parametrize("method", ["gdl", "jule", "deepgmm"])
def test_cluster_folder_writes_csv_and_montages(png_folder, tmp_path, method, capsys):
    root, _ = png_folder
    out, sheets = tmp_path / "labels.csv", tmp_path / "sheets"
    code = main(["cluster", str(root), "--n-clusters", "3", "--method", method,
                 "--out", str(out), "--montage", str(sheets), "--montage-size", "9",
                 "--quiet"])
    assert code == 0
    rows = _read_csv(out)
    assert len(rows) == 90
    assert rows[0][0] == os.path.join("batch0", "img000.png")
    labels = np.array([int(r[1]) for r in rows])
    assert set(labels) == {0, 1, 2}
    files = sorted(sheets.iterdir())
    assert [f.name for f in files] == ["cluster_0.png", "cluster_1.png", "cluster_2.png"]
    for f in files:
        with Image.open(f) as im:
            # at most 9 images: a 3x3 grid of 32-px cells (8 px enlarged x4)
            assert im.size[0] <= 3 * 34 + 2 and im.size[1] <= 3 * 34 + 2
    assert capsys.readouterr().err == ""  # --quiet


def test_gdl_labels_match_the_classes(png_folder, tmp_path):
    from sklearn.metrics import normalized_mutual_info_score

    root, y = png_folder
    out = tmp_path / "l.csv"
    assert main(["cluster", str(root), "-k", "3", "--method", "gdl", "-o", str(out),
                 "-q"]) == 0
    rows = _read_csv(out)
    # files are listed batch0/ then batch1/: map them back to the digit order
    order = [int(r[0][-7:-4]) for r in rows]
    labels = np.empty(90, dtype=int)
    labels[order] = [int(r[1]) for r in rows]
    assert normalized_mutual_info_score(y, labels) > 0.8


def test_installed_command_runs_and_prints_csv(png_folder):
    root, _ = png_folder
    proc = subprocess.run(
        [sys.executable, "-m", "skjule", "cluster", str(root), "-k", "3", "--method",
         "gdl"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "file,cluster" and len(lines) == 91
    assert "90 samples -> 3 clusters" in proc.stderr
    for cmd in (["--help"], ["cluster", "--help"], ["benchmark", "--help"]):
        h = subprocess.run([sys.executable, "-m", "skjule", *cmd], capture_output=True,
                           text=True, timeout=120)
        assert h.returncode == 0 and "usage: skjule" in h.stdout


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith("skjule: error:") and "\n" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    assert main(["cluster", str(tmp_path / "missing"), "-k", "2"]) == 1
    _one_line_error(capsys, "no such file or folder")

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((6, 6), 40 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert main(["cluster", str(folder), "-k", "2", "--method", "gdl", "-q"]) == 1
    _one_line_error(capsys, "broken.png")

    (folder / "broken.png").unlink()
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(folder / "big.png")
    assert main(["cluster", str(folder), "-k", "2", "--method", "gdl", "-q"]) == 1
    _one_line_error(capsys, "different sizes", "--resize PX")

    assert main(["cluster", str(folder), "-k", "9", "--method", "gdl", "--resize", "6", "-q"]) == 1
    _one_line_error(capsys, "more than the 5 samples")

    text = tmp_path / "x.txt"
    text.write_text("hello")
    assert main(["cluster", str(text), "-k", "2"]) == 1
    _one_line_error(capsys, ".npy/.npz")

    npz = tmp_path / "two.npz"
    np.savez(npz, a=np.zeros((5, 3)), b=np.ones(5))
    assert main(["cluster", str(npz), "-k", "2"]) == 1
    _one_line_error(capsys, "--key")
    assert main(["cluster", str(npz), "-k", "2", "--key", "c"]) == 1
    _one_line_error(capsys, "no array 'c'")

    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy")
    assert main(["cluster", str(bad), "-k", "2"]) == 1
    _one_line_error(capsys, "bad.npy")

    assert main(["cluster", str(folder), "-k", "2", "--resize", "6", "--out",
                 str(tmp_path / "no" / "l.csv"), "-q"]) == 1
    _one_line_error(capsys, "does not exist")

    with pytest.raises(SystemExit) as exc:
        main(["cluster", str(folder), "-k", "0"])
    assert exc.value.code == 2


def test_npy_features_and_montage_refusal(tmp_path, capsys):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 0.05, (30, 5)) + c for c in np.eye(5)[:3] * 3])
    np.save(tmp_path / "f.npy", X)
    out = tmp_path / "l.csv"
    assert main(["cluster", str(tmp_path / "f.npy"), "-k", "3", "--method", "gdl",
                 "-o", str(out), "-q"]) == 0
    rows = _read_csv(out)
    assert [r[0] for r in rows[:3]] == ["0", "1", "2"]
    labels = np.array([int(r[1]) for r in rows])
    assert len(set(labels[:30])) == 1 and len(set(labels)) == 3
    assert main(["cluster", str(tmp_path / "f.npy"), "-k", "3", "--method", "gdl",
                 "-o", str(out), "--montage", str(tmp_path / "m"), "-q"]) == 1
    _one_line_error(capsys, "--montage needs images")

    np.savez(tmp_path / "imgs.npz", X=rng.rand(40, 6, 6), y=np.zeros(40))
    assert main(["cluster", str(tmp_path / "imgs.npz"), "-k", "2", "--method", "gdl",
                 "-o", str(out), "--montage", str(tmp_path / "m"), "-q"]) == 0
    assert len(list((tmp_path / "m").glob("cluster_*.png"))) == 2


def test_benchmark_errors(tmp_path, capsys):
    assert main(["benchmark", "--data-home", str(tmp_path / "nope")]) == 1
    _one_line_error(capsys, "no such folder")
    (tmp_path / "usps.npz").write_bytes(b"fake")
    assert main(["benchmark", "--data-home", str(tmp_path), "--datasets", "usps"]) == 1
    _one_line_error(capsys, "damaged")
    assert main(["benchmark", "--data-home", str(tmp_path), "--datasets", "coil20"]) == 1
    _one_line_error(capsys, "coil20.npz")


@pytest.mark.slow
def test_benchmark_on_real_data(benchmark_data, tmp_path, capsys):
    out = tmp_path / "t.md"
    assert main(["benchmark", "--data-home", benchmark_data, "--datasets", "umist",
                 "--methods", "kmeans", "gdl", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| dataset | n | K | method | NMI | ACC | seconds | peak MB |" in printed
    rows = [line for line in out.read_text().splitlines() if line.startswith("| umist")]
    assert len(rows) == 2
    nmi = {r.split("|")[4].strip(): float(r.split("|")[5]) for r in rows}
    assert nmi["GDLClustering"] > nmi["KMeans"]


def test_k_auto_chooses_the_number_of_clusters(tmp_path, capsys):
    # Three well separated groups of feature vectors: "-k auto" finds them.
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(300, n_features=10, centers=3, random_state=0)
    npy = tmp_path / "feats.npy"
    np.save(npy, X)
    out = tmp_path / "l.csv"
    assert main(["cluster", str(npy), "-k", "auto", "--method", "gdl", "-o", str(out)]) == 0
    assert len({r[1] for r in _read_csv(out)}) == 3
    assert "300 samples -> 3 clusters" in capsys.readouterr().err


def test_k_auto_is_refused_for_deepgmm(tmp_path, capsys):
    npy = tmp_path / "feats.npy"
    np.save(npy, np.random.RandomState(0).rand(20, 3))
    assert main(["cluster", str(npy), "-k", "auto", "--method", "deepgmm", "-q"]) == 1
    assert "deepgmm needs a number" in capsys.readouterr().err
