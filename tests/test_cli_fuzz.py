"""Property-based fuzzing of the ``skjule`` command line (issue 23).

Hypothesis draws an input (good, unsuitable or corrupt files; image folders,
with bad images too; missing paths), output paths (new, existing, the input
itself, a link to it, folders, missing folders, inside the input folder, a
reused contact-sheet folder), option values (valid and invalid) and their
order, and runs :func:`skjule._cli.main` in-process. Every example must

* end within the time limit, with status 0 (and the promised outputs), 1 (a
  data/input/output error) or 2 (invalid options) - never 3 (an internal
  error) and never an exception;
* on failure, print exactly one ``skjule: error:`` line, no traceback, and
  leave every file and folder exactly as it was;
* never modify the input, whatever happens;
* leave no temporary file behind;
* on success, write what was asked: the CSV (noise labels -1 with
  ``--min-cluster-size``), the contact sheets, the HTML report (one section
  per cluster) and the export folder (one entry per photo, the user's files
  in a reused export folder kept, the earlier export's entries replaced).

``FUZZ_EXAMPLES`` sets the number of examples (default 50).
"""

import contextlib
import csv
import hashlib
import io
import os
import signal
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from skjule._cli import _SHEET_TAG, CSV_HEADER, main
from skjule._report import export_clusters

N_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 50))
TIME_LIMIT = 60  # seconds: a hard limit per example (a hang fails the test)

INPUTS = [
    "features",
    "images_npy",
    "rgb_npz",
    "two_arrays_npz",
    "no_arrays_npz",
    "truncated_npz",
    "truncated_npy",
    "garbage_npy",
    "strings_npy",
    "objects_npy",
    "nan_npy",
    "vector_npy",
    "folder",
    "folder_bad_image",
    "folder_two_sizes",
    "empty_folder",
    "missing",
    "text",
]
OUTS = [
    "none",
    "dash",
    "new",
    "existing",
    "input",
    "input_link",
    "hard_link",
    "folder",
    "missing_parent",
    "empty",
    "in_input_folder_png",
    "in_input_folder_csv",
    "under_a_file",
]
MONTAGES = [
    "none",
    "new",
    "new_nested",
    "empty_folder",
    "old_sheets",
    "file",
    "in_input_folder",
    "same_as_out",
    "input",
]
REPORTS = [
    "none",
    "new",
    "existing",
    "folder",
    "same_as_out",
    "in_input_folder_png",
    "missing_parent",
]
EXPORTS = [
    "none",
    "new",
    "new_nested",
    "empty_folder",
    "old_export",
    "user_folder",
    "file",
    "in_input_folder",
    "around_input",
    "same_as_montage",
    "input",
]


class _Timeout(BaseException):
    """Not an Exception: main() cannot swallow it."""


