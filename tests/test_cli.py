"""The `skjule` command line tool, end to end."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from skjule._cli import CSV_HEADER, main


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory):
    """90 digit images (3 classes) as 8x8 PNG files in nested folders."""
    root = tmp_path_factory.mktemp("photos")
    X, y = load_digits(n_class=3, return_X_y=True)
    X, y = X[:90], y[:90]
    for i, x in enumerate(X):
        sub = root / f"batch{i % 2}"
        sub.mkdir(exist_ok=True)
        Image.fromarray((x.reshape(8, 8) * 16).clip(0, 255).astype(np.uint8)).save(
            sub / f"img{i:03d}.png"
        )
    return root, y


def _read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CSV_HEADER
    assert CSV_HEADER[:2] == ["file", "cluster"]  # the first two columns never change
    return rows[1:]


@pytest.mark.parametrize("method", ["gdl", "jule", "deepgmm"])
def test_cluster_folder_writes_csv_and_montages(png_folder, tmp_path, method, capsys):
    root, _ = png_folder
    out, sheets = tmp_path / "labels.csv", tmp_path / "sheets"
    code = main(
        [
            "cluster",
            str(root),
            "--n-clusters",
            "3",
            "--method",
            method,
            "--out",
            str(out),
            "--montage",
            str(sheets),
            "--montage-size",
            "9",
            "--quiet",
        ]
    )
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
    assert main(["cluster", str(root), "-k", "3", "--method", "gdl", "-o", str(out), "-q"]) == 0
    rows = _read_csv(out)
    # files are listed batch0/ then batch1/: map them back to the digit order
    order = [int(r[0][-7:-4]) for r in rows]
    labels = np.empty(90, dtype=int)
    labels[order] = [int(r[1]) for r in rows]
    assert normalized_mutual_info_score(y, labels) > 0.8


def test_installed_command_runs_and_prints_csv(png_folder):
    root, _ = png_folder
    proc = subprocess.run(
        [sys.executable, "-m", "skjule", "cluster", str(root), "-k", "3", "--method", "gdl"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == ",".join(CSV_HEADER) and len(lines) == 91
    assert "90 samples -> 3 clusters" in proc.stderr
    for cmd in (["--help"], ["cluster", "--help"], ["benchmark", "--help"]):
        h = subprocess.run(
            [sys.executable, "-m", "skjule", *cmd], capture_output=True, text=True, timeout=120
        )
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

    assert (
        main(
            [
                "cluster",
                str(folder),
                "-k",
                "2",
                "--resize",
                "6",
                "--out",
                str(tmp_path / "no" / "l.csv"),
                "-q",
            ]
        )
        == 1
    )
    _one_line_error(capsys, "does not exist")

    with pytest.raises(SystemExit) as exc:
        main(["cluster", str(folder), "-k", "0"])
    assert exc.value.code == 2


def test_npy_features_and_montage_refusal(tmp_path, capsys):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 0.05, (30, 5)) + c for c in np.eye(5)[:3] * 3])
    np.save(tmp_path / "f.npy", X)
    out = tmp_path / "l.csv"
    assert (
        main(
            ["cluster", str(tmp_path / "f.npy"), "-k", "3", "--method", "gdl", "-o", str(out), "-q"]
        )
        == 0
    )
    rows = _read_csv(out)
    assert [r[0] for r in rows[:3]] == ["0", "1", "2"]
    labels = np.array([int(r[1]) for r in rows])
    assert len(set(labels[:30])) == 1 and len(set(labels)) == 3
    # (the labels file now exists: replacing it needs --force)
    assert (
        main(
            [
                "cluster",
                str(tmp_path / "f.npy"),
                "-k",
                "3",
                "--method",
                "gdl",
                "-o",
                str(out),
                "--montage",
                str(tmp_path / "m"),
                "--force",
                "-q",
            ]
        )
        == 1
    )
    _one_line_error(capsys, "--montage needs images")

    np.savez(tmp_path / "imgs.npz", X=rng.rand(40, 6, 6), y=np.zeros(40))
    assert (
        main(
            [
                "cluster",
                str(tmp_path / "imgs.npz"),
                "-k",
                "2",
                "--method",
                "gdl",
                "-o",
                str(out),
                "--montage",
                str(tmp_path / "m"),
                "--force",
                "-q",
            ]
        )
        == 0
    )
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
    assert (
        main(
            [
                "benchmark",
                "--data-home",
                benchmark_data,
                "--datasets",
                "umist",
                "--methods",
                "kmeans",
                "gdl",
                "--output",
                str(out),
            ]
        )
        == 0
    )
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


# --------------------------------------------------------------------------
# Issue 23: the CLI never destroys data (pre-flight output checks, --force,
# atomic writes) and every failure is one line on stderr with a documented
# exit code.


def _snapshot(root):
    """{relative path: sha256} of every file under ``root`` (symlinks as links)."""
    import hashlib

    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                snap[rel] = "link:" + os.readlink(p)
            elif os.path.isdir(p):
                snap[rel] = "dir"
            else:
                with open(p, "rb") as f:
                    snap[rel] = hashlib.sha256(f.read()).hexdigest()
    return snap


@pytest.fixture
def features(tmp_path):
    """A small .npy of feature vectors (3 well separated groups of 10)."""
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 0.05, (10, 4)) + c for c in np.eye(4)[:3] * 3])
    path = tmp_path / "feats.npy"
    np.save(path, X)
    return path


@pytest.fixture
def no_fit(monkeypatch):
    """Any attempt to fit an estimator fails the test."""
    from skjule._deep import _deepgmm, _jule
    from skjule._engine import _gdl

    def boom(self, *a, **k):
        raise AssertionError("the estimator was fitted")

    for cls in (_gdl.GDLClustering, _jule.JULEClustering, _deepgmm.DeepGMMClustering):
        monkeypatch.setattr(cls, "fit", boom)
        monkeypatch.setattr(cls, "fit_predict", boom)


def test_out_same_as_input_is_refused_and_the_input_kept(features, tmp_path, capsys):
    before = features.read_bytes()
    for extra in ([], ["--force"]):
        assert (
            main(
                [
                    "cluster",
                    str(features),
                    "-k",
                    "3",
                    "--method",
                    "gdl",
                    "--out",
                    str(features),
                    "-q",
                    *extra,
                ]
            )
            == 1
        )
        _one_line_error(capsys, "is the input")
        assert features.read_bytes() == before
    # the same file under another name: a symlink, a hard link, a relative path
    (tmp_path / "link.npy").symlink_to(features)
    os.link(features, tmp_path / "hard.npy")
    for other in (
        tmp_path / "link.npy",
        tmp_path / "hard.npy",
        tmp_path / "sub" / ".." / "feats.npy",
    ):
        assert (
            main(
                [
                    "cluster",
                    str(features),
                    "-k",
                    "3",
                    "--method",
                    "gdl",
                    "--out",
                    str(other),
                    "--force",
                    "-q",
                ]
            )
            == 1
        )
        _one_line_error(capsys, "is the input")
        assert features.read_bytes() == before


def test_an_existing_out_is_replaced_only_with_force(features, tmp_path, capsys):
    out = tmp_path / "labels.csv"
    out.write_text("precious\n")
    args = ["cluster", str(features), "-k", "3", "--method", "gdl", "--out", str(out), "-q"]
    assert main(args) == 1
    _one_line_error(capsys, "already exists", "--force")
    assert out.read_text() == "precious\n"
    assert main(args + ["--force"]) == 0
    assert len(_read_csv(out)) == 30
    # atomic write: no temporary file is left beside the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats.npy", "labels.csv"]


def test_out_dash_is_standard_output(features, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["cluster", str(features), "-k", "3", "--method", "gdl", "--out", "-", "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("file,cluster,")
    assert not (tmp_path / "-").exists()


def test_a_reused_montage_folder(tmp_path, capsys):
    rng = np.random.RandomState(0)
    npz = tmp_path / "imgs.npz"
    np.savez(npz, X=rng.rand(40, 6, 6))
    sheets = tmp_path / "sheets"
    run = ["cluster", str(npz), "--method", "gdl", "--montage", str(sheets), "-q"]
    assert main(run + ["-k", "4"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in sheets.iterdir()) == [f"cluster_{k}.png" for k in range(4)]
    # the user adds files of their own, one named like a contact sheet
    (sheets / "notes.txt").write_text("mine")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(sheets / "cluster_7.png")
    before = _snapshot(sheets)
    assert main(run + ["-k", "2"]) == 1
    _one_line_error(capsys, "not empty", "--force")
    assert _snapshot(sheets) == before
    assert main(run + ["-k", "2", "--force"]) == 0
    names = sorted(p.name for p in sheets.iterdir())
    # skjule's old sheets 2 and 3 are gone; the user's files are kept
    assert names == ["cluster_0.png", "cluster_1.png", "cluster_7.png", "notes.txt"]
    assert (sheets / "notes.txt").read_text() == "mine"
    assert _snapshot(sheets)["cluster_7.png"] == before["cluster_7.png"]


def test_bad_output_paths_fail_before_the_fit(features, png_folder, tmp_path, capsys, no_fit):
    root, _ = png_folder
    (tmp_path / "afile").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    cases = [
        (["--out", str(tmp_path / "no" / "l.csv")], "does not exist"),
        (["--out", str(tmp_path)], "is a folder"),
        (["--out", str(tmp_path / "afile" / "l.csv")], "does not exist"),
        (["--out", str(tmp_path / "afile")], "already exists"),
        (["--out", ""], "empty"),
        (["--montage", str(tmp_path / "afile")], "not a folder"),
        (["--montage", str(tmp_path / "afile" / "m")], "not a folder"),
        (["--montage", str(tmp_path / "full")], "not empty"),
        (["--montage", str(tmp_path / "m"), "--out", str(tmp_path / "m")], "same path"),
        (
            [
                "--montage",
                str(tmp_path / "empty"),
                "--out",
                str(tmp_path / "empty" / "cluster_1.png"),
            ],
            "contact sheet",
        ),
        (
            ["--montage", str(tmp_path / "empty" / "m"), "--out", str(tmp_path / "empty")],
            "is a folder",
        ),
        (
            ["--montage", str(tmp_path / "l.csv" / "m"), "--out", str(tmp_path / "l.csv")],
            "inside --out",
        ),
    ]
    if os.path.exists("/dev/null"):
        cases.append((["--out", "/dev/null", "--force"], "not a regular file"))
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        cases.append((["--out", str(ro / "l.csv")], "cannot write"))
        cases.append((["--montage", str(ro / "m")], "cannot write"))
    before = _snapshot(tmp_path)
    for extra, needle in cases:
        code = main(["cluster", str(features), "-k", "3", "--method", "gdl", "-q", *extra])
        assert code == 1, extra
        _one_line_error(capsys, needle)
    # outputs that would land among the input images
    for extra, needle in [
        (["--montage", str(root)], "input folder"),
        (["--montage", str(root / "batch0" / "sheets")], "input folder"),
        (["--out", str(root / "labels.png")], "input folder"),
        (["--out", str(root / "batch0" / "img000.png"), "--force"], "input"),
    ]:
        assert main(["cluster", str(root), "-k", "3", "--method", "gdl", "-q", *extra]) == 1, extra
        _one_line_error(capsys, needle)
    assert _snapshot(tmp_path) == before


def _bad_npy_header(path):
    np.save(path, np.zeros((3, 2)))
    raw = path.read_bytes().replace(b"(3, 2)", b"(99999999999, 2)")
    path.write_bytes(raw)


def test_corrupt_and_unsuitable_inputs_give_one_line_errors(tmp_path, capsys):
    rng = np.random.RandomState(0)
    good = tmp_path / "good.npz"
    np.savez(good, X=rng.rand(8, 3))
    makers = {
        "empty.npy": lambda p: p.write_bytes(b""),
        "empty.npz": lambda p: p.write_bytes(b""),
        "garbage.npz": lambda p: p.write_bytes(b"PK\x03\x04 not a zip"),
        "truncated.npz": lambda p: p.write_bytes(good.read_bytes()[:-40]),
        "truncated.npy": lambda p: (np.save(p, rng.rand(8, 3)), p.write_bytes(p.read_bytes()[:-7])),
        "huge_header.npy": _bad_npy_header,
        "strings.npy": lambda p: np.save(p, np.array([["a", "b"]] * 6)),
        "strings.npz": lambda p: np.savez(p, X=np.array([["a", "b"]] * 6)),
        "objects.npy": lambda p: np.save(
            p, np.array([[1, None]] * 6, dtype=object), allow_pickle=True
        ),
        "records.npy": lambda p: np.save(p, np.zeros((6, 2), dtype=[("a", "f4")])),
        "complex.npy": lambda p: np.save(p, rng.rand(6, 2) + 1j),
        "nan.npy": lambda p: np.save(p, np.where(np.eye(6) > 0, np.nan, 1.0)),
        "inf.npy": lambda p: np.save(p, np.where(np.eye(6) > 0, np.inf, 1.0)),
        "vector.npy": lambda p: np.save(p, rng.rand(6)),
        "scalar.npy": lambda p: np.save(p, np.float64(1)),
        "no_rows.npy": lambda p: np.save(p, np.zeros((0, 3))),
        "no_features.npy": lambda p: np.save(p, np.zeros((6, 0))),
        "five_d.npy": lambda p: np.save(p, rng.rand(6, 2, 2, 2, 2)),
        "no_arrays.npz": lambda p: np.savez(p),
        "dir.npy": lambda p: p.mkdir(),
    }
    for name, make in makers.items():
        path = tmp_path / name
        make(path)
        before = _snapshot(tmp_path)
        code = main(
            [
                "cluster",
                str(path),
                "-k",
                "2",
                "--method",
                "gdl",
                "-q",
                "-o",
                str(tmp_path / "out.csv"),
            ]
        )
        assert code == 1, name
        err = capsys.readouterr().err
        assert "Traceback" not in err, (name, err)
        assert err.startswith("skjule: error:") and err.count("\n") == 1, (name, err)
        assert _snapshot(tmp_path) == before, name


def _png_header_only(width, height):
    """A PNG file that claims width x height pixels (a 'decompression bomb')."""
    import struct
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def test_bad_image_files_give_one_line_errors(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((6, 6), 40 * i, np.uint8)).save(folder / f"{i}.png")
    for name, data in [
        ("empty.png", b""),
        ("text.jpg", b"hello"),
        ("cut.png", (folder / "0.png").read_bytes()[:40]),
        ("bomb.png", _png_header_only(30000, 30000)),
    ]:
        (folder / name).write_bytes(data)
        code = main(["cluster", str(folder), "-k", "2", "--method", "gdl", "-q"])
        assert code == 1, name
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("\n") == 1, err
        assert err.startswith("skjule: error:") and name in err, err
        (folder / name).unlink()


def test_a_failed_write_leaves_the_old_outputs(features, tmp_path, capsys, monkeypatch):
    from skjule import _montage

    rng = np.random.RandomState(0)
    npz = tmp_path / "imgs.npz"
    np.savez(npz, X=rng.rand(20, 5, 5))
    out = tmp_path / "labels.csv"
    out.write_text("old\n")

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_montage, "make_montage", broken)
    before = _snapshot(tmp_path)
    assert (
        main(
            [
                "cluster",
                str(npz),
                "-k",
                "2",
                "--method",
                "gdl",
                "--out",
                str(out),
                "--montage",
                str(tmp_path / "new" / "sheets"),
                "--force",
                "-q",
            ]
        )
        == 1
    )
    _one_line_error(capsys, "No space left")
    # nothing changed: the old CSV is intact, no temporary files, no new folders
    assert _snapshot(tmp_path) == before


def test_usage_errors_are_one_line_with_status_2(capsys):
    for argv in (
        ["cluster", "x.npy", "-k", "0"],
        ["cluster", "x.npy"],
        ["cluster", "x.npy", "-k", "2", "--method", "nope"],
        ["frobnicate"],
        [],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("skjule: error:") and err.count("\n") == 1, err


def test_internal_errors_are_one_line_unless_debug(features, capsys, monkeypatch):
    from skjule._engine import _gdl

    def bug(self, *a, **k):
        raise IndexError("index 7 is out of bounds")

    monkeypatch.setattr(_gdl.GDLClustering, "fit_predict", bug)
    argv = ["cluster", str(features), "-k", "3", "--method", "gdl", "-q"]
    assert main(argv) == 3
    err = _one_line_error(capsys, "IndexError", "index 7", "--debug")
    assert "Traceback" not in err
    with pytest.raises(IndexError):
        main(argv + ["--debug"])


def test_benchmark_output_is_checked_first(tmp_path, capsys):
    (tmp_path / "usps.npz").write_bytes(b"fake")
    out = tmp_path / "t.md"
    out.write_text("old")
    for target, needle in [
        (out, "already exists"),
        (tmp_path / "usps.npz", "is the input"),
        (tmp_path / "nope" / "t.md", "does not exist"),
    ]:
        assert (
            main(
                ["benchmark", "--data-home", str(tmp_path), "--output", str(target), "--force"]
                if needle == "is the input"
                else ["benchmark", "--data-home", str(tmp_path), "--output", str(target)]
            )
            == 1
        )
        captured = capsys.readouterr()
        assert needle in captured.err and captured.out == "", captured
    assert out.read_text() == "old" and (tmp_path / "usps.npz").read_bytes() == b"fake"


def test_a_closed_standard_output_is_one_line(features, capsys, monkeypatch):
    import io

    class Closed(io.StringIO):  # as `skjule cluster ... | head -1`
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["cluster", str(features), "-k", "3", "--method", "gdl", "-q"]) == 1
    _one_line_error(capsys, "broken pipe")
