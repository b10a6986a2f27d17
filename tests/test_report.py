"""Results a person can browse (issue 26): the HTML report (rendered in headless
Chromium), the export folder, noise labels, least typical photos, near-duplicates,
and ``--features`` with a TorchScript model."""

import base64
import csv
import hashlib
import io
import math
import os
import shutil
import subprocess
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skjule._cli import CSV_HEADER, main
from skjule._outliers import (
    find_near_duplicates,
    least_typical,
    small_clusters_as_noise,
)
from skjule._report import MANIFEST, export_clusters, write_report

# ----------------------------------------------------------------- the photos

#: The three kinds of scene, by dominant colour (the green one is the only
#: green thing on the report page: the screenshot test looks for it).
_COLOURS = {"sunset": (230, 90, 30), "forest": (40, 170, 50), "sea": (30, 70, 200)}


def _scene(kind, h, w, rng):
    """A synthetic photo: a coloured background with shapes placed at random."""
    base = np.array(_COLOURS[kind], dtype=np.float64)
    img = np.empty((h, w, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    img[:] = base * (0.75 + 0.25 * yy[..., None] / h)  # a soft gradient
    for _ in range(3):
        cy, cx, r = rng.randint(0, h), rng.randint(0, w), rng.randint(4, max(5, h // 3))
        shade = rng.uniform(0.3, 1.6)
        if kind == "sunset":
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        elif kind == "forest":
            mask = np.abs(xx - cx) < r // 3
        else:
            mask = np.abs(yy - cy - 3 * np.sin(xx / 5.0)) < r // 4 + 1
        img[mask] = np.clip(base * shade, 0, 255)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(a, path, exif_orientation=None, quality=92):
    im = Image.fromarray(a)
    if exif_orientation is None:
        im.save(path, quality=quality) if path.suffix == ".jpg" else im.save(path)
        return
    exif = Image.Exif()
    exif[0x0112] = exif_orientation
    im.save(path, quality=quality, exif=exif.tobytes())


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A photo folder: 3 kinds of scene in two sub-folders, odd sizes, JPEG and PNG,
    an exact copy (same name, other folder), an edited copy, a copy stored turned
    with an EXIF orientation tag, and a burst of three frames."""
    root = tmp_path_factory.mktemp("photos")
    (root / "day1").mkdir()
    (root / "day2").mkdir()
    rng = np.random.RandomState(7)
    kinds = {}
    for kind in _COLOURS:
        for j in range(8):
            h, w = rng.randint(37, 72), rng.randint(45, 98)
            ext = ".jpg" if j % 2 == 0 else ".png"
            name = f"day{1 + j % 2}/{kind}_{j}{ext}"
            _save(_scene(kind, h, w, rng), root / name)
            kinds[name] = kind
    # an exact copy, under the same name in the other folder
    shutil.copyfile(root / "day1/sunset_0.jpg", root / "day2/sunset_0.jpg")
    kinds["day2/sunset_0.jpg"] = "sunset"
    # an edited copy: brighter, smaller, re-encoded
    with Image.open(root / "day1/forest_2.jpg") as im:
        a = np.asarray(im.convert("RGB")).astype(int)
    edited = np.clip(a + 10, 0, 255).astype(np.uint8)
    Image.fromarray(edited).resize((a.shape[1] * 9 // 10, a.shape[0] * 9 // 10)).save(
        root / "day2/forest_2_edited.jpg", quality=70
    )
    kinds["day2/forest_2_edited.jpg"] = "forest"
    # the same picture stored turned, with the EXIF tag that turns it upright
    with Image.open(root / "day1/sea_4.jpg") as im:
        turned = np.asarray(im.convert("RGB").transpose(Image.Transpose.ROTATE_90))
    _save(turned, root / "day2/sea_4_turned.jpg", exif_orientation=6)
    kinds["day2/sea_4_turned.jpg"] = "sea"
    # a burst: one scene, shifted by a pixel or two between frames
    scene = _scene("sea", 60, 80, np.random.RandomState(99))
    for f, shift in enumerate((0, 1, 2)):
        frame = np.roll(scene, shift, axis=1)
        frame = np.clip(frame.astype(int) + rng.randint(-2, 3, frame.shape), 0, 255)
        _save(frame.astype(np.uint8), root / f"day1/burst_{f}.jpg")
        kinds[f"day1/burst_{f}.jpg"] = "sea"
    duplicates = [
        {"day1/sunset_0.jpg", "day2/sunset_0.jpg"},
        {"day1/forest_2.jpg", "day2/forest_2_edited.jpg"},
        {"day1/sea_4.jpg", "day2/sea_4_turned.jpg"},
        {f"day1/burst_{f}.jpg" for f in range(3)},
    ]
    return root, kinds, duplicates


def _read_csv(path_or_text):
    text = Path(path_or_text).read_text() if isinstance(path_or_text, Path) else path_or_text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_HEADER
    return [dict(zip(CSV_HEADER, r)) for r in rows[1:]]


def _snapshot(root):
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


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith("skjule: error:") and "\n" not in err, err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture(scope="module")
def clustered(photos, tmp_path_factory):
    """One run with every output: CSV, report, export (links), contact sheets."""
    root, _kinds, _ = photos
    out = tmp_path_factory.mktemp("out")
    code = main(
        [
            "cluster",
            str(root),
            "-k",
            "3",
            "--method",
            "gdl",
            "--resize",
            "32",
            "--least-typical",
            "0.2",
            "--out",
            str(out / "labels.csv"),
            "--report",
            str(out / "report.html"),
            "--export",
            str(out / "sorted"),
            "--montage",
            str(out / "sheets"),
            "-q",
        ]
    )
    assert code == 0
    return out, _read_csv(out / "labels.csv")


# ------------------------------------------------------------ the CSV columns


def test_clusters_follow_the_scenes(photos, clustered):
    from sklearn.metrics import adjusted_rand_score

    _, kinds, _ = photos
    _, rows = clustered
    assert len(rows) == len(kinds)
    assert (
        adjusted_rand_score([kinds[r["file"]] for r in rows], [int(r["cluster"]) for r in rows])
        > 0.9
    )


def test_near_duplicates_are_grouped_and_distinct_photos_are_not(photos, clustered):
    _, _, duplicates = photos
    _, rows = clustered
    group = {r["file"]: int(r["duplicate_group"]) for r in rows}
    found = {}
    for name, g in group.items():
        if g >= 0:
            found.setdefault(g, set()).add(name)
    # exact copy, edited copy, EXIF-turned copy and the burst; nothing else
    assert sorted(map(sorted, found.values())) == sorted(map(sorted, duplicates))


def test_least_typical_are_the_farthest_of_each_cluster(clustered):
    _, rows = clustered
    by_cluster = {}
    for r in rows:
        by_cluster.setdefault(int(r["cluster"]), []).append(
            (float(r["distance_to_centroid"]), r["least_typical"] == "1")
        )
    for members in by_cluster.values():
        members.sort()
        n_marked = min(math.ceil(0.2 * len(members)), len(members) - 2)
        assert [m for _, m in members] == [False] * (len(members) - n_marked) + [True] * n_marked


def test_least_typical_and_noise_from_python():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 0.1, (20, 3)), rng.normal(5, 0.1, (20, 3))])
    X[3] += 2.0  # far from its cluster's centre
    labels = np.repeat([0, 1], 20)
    mask, dist = least_typical(X, labels, fraction=0.05, return_distances=True)
    assert mask.sum() == 2 and mask[3] and np.argmax(dist[:20]) == 3
    assert not least_typical(X[:2], [0, 0], fraction=1.0).any()  # two members: none
    noisy = small_clusters_as_noise([5, 5, 5, 2, 9, 9, -1, 7, 7, 7], 3)
    assert noisy.tolist() == [0, 0, 0, -1, -1, -1, -1, 1, 1, 1]
    mask = least_typical(X, np.r_[np.full(20, -1), np.zeros(20, int)], fraction=0.5)
    assert not mask[:20].any()  # noise is never marked


def test_min_cluster_size_makes_noise(photos, tmp_path):
    root, _, _ = photos
    base = ["cluster", str(root), "-k", "8", "--method", "gdl", "--resize", "32", "-q"]
    assert main(base + ["--out", str(tmp_path / "a.csv")]) == 0
    plain = [int(r["cluster"]) for r in _read_csv(tmp_path / "a.csv")]
    sizes = np.bincount(plain)
    n = int(np.sort(sizes)[len(sizes) // 2]) + 1  # some clusters are smaller than this
    assert (
        main(
            base
            + [
                "--out",
                str(tmp_path / "b.csv"),
                "--min-cluster-size",
                str(n),
                "--report",
                str(tmp_path / "r.html"),
                "--montage",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    noisy = [int(r["cluster"]) for r in _read_csv(tmp_path / "b.csv")]
    small = {k for k in range(len(sizes)) if sizes[k] < n}
    assert small and (np.array(noisy) == -1).sum() == sum(sizes[k] for k in small)
    for a, b in zip(plain, noisy):
        assert (b == -1) == (a in small)
    assert np.bincount([b for b in noisy if b >= 0]).min() >= n
    page = (tmp_path / "r.html").read_text()
    assert 'id="noise"' in page and "fit no cluster" in page
    assert (tmp_path / "m" / "noise.png").exists()


def test_near_duplicates_of_feature_vectors_and_flat_images():
    rng = np.random.RandomState(1)
    F = rng.rand(200, 16)
    F[50] = F[10] * 3.0  # same direction: cosine distance 0
    F[60] = F[10] + 1e-6
    groups = find_near_duplicates(F)
    assert groups[10] == groups[50] == groups[60] >= 0
    assert (groups >= 0).sum() == 3
    # flat pictures share the all-zero hash; brightness keeps black and white apart
    flat = np.stack([np.full((16, 16), v, np.uint8) for v in (0, 3, 250, 255)])
    g = find_near_duplicates(flat)
    assert g[0] == g[1] and g[2] == g[3] and g[0] != g[2]


def test_near_duplicates_scale_without_a_square_matrix():
    """Memory grows far slower than n ** 2 (candidates come from a blocked kNN
    query); random pictures are not near-duplicates of each other."""
    import tracemalloc

    rng = np.random.RandomState(2)
    peaks = []
    for n in (3000, 12000):
        images = rng.randint(0, 256, (n, 12, 12), dtype=np.uint8)
        images[-1] = images[0]
        tracemalloc.start()
        groups = find_near_duplicates(images)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert groups[0] == groups[-1] >= 0 and (groups >= 0).sum() == 2
    assert peaks[1] < 4 * peaks[0]  # an n x n matrix: 16 times


# --------------------------------------------------------------------- export


def test_export_links_with_the_original_names(photos, clustered):
    root, _kinds, _ = photos
    out, rows = clustered
    sorted_ = out / "sorted"
    with open(sorted_ / "index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    assert [r["file"] for r in index] == [r["file"] for r in rows]
    seen = set()
    for r in index:
        p = sorted_ / r["exported_as"]
        assert p.is_symlink() and os.readlink(p) == str(root / r["file"])
        assert p.read_bytes() == (root / r["file"]).read_bytes()
        top, *rest = r["exported_as"].split("/")
        assert top == f"cluster_{int(r['cluster']):02d}"
        assert (rest[0] == "_least_typical") == (r["least_typical"] == "1")
        stem, ext = os.path.splitext(os.path.basename(r["file"]))
        assert rest[-1] in (stem + ext, f"{stem} (2){ext}")
        seen.add(r["exported_as"])
    assert len(seen) == len(rows)
    # the two sunset_0.jpg (exact copies) share a cluster: one is renamed
    names = {os.path.basename(r["exported_as"]) for r in index if "sunset_0" in r["file"]}
    assert names == {"sunset_0.jpg", "sunset_0 (2).jpg"}
    assert (sorted_ / MANIFEST).is_file()
    # the summary in the CSV matches the folders
    for k in {r["cluster"] for r in rows}:
        n = sum(1 for r in rows if r["cluster"] == k)
        folder = sorted_ / f"cluster_{int(k):02d}"
        files = [p for p in folder.rglob("*") if p.is_symlink()]
        assert len(files) == n


def test_export_copies_and_a_rerun_keeps_the_users_files(photos, tmp_path, capsys):
    root, kinds, _ = photos
    target = tmp_path / "sorted"
    run = ["cluster", str(root), "--method", "gdl", "--resize", "32", "-q", "--export", str(target)]
    assert main(run + ["-k", "3", "--copy"]) == 0
    copies = [p for p in target.rglob("*.*") if p.suffix in (".jpg", ".png")]
    assert len(copies) == len(kinds) and not any(p.is_symlink() for p in copies)
    # the user adds files of their own, one in a cluster folder
    (target / "notes.txt").write_text("mine")
    (target / "cluster_00" / "keep.jpg").write_bytes(b"my photo")
    edited = next(p for p in (target / "cluster_01").iterdir() if p.is_file())
    edited.write_bytes(b"the user changed this copy")
    before = _snapshot(target)
    assert main(run + ["-k", "2"]) == 1
    _one_line_error(capsys, "not empty", "--force")
    assert _snapshot(target) == before
    assert main(run + ["-k", "2", "--force"]) == 0
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "cluster_00" / "keep.jpg").read_bytes() == b"my photo"
    assert edited.read_bytes() == b"the user changed this copy"  # changed: not skjule's
    assert not (target / "cluster_02").exists()  # skjule's old folder, now empty: gone
    with open(target / "index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    exported = {r["exported_as"] for r in index}
    links = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_symlink()}
    assert links == exported and len(exported) == len(kinds)
    assert not list(tmp_path.rglob("*.skjule-tmp"))


def test_a_failed_export_changes_nothing(photos, tmp_path, capsys, monkeypatch):
    from skjule import _report

    root, _, _ = photos
    (tmp_path / "labels.csv").write_text("old\n")
    before = _snapshot(tmp_path)

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_report.shutil, "copy2", broken)
    assert (
        main(
            [
                "cluster",
                str(root),
                "-k",
                "3",
                "--method",
                "gdl",
                "--resize",
                "32",
                "-q",
                "--out",
                str(tmp_path / "labels.csv"),
                "--force",
                "--copy",
                "--export",
                str(tmp_path / "new" / "sorted"),
                "--report",
                str(tmp_path / "r.html"),
            ]
        )
        == 1
    )
    _one_line_error(capsys, "No space left")
    assert _snapshot(tmp_path) == before


def test_unsafe_export_and_report_paths_are_refused_before_the_fit(
    photos, tmp_path, capsys, monkeypatch
):
    from skjule._engine import _gdl

    def boom(self, *a, **k):
        raise AssertionError("the estimator was fitted")

    monkeypatch.setattr(_gdl.GDLClustering, "fit_predict", boom)
    root, _, _ = photos
    work = tmp_path / "work"
    work.mkdir()
    (work / "afile").write_text("x")
    (work / "full").mkdir()
    (work / "full" / "x.txt").write_text("x")
    (work / "old.html").write_text("old")
    (work / "s").mkdir()  # an empty folder: a valid --export
    np.save(work / "f.npy", np.random.RandomState(0).rand(10, 3))
    cases = [
        (["--export", str(root)], "input folder"),
        (["--export", str(root / "day1" / "sorted")], "input folder"),
        (["--export", str(root.parent), "--force"], "contains the input folder"),
        (["--export", str(work / "afile")], "not a folder"),
        (["--export", str(work / "afile" / "x")], "not a folder"),
        (["--export", str(work / "full")], "not empty"),
        (["--export", ""], "empty path"),
        (["--report", str(work / "old.html")], "already exists"),
        (["--report", str(work)], "is a folder"),
        (["--report", str(work / "no" / "r.html")], "does not exist"),
        (["--report", str(root / "day1" / "r.png")], "input folder"),
        (["--report", str(root / "day1" / "sunset_0.jpg"), "--force"], "input"),
        (["--report", str(work / "r.html"), "--out", str(work / "r.html")], "same path"),
        (["--export", str(work / "s"), "--out", str(work / "s" / "l.csv")], "inside --export"),
        (["--export", str(work / "s"), "--report", str(work / "s" / "r.html")], "inside --export"),
        (["--export", str(work / "s"), "--montage", str(work / "s")], "same path"),
        (["--export", str(work / "m" / "s"), "--montage", str(work / "m")], "inside --montage"),
        (["--features", str(work / "nope.pt"), "--resize", "8"], "no such file"),
        (
            ["--features", str(work / "afile"), "--out", str(work / "afile"), "--force"],
            "is the input",
        ),
    ]
    before, photos_before = _snapshot(work), _snapshot(root)
    for extra, needle in cases:
        code = main(["cluster", str(root), "-k", "3", "--method", "gdl", "-q", *extra])
        assert code == 1, extra
        _one_line_error(capsys, needle)
    # an array input has no files to export
    assert (
        main(
            [
                "cluster",
                str(work / "f.npy"),
                "-k",
                "2",
                "--method",
                "gdl",
                "-q",
                "--export",
                str(work / "s"),
            ]
        )
        == 1
    )
    _one_line_error(capsys, "--export needs a folder")
    assert _snapshot(work) == before and _snapshot(root) == photos_before
    with pytest.raises(SystemExit) as exc:
        main(["cluster", str(root), "-k", "3", "--copy"])
    assert exc.value.code == 2
    _one_line_error(capsys, "--copy needs --export")


def test_report_needs_images(tmp_path, capsys):
    np.save(tmp_path / "f.npy", np.random.RandomState(0).rand(10, 3))
    assert (
        main(
            [
                "cluster",
                str(tmp_path / "f.npy"),
                "-k",
                "2",
                "--method",
                "gdl",
                "-q",
                "--report",
                str(tmp_path / "r.html"),
            ]
        )
        == 1
    )
    _one_line_error(capsys, "--report needs images")
    assert not (tmp_path / "r.html").exists()


# ------------------------------------------------------------- Python API


def test_python_api(photos, tmp_path):
    root, _kinds, _ = photos
    paths = sorted(root.rglob("*.jpg"))[:6]
    labels = np.array([0, 0, 1, 1, 1, -1])
    lt = np.array([False, False, False, False, True, False])
    exported = export_clusters(paths, labels, tmp_path / "out", least_typical=lt)
    assert [p.parent.name for p in exported] == ["cluster_00"] * 2 + ["cluster_01"] * 2 + [
        "_least_typical",
        "noise",
    ]
    assert all(os.path.samefile(a, b) for a, b in zip(paths, exported))
    with pytest.raises(FileExistsError):
        export_clusters(paths, labels, tmp_path / "out")
    export_clusters(paths, labels[::-1].copy(), tmp_path / "out", copy=True, overwrite=True)
    assert not any(p.is_symlink() for p in (tmp_path / "out").rglob("*"))
    with pytest.raises(ValueError, match="folder of the photo"):
        export_clusters(paths, labels, paths[0].parent / "sorted")
    # the report: from files (EXIF applied) or from an array
    page = write_report(
        tmp_path / "r.html",
        paths,
        labels,
        least_typical=lt,
        duplicate_groups=np.array([0, -1, -1, -1, -1, 0]),
    )
    text = page.read_text()
    assert text.count("<img ") == 6 + 1 + 2  # grids, least typical, the duplicate group
    with pytest.raises(FileExistsError):
        write_report(tmp_path / "r.html", paths, labels)
    arr = np.random.RandomState(0).rand(5, 9, 7, 4)  # RGBA floats
    write_report(tmp_path / "r.html", arr, [0, 0, 1, 1, 2], overwrite=True)
    assert (tmp_path / "r.html").read_text().count("<img ") == 5
    assert not list(tmp_path.glob(".*skjule-tmp"))


def test_exif_turned_photo_is_upright_in_the_report(photos, tmp_path):
    root, _, _ = photos
    write_report(
        tmp_path / "r.html", [root / "day1/sea_4.jpg", root / "day2/sea_4_turned.jpg"], [0, 0]
    )
    imgs = _ReportDOM.parse((tmp_path / "r.html").read_text()).imgs
    sizes = {(int(a["width"]), int(a["height"])) for a in imgs}
    assert len(sizes) == 1  # both landscape, as the photo is seen upright


# ----------------------------------------------------------- --features MODEL.pt


def _tiny_model(path):
    torch = pytest.importorskip("torch")
    from torch import nn

    class ColourStats(nn.Module):
        """Mean and spread of each channel: a feature vector that knows colours."""

        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], 1) * self.scale

    with warnings.catch_warnings():  # recent torch deprecates TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(ColourStats()).save(str(path))


def test_features_from_a_torchscript_model(photos, tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("skjule._deep._features")
    from sklearn.metrics import adjusted_rand_score

    root, kinds, _ = photos
    model = tmp_path / "net.pt"
    _tiny_model(model)
    out = tmp_path / "l.csv"
    assert (
        main(
            [
                "cluster",
                str(root),
                "-k",
                "3",
                "--features",
                str(model),
                "--resize",
                "24",
                "--out",
                str(out),
                "--report",
                str(tmp_path / "r.html"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "(gdl)" in err  # --features clusters with gdl by default
    rows = _read_csv(out)
    assert (
        adjusted_rand_score([kinds[r["file"]] for r in rows], [int(r["cluster"]) for r in rows])
        > 0.9
    )
    assert (tmp_path / "r.html").read_text().count('class="cluster"') == 3
    # ImageNet's normalisation in front of the network
    assert (
        main(
            [
                "cluster",
                str(root),
                "-k",
                "3",
                "--features",
                str(model),
                "--resize",
                "24",
                "--feature-norm",
                "imagenet",
                "--out",
                str(out),
                "--force",
                "-q",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    rows = _read_csv(out)
    assert (
        adjusted_rand_score([kinds[r["file"]] for r in rows], [int(r["cluster"]) for r in rows])
        > 0.9
    )
    # odd sizes without --resize: the network cannot take them as they are
    assert main(["cluster", str(root), "-k", "3", "--features", str(model), "-q"]) == 1
    _one_line_error(capsys, "--resize PX")
    # missing, damaged, not a file
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    for path, needle in [
        (tmp_path / "nope.pt", "no such file"),
        (tmp_path / "bad.pt", "not a TorchScript model"),
        (tmp_path, "not a regular file"),
    ]:
        assert main(["cluster", str(root), "-k", "3", "--features", str(path), "-q"]) == 1
        _one_line_error(capsys, "--features", needle)
    # feature vectors cannot be embedded
    np.save(tmp_path / "f.npy", np.random.RandomState(0).rand(10, 3))
    assert (
        main(["cluster", str(tmp_path / "f.npy"), "-k", "2", "--features", str(model), "-q"]) == 1
    )
    _one_line_error(capsys, "--features needs images")


# ---------------------------------------------------------- headless Chromium


class _ReportDOM(HTMLParser):
    """The sections and images of a report page (as written, or as Chromium dumps it)."""

    def __init__(self):
        super().__init__()
        self.sections, self.imgs, self.scripts, self.links = [], [], 0, []

    @classmethod
    def parse(cls, text):
        p = cls()
        p.feed(text)
        return p

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a)
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "script":
            self.scripts += 1
        elif tag in ("link", "iframe", "object", "embed", "video", "audio", "source"):
            self.links.append((tag, a))


_CHROMIUM = {}


def _chromium():
    """The Chromium executable; installed once with apt-get where possible (as root,
    with a time limit), else the test is skipped with the reason."""
    if "exe" in _CHROMIUM:
        if _CHROMIUM["exe"] is None:
            pytest.skip(_CHROMIUM["why"])
        return _CHROMIUM["exe"]
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    exe = next((shutil.which(n) for n in names if shutil.which(n)), None)
    why = "chromium is not installed"
    if exe is None and os.environ.get("SKJULE_NO_APT"):
        why += " (SKJULE_NO_APT is set: not installing it)"
    elif exe is None:
        if not shutil.which("apt-get"):
            why += " and apt-get is not available to install it"
        elif not hasattr(os, "geteuid") or os.geteuid() != 0:
            why += " and installing it needs root (apt-get install chromium)"
        else:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            try:
                subprocess.run(
                    ["apt-get", "update", "-qq"],
                    env=env,
                    timeout=300,
                    capture_output=True,
                    check=False,
                )
                proc = subprocess.run(
                    ["apt-get", "install", "-y", "-qq", "chromium"],
                    env=env,
                    timeout=600,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                exe = shutil.which("chromium")
                if exe is None:
                    why += (
                        " and 'apt-get install chromium' failed: "
                        + (proc.stderr.strip().splitlines() or ["no message"])[-1]
                    )
            except (OSError, subprocess.TimeoutExpired) as exc:
                why += f" and 'apt-get install chromium' failed: {exc}"
    _CHROMIUM.update(exe=exe, why=why)
    if exe is None:
        pytest.skip(why)
    return exe


def _run_chromium(exe, profile, *args):
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        *args,
    ]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish in 120 s: {' '.join(cmd)}")


def test_report_is_self_contained(clustered):
    out, _rows = clustered
    text = (out / "report.html").read_text()
    dom = _ReportDOM.parse(text)
    assert dom.scripts == 0 and dom.links == []
    assert "http://" not in text and "https://" not in text and "url(" not in text
    assert all(a["src"].startswith("data:image/jpeg;base64,") for a in dom.imgs)
    # small thumbnails: 128 px at most, a few kB each
    assert all(int(a["width"]) <= 128 and int(a["height"]) <= 128 for a in dom.imgs)
    assert len(text) < 12_000 * len(dom.imgs)


def test_report_renders_in_headless_chromium(clustered, tmp_path):
    exe = _chromium()
    out, rows = clustered
    page = out / "report.html"
    proc = _run_chromium(exe, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _ReportDOM.parse(proc.stdout)
    # every cluster has its section, with its size, as the browser parsed the page
    clusters = sorted({int(r["cluster"]) for r in rows})
    got = {int(s["data-cluster"]): int(s["data-size"]) for s in dom.sections if "data-cluster" in s}
    assert got == {k: sum(int(r["cluster"]) == k for r in rows) for k in clusters}
    ids = {s.get("id") for s in dom.sections}
    assert {"least-typical", "duplicates"} <= ids
    # every image the browser holds is a JPEG data URI that decodes to its size
    n_lt = sum(r["least_typical"] == "1" for r in rows)
    n_dup = sum(int(r["duplicate_group"]) >= 0 for r in rows)
    assert len(dom.imgs) == len(rows) + n_lt + n_dup
    for a in dom.imgs:
        assert a["src"].startswith("data:image/jpeg;base64,")
        raw = base64.b64decode(a["src"].split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            assert im.format == "JPEG"
            scale = int(a["width"]) // im.size[0]
            assert (im.size[0] * scale, im.size[1] * scale) == (int(a["width"]), int(a["height"]))

    # the thumbnails are drawn: the screenshot shows the green forest photos (the
    # only green on the page) and is far from a uniform colour
    shot = tmp_path / "shot.png"
    proc = _run_chromium(
        exe, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()
    )
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    with Image.open(shot) as im:
        px = np.asarray(im.convert("RGB")).astype(int)
    assert px.shape[:2] == (2000, 1200)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    green = (g > 120) & (g > r + 60) & (g > b + 60)
    assert green.sum() > 2000, green.sum()
    assert px.reshape(-1, 3).std(axis=0).min() > 20
    assert len(np.unique(px.reshape(-1, 3) // 8, axis=0)) > 200