@contextlib.contextmanager
def _time_limit(seconds):
    if not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum, frame):
        raise _Timeout(f"the example took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _snapshot(root):
    """{relative path: content hash, 'dir' or link target} of everything under root."""
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


def _png(path, array, sheet=False):
    info = None
    if sheet:  # as an earlier run of skjule wrote it
        info = PngInfo()
        info.add_text(*_SHEET_TAG)
    Image.fromarray(array).save(path, pnginfo=info)


def _is_tagged(path):
    try:
        with Image.open(path) as im:
            return im.text.get(_SHEET_TAG[0]) == _SHEET_TAG[1]
    except Exception:
        return False


def _make_input(root, kind, n, seed, cut):
    """Create the input; return (its path, number of samples if readable)."""
    rng = np.random.RandomState(seed)
    npy, npz, folder = root / "in.npy", root / "in.npz", root / "in"
    if kind == "features":
        np.save(npy, rng.rand(n, 3))
        return npy, n
    if kind == "images_npy":
        np.save(npy, rng.rand(n, 5, 4))
        return npy, n
    if kind == "rgb_npz":
        np.savez(npz, X=(rng.rand(n, 4, 4, 3) * 255).astype(np.uint8), y=np.arange(n))
        return npz, n
    if kind == "two_arrays_npz":  # readable with --key a only
        np.savez(npz, a=rng.rand(n, 3), b=rng.rand(n, 2))
        return npz, n
    if kind == "no_arrays_npz":
        np.savez(npz)
        return npz, None
    if kind == "truncated_npz":
        np.savez_compressed(npz, X=rng.rand(n, 3))
        raw = npz.read_bytes()
        npz.write_bytes(raw[: cut % len(raw)])
        return npz, None
    if kind == "truncated_npy":
        np.save(npy, rng.rand(n, 3))
        raw = npy.read_bytes()
        npy.write_bytes(raw[: cut % len(raw)])
        return npy, None
    if kind == "garbage_npy":
        np.save(npy, rng.rand(n, 3))
        raw = bytearray(npy.read_bytes())
        for i in rng.randint(0, len(raw), size=1 + cut % 8):  # flip some bytes
            raw[i] ^= 0xFF
        npy.write_bytes(bytes(raw))
        return npy, "maybe"
    if kind == "strings_npy":
        np.save(npy, rng.rand(n, 2).astype(str))
        return npy, None
    if kind == "objects_npy":
        np.save(npy, np.array([[1, None]] * n, dtype=object), allow_pickle=True)
        return npy, None
    if kind == "nan_npy":
        X = rng.rand(n, 3)
        X[cut % n, cut % 3] = np.nan
        np.save(npy, X)
        return npy, None
    if kind == "vector_npy":
        np.save(npy, rng.rand(n))
        return npy, None
    if kind == "missing":
        return root / "nothing.npy", None
    if kind == "text":
        (root / "in.txt").write_text("1,2\n3,4\n")
        return root / "in.txt", None
    folder.mkdir()
    if kind == "empty_folder":
        return folder, None
    for i in range(n):
        sub = folder / f"s{i % 2}"
        sub.mkdir(exist_ok=True)
        _png(sub / f"{i:02d}.png", (rng.rand(5, 5) * 255).astype(np.uint8))
    if kind == "folder_bad_image":
        (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(cut % 50))
        return folder, None
    if kind == "folder_two_sizes":
        _png(folder / "big.png", np.zeros((7, 6), np.uint8))
        return folder, n + 1  # readable with --resize only
    return folder, n


def _make_outputs(root, inp, out_kind, montage_kind, report_kind="none", export_kind="none"):
    """Create what the output choices need; return the values of --out, --montage,
    --report and --export (None: not given)."""
    (root / "existing.csv").write_text("the user's data\n")
    (root / "a_folder").mkdir()
    (root / "a_file").write_text("x")
    out = {
        "none": None,
        "dash": "-",
        "new": root / "labels.csv",
        "existing": root / "existing.csv",
        "input": inp,
        "input_link": root / "link",
        "hard_link": root / "hard",
        "folder": root / "a_folder",
        "missing_parent": root / "no" / "labels.csv",
        "empty": "",
        "in_input_folder_png": inp / "s0" / "labels.png" if inp.is_dir() else root / "l.png",
        "in_input_folder_csv": inp / "labels.csv" if inp.is_dir() else root / "l.csv",
        "under_a_file": root / "a_file" / "labels.csv",
    }[out_kind]
    if out_kind == "input_link" and os.path.lexists(inp):
        os.symlink(inp, root / "link")
    if out_kind == "hard_link" and inp.is_file():
        os.link(inp, root / "hard")
    montage = {
        "none": None,
        "new": root / "sheets",
        "new_nested": root / "a" / "b" / "sheets",
        "empty_folder": root / "a_folder",
        "old_sheets": root / "old",
        "file": root / "a_file",
        "in_input_folder": inp / "sheets" if inp.is_dir() else root / "sheets",
        "same_as_out": out if out not in (None, "-", "") else root / "sheets",
        "input": inp,
    }[montage_kind]
    if montage_kind == "old_sheets":
        old = root / "old"
        old.mkdir()
        for k in (0, 5):  # skjule's sheets from an earlier run
            _png(old / f"cluster_{k}.png", np.full((4, 4), 9 * k, np.uint8), sheet=True)
        _png(old / "cluster_9.png", np.zeros((3, 3), np.uint8))  # the user's own
        (old / "notes.txt").write_text("the user's notes\n")
    report = {
        "none": None,
        "new": root / "report.html",
        "existing": root / "existing.csv",
        "folder": root / "a_folder",
        "missing_parent": root / "no" / "r.html",
        "same_as_out": out if out not in (None, "-", "") else root / "report.html",
        "in_input_folder_png": inp / "r.png" if inp.is_dir() else root / "r.png",
    }[report_kind]
    export = {
        "none": None,
        "new": root / "sorted",
        "new_nested": root / "x" / "y" / "sorted",
        "empty_folder": root / "a_folder",
        "old_export": root / "old_export",
        "user_folder": root / "user",
        "file": root / "a_file",
        "in_input_folder": inp / "sorted" if inp.is_dir() else root / "sorted",
        "around_input": root,
        "input": inp,
        "same_as_montage": montage if montage is not None else root / "sorted",
    }[export_kind]
    if export_kind == "old_export":  # an earlier run's export, and the user's additions
        (root / "old_src").mkdir()
        _png(root / "old_src" / "x.png", np.zeros((3, 3), np.uint8))
        export_clusters([root / "old_src" / "x.png"], [0], root / "old_export")
        (root / "old_export" / "notes.txt").write_text("the user's notes\n")
        (root / "old_export" / "cluster_00" / "mine.txt").write_text("mine\n")
    if export_kind == "user_folder":
        (root / "user").mkdir()
        (root / "user" / "cluster_00").write_text("a file of the user's\n")
    return tuple(None if v is None else str(v) for v in (out, montage, report, export))


def _one_of(draw, good, bad, bad_one_in=12):
    """A valid value mostly, an invalid one about once in ``bad_one_in`` draws."""
    # (hypothesis favours the first element: "good")
    which = draw(st.sampled_from(["good"] * (bad_one_in - 1) + ["bad"]))
    return draw(st.sampled_from(bad if which == "bad" else good))


def _sometimes(draw, one_in):
    """True about once in ``one_in`` draws."""
    return draw(st.sampled_from([False] * (one_in - 1) + [True]))


@st.composite
def cases(draw):
    # about half of the inputs and outputs are usable, so that every stage of
    # the command (planning, loading, fitting, writing) is reached often
    kind = _one_of(draw, ["images_npy", "folder", "rgb_npz", "features"], INPUTS, bad_one_in=3)
    n = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**16))
    cut = draw(st.integers(0, 10**6))
    out = _one_of(draw, ["none", "dash", "new", "existing"], OUTS, bad_one_in=3)
    montage = _one_of(draw, ["none", "new", "new_nested", "old_sheets"], MONTAGES, bad_one_in=3)
    method = _one_of(draw, ["gdl"], ["jule", "deepgmm", "kmeans"], bad_one_in=6)
    k = _one_of(draw, ["1", "2", "3", "auto"], ["0", "-1", "x", "99", "2.5", ""])
    options = [["--method", method], ["-k", k]]
    if method in ("jule", "deepgmm"):
        # their fits take seconds: always an invalid device, refused after the
        # output checks and before the input is read
        options.append(["--device", draw(st.sampled_from(["nonsense", "cuda:99"]))])
    if draw(st.booleans()):
        options.append(["--force"])
    if _sometimes(draw, 3):
        options.append(["--resize", _one_of(draw, ["4", "6"], ["0", "big"])])
    if _sometimes(draw, 3):
        options.append(["--montage-size", _one_of(draw, ["1", "4"], ["0"])])
    if _sometimes(draw, 3):
        options.append(["--key", draw(st.sampled_from(["X", "a", "nope"]))])
    if _sometimes(draw, 4):
        options.append(["--random-state", _one_of(draw, ["3", "0"], ["-1", "99999999999"])])
    if _sometimes(draw, 4):
        options.append(["--grey"])
    if _sometimes(draw, 4):
        options.append(["--min-cluster-size", _one_of(draw, ["2", "3", "20"], ["0"])])
    if _sometimes(draw, 4):
        options.append(["--least-typical", _one_of(draw, ["0", "0.5", "1"], ["2", "x"])])
    if _sometimes(draw, 5):
        options.append(["--duplicate-bits", _one_of(draw, ["0", "12"], ["65"])])
    if _sometimes(draw, 20):
        options.append(["--no-such-option"])
    report = _one_of(draw, ["none", "none", "new", "existing"], REPORTS, bad_one_in=6)
    # (--export takes a folder of images only: other inputs mostly go without it)
    export = _one_of(
        draw,
        ["none", "none", "new", "new_nested", "old_export", "empty_folder", "user_folder"]
        if kind.startswith("folder")
        else ["none"],
        EXPORTS,
        bad_one_in=6,
    )
    if _sometimes(draw, 3 if export != "none" else 30):  # without --export: an error
        options.append(["--copy"])
    n_pieces = (
        1
        + len(options)
        + (out != "none")
        + (montage != "none")
        + (report != "none")
        + (export != "none")
    )
    order = draw(st.permutations(range(n_pieces)))
    return dict(
        kind=kind,
        n=n,
        seed=seed,
        cut=cut,
        out=out,
        montage=montage,
        report=report,
        export=export,
        options=options,
        order=order,
        force=["--force"] in options,
    )


@pytest.fixture(scope="module", autouse=True)
def warm_up(tmp_path_factory):
    """Compile (numba) and import (torch) once, outside the per-example time limit."""
    root = tmp_path_factory.mktemp("warm")
    np.save(root / "x.npy", np.random.RandomState(0).rand(12, 3))
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main(["cluster", str(root / "x.npy"), "-k", "2", "--method", "gdl", "-q"]) == 0
        assert (
            main(
                [
                    "cluster",
                    str(root / "x.npy"),
                    "-k",
                    "2",
                    "--method",
                    "jule",
                    "--device",
                    "nonsense",
                    "-q",
                ]
            )
            == 1
        )


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _temporaries(root):
    return [
        os.path.join(d, f)
        for d, _, files in os.walk(root)
        for f in files
        if f.endswith(".skjule-tmp") or f.startswith(".skjule-probe")
    ]


def _case(kind, out, montage, *options, n=9, report="none", export="none"):
    options = [["--method", "gdl"], ["-k", "3"], *options]
    n_pieces = (
        1
        + len(options)
        + (out != "none")
        + (montage != "none")
        + (report != "none")
        + (export != "none")
    )
    return dict(
        kind=kind,
        n=n,
        seed=0,
        cut=0,
        out=out,
        montage=montage,
        options=options,
        report=report,
        export=export,
        order=list(range(n_pieces)),
        force=["--force"] in options,
    )


@settings(
    max_examples=N_EXAMPLES,
    deadline=timedelta(seconds=15),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
# every run: a success of each kind, and the refusals of the issue
@example(case=_case("features", "none", "none"))
@example(case=_case("folder", "new", "new_nested", ["--resize", "4"]))
@example(case=_case("rgb_npz", "existing", "old_sheets", ["--force"]))
@example(case=_case("images_npy", "dash", "empty_folder", ["-k", "auto"]))
@example(case=_case("features", "input", "none", ["--force"]))
@example(case=_case("images_npy", "existing", "old_sheets"))
@example(case=_case("truncated_npz", "new", "none"))
@example(case=_case("strings_npy", "new", "none"))
@example(case=_case("folder_bad_image", "new", "new"))
@example(
    case=_case(
        "folder",
        "new",
        "none",
        ["--min-cluster-size", "3"],
        ["--force"],
        report="new",
        export="old_export",
    )
)
@example(case=_case("folder", "none", "new", ["--copy"], report="existing", export="user_folder"))
@example(case=_case("folder", "none", "none", ["--force"], export="around_input"))
@example(case=_case("images_npy", "none", "none", report="new", export="new"))
def test_cli_never_destroys_data_and_fails_in_one_line(case):
    with tempfile.TemporaryDirectory() as tmp, _time_limit(TIME_LIMIT):
        root = Path(tmp)
        inp, n_samples = _make_input(root, case["kind"], case["n"], case["seed"], case["cut"])
        out, montage, report, export = _make_outputs(
            root, inp, case["out"], case["montage"], case["report"], case["export"]
        )
        pieces = [[str(inp)]] + case["options"]
        if out is not None:
            pieces.append(["--out", out])
        if montage is not None:
            pieces.append(["--montage", montage])
        if report is not None:
            pieces.append(["--report", report])
        if export is not None:
            pieces.append(["--export", export])
        assert len(pieces) == len(case["order"])
        # the path and the options in any order
        argv = ["cluster"] + [a for i in case["order"] for a in pieces[i]] + ["-q"]
        before = _snapshot(root)
        input_before = {
            k: v
            for k, v in before.items()
            if k == os.path.relpath(inp, root) or k.startswith("in" + os.sep)
        }

        code, stdout, stderr = _run(argv)

        after = _snapshot(root)
        assert code in (0, 1, 2), (code, argv, stderr)
        assert "Traceback" not in stderr, (argv, stderr)
        # the input is never modified, whatever happened
        assert {k: after.get(k) for k in input_before} == input_before, argv
        assert not _temporaries(root), (argv, _temporaries(root))
        lines = stderr.splitlines()
        errors = [line for line in lines if line.startswith("skjule: error:")]
        assert all(line.startswith(("skjule: error:", "skjule: warning:")) for line in lines), (
            argv,
            stderr,
        )
        if code != 0:
            event(f"exit {code}")
            assert len(errors) == 1, (argv, stderr)
            assert stdout == "", argv
            assert after == before, (argv, stderr)  # a failure changes nothing
            return
        event("exit 0")
        assert not errors, (argv, stderr)
        # what must have been refused
        assert case["out"] not in (
            "input",
            "input_link",
            "folder",
            "empty",
            "missing_parent",
            "under_a_file",
        ), argv
        assert case["out"] != "hard_link" or not inp.is_file(), argv
        assert case["out"] != "existing" or case["force"], argv
        assert case["montage"] not in ("file", "input"), argv
        assert case["montage"] != "old_sheets" or case["force"], argv
        assert not (inp.is_dir() and case["out"] == "in_input_folder_png"), argv
        assert not (inp.is_dir() and case["montage"] == "in_input_folder"), argv
        assert case["report"] not in ("folder", "missing_parent"), argv
        assert case["report"] != "existing" or case["force"], argv
        assert not (inp.is_dir() and case["report"] == "in_input_folder_png"), argv
        assert case["export"] not in ("file", "in_input_folder", "around_input", "input"), argv
        assert case["export"] in ("none", "empty_folder", "new", "new_nested") or case["force"], (
            argv
        )
        assert case["export"] == "none" or inp.is_dir(), argv
        assert ["--copy"] not in case["options"] or case["export"] != "none", argv
        assert len({out, montage, report, export} - {None, "-"}) == len(
            [v for v in (out, montage, report, export) if v not in (None, "-")]
        ), argv
        assert case["kind"] != "two_arrays_npz" or ["--key", "a"] in case["options"], argv
        assert case["kind"] != "folder_two_sizes" or any(
            o[0] == "--resize" for o in case["options"]
        ), argv
        assert n_samples is not None, (argv, case["kind"])
        # the promised outputs
        if out in (None, "-"):
            text = stdout
        else:
            assert stdout == ""
            text = Path(out).read_text()
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == CSV_HEADER
        if n_samples != "maybe":
            assert len(rows) == 1 + n_samples, argv
        labels = [int(r[1]) for r in rows[1:]]
        clusters = sorted(set(labels) - {-1})
        assert clusters == list(range(len(clusters))), labels
        min_size = next((int(o[1]) for o in case["options"] if o[0] == "--min-cluster-size"), 1)
        assert all(labels.count(k) >= min_size for k in clusters), (argv, labels)
        if montage is not None:
            folder = Path(montage)
            sheets = sorted(p.name for p in folder.iterdir() if _is_tagged(p))
            width = len(str(max(len(clusters) - 1, 0)))
            assert sheets == sorted(
                [f"cluster_{k:0{width}d}.png" for k in clusters]
                + (["noise.png"] if -1 in labels else [])
            )
            if case["montage"] == "old_sheets":  # the user's files are kept
                assert (folder / "notes.txt").read_text() == "the user's notes\n"
                assert (folder / "cluster_9.png").exists()
        if report is not None:
            page = Path(report).read_text(encoding="utf-8")
            assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
            for k in clusters:
                assert f'data-cluster="{k}"' in page, argv
            assert ('data-cluster="-1"' in page) == (-1 in labels)
        if export is not None:
            _check_export(Path(export), rows, inp, case["export"], ["--copy"] in case["options"])
        # nothing else changed
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        allowed = set()
        for target in (out, montage, report, export):
            if target not in (None, "-"):
                rel = os.path.relpath(target, root)
                allowed |= {k for k in changed if k == rel or k.startswith(rel + os.sep)}
                allowed |= {k for k in changed if rel.startswith(k + os.sep)}  # new parents
        assert changed <= allowed, (argv, changed - allowed)


def _check_export(folder, rows, inp, kind, copy):
    """Every photo is in the export exactly once, as a link to it (or a copy); the
    user's files are kept and the earlier export's entries are gone."""
    with open(folder / "index.csv", newline="") as f:
        index = list(csv.reader(f))
    assert index[0][:5] == CSV_HEADER and index[0][5] == "exported_as"
    assert [r[:5] for r in index[1:]] == rows[1:]
    exported = set()
    for r in index[1:]:
        p = folder / r[5]
        top = "noise" if r[1] == "-1" else f"cluster_{int(r[1]):02d}"
        # (a name taken by a file of the user's gets a number)
        assert r[5].split("/")[0] in (top, f"{top} (2)"), r
        assert ("/_least_typical/" in r[5]) == (r[3] == "1")
        assert os.path.islink(p) != copy
        assert (inp / r[0]).read_bytes() == p.read_bytes()
        exported.add(r[5])
    files = {
        os.path.relpath(os.path.join(d, f), folder).replace(os.sep, "/")
        for d, _, fs in os.walk(folder)
        for f in fs
    }
    mine = {"old_export": {"notes.txt", "cluster_00/mine.txt"}, "user_folder": {"cluster_00"}}.get(
        kind, set()
    )
    assert files == exported | {"index.csv", ".skjule-export.json"} | mine, files
    if kind == "old_export":
        assert (folder / "notes.txt").read_text() == "the user's notes\n"


@st.composite
def benchmark_cases(draw):
    data = draw(st.sampled_from(["damaged", "missing_file", "missing_folder"]))
    output = draw(
        st.sampled_from(
            ["none", "new", "existing", "data_file", "folder", "missing_parent", "empty"]
        )
    )
    return dict(
        data=data,
        output=output,
        force=draw(st.booleans()),
        datasets=draw(st.sampled_from([["usps"], ["usps", "coil20"], ["nope"]])),
    )


@settings(
    max_examples=max(N_EXAMPLES // 2, 1),
    deadline=timedelta(seconds=15),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=benchmark_cases())
def test_benchmark_output_never_destroys_data(case):
    with tempfile.TemporaryDirectory() as tmp, _time_limit(TIME_LIMIT):
        root = Path(tmp)
        home = root / "data"
        if case["data"] != "missing_folder":
            home.mkdir()
        if case["data"] == "damaged":
            (home / "usps.npz").write_bytes(b"not the real file")
        (root / "existing.md").write_text("the user's table\n")
        (root / "a_folder").mkdir()
        output = {
            "none": None,
            "new": root / "t.md",
            "existing": root / "existing.md",
            "data_file": home / "usps.npz",
            "folder": root / "a_folder",
            "missing_parent": root / "no" / "t.md",
            "empty": "",
        }[case["output"]]
        argv = [
            "benchmark",
            "--data-home",
            str(home),
            "--datasets",
            *case["datasets"],
            "--methods",
            "kmeans",
        ]
        if output is not None:
            argv += ["--output", str(output)]
        if case["force"]:
            argv.append("--force")
        before = _snapshot(root)
        code, stdout, stderr = _run(argv)
        # no benchmark data is valid here: every case fails, and changes nothing
        assert code in (1, 2), (code, argv, stderr)
        event(f"exit {code}")
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("skjule: error:"), (argv, stderr)
        assert _snapshot(root) == before, argv
        assert not _temporaries(root)
