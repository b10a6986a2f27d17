"""Streaming image folders of any size (issue 26, item 2): list_image_files, ImageStream.

The stream reads each file with the folder loader's own helpers, so its pixels
must equal ``load_image_folder``'s (EXIF orientation, grey among RGB, 16-bit);
it must keep the order of the files, decode no more than ``prefetch`` batches
ahead of the consumer (counted, not timed) and map unreadable files to the
loader's ``ValueError`` or skip them with ``on_error='skip'``.
"""

import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from PIL import Image, ImageOps

from skjule import datasets
from skjule.datasets import ImageStream, _stream, list_image_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def smooth(rng, h, w, c=3):
    """A smooth random image (uint8), so JPEG and resizing behave like on photos."""
    small = rng.integers(0, 256, (4, 4, c), dtype=np.uint8)
    im = Image.fromarray(small if c == 3 else small[..., 0]).resize(
        (w, h), Image.Resampling.BICUBIC
    )
    return np.asarray(im)


@pytest.fixture
def folder(tmp_path):
    """Photos of odd sizes: an EXIF-rotated JPEG, a grey PNG among RGB, a duplicate,
    a sub-folder, a 16-bit grey PNG."""
    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    Image.fromarray(smooth(rng, 20, 30)).save(tmp_path / "a.png")
    Image.fromarray(smooth(rng, 24, 18)).save(tmp_path / "b.jpg", quality=95, exif=_exif(6))
    Image.fromarray(smooth(rng, 17, 33, 1)).save(tmp_path / "c_grey.png")
    (tmp_path / "d_copy.png").write_bytes((tmp_path / "a.png").read_bytes())
    Image.fromarray(smooth(rng, 40, 25)).save(tmp_path / "sub" / "e.png")
    deep = smooth(rng, 16, 16, 1).astype(np.uint16) * 257
    Image.fromarray(deep).save(tmp_path / "sub" / "f16.png")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def drain(stream):
    batches = list(stream)
    return (
        np.concatenate([b.images for b in batches]),
        np.concatenate([b.indices for b in batches]),
    )


# ------------------------------------------------------------------ listing


def test_list_image_files_is_the_loaders_order(folder):
    files = list_image_files(folder)
    data = datasets.load_image_folder(folder, resize=8, labels=None)
    assert [os.path.relpath(f, folder) for f in files] == list(data.filenames)
    assert all(isinstance(f, str) for f in files)


def test_list_image_files_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        list_image_files(tmp_path / "missing")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="No image files"):
        list_image_files(tmp_path)
    with pytest.raises(ValueError, match="on_error"):
        list_image_files(tmp_path, on_error="ignore")


# ------------------------------------------------------------------ pixels


def test_pixels_equal_the_loaders(folder):
    """Stretch + Lanczos is what load_image_folder(resize=) does: same pixels."""
    files = list_image_files(folder)
    for color in ("rgb", "grey"):
        ref = datasets.load_image_folder(folder, resize=(12, 14), color=color, labels=None).images
        ref = ref.astype(np.float32) / (255 if ref.dtype == np.uint8 else 1)
        got, idx = drain(
            ImageStream(
                files,
                size=(12, 14),
                resize="stretch",
                interpolation="lanczos",
                color=color,
                batch_size=4,
            )
        )
        np.testing.assert_array_equal(idx, np.arange(len(files)))
        assert got.dtype == np.float32 and got.shape == ref.shape
        # the 16-bit image: float resize in both, identical up to float32 rounding
        np.testing.assert_allclose(got, ref, atol=1e-6)


def test_exif_rotated_jpeg_is_upright(folder):
    expected = np.asarray(ImageOps.exif_transpose(Image.open(folder / "b.jpg")))
    assert expected.shape == (18, 24, 3)  # stored 24 high, 18 wide; orientation 6 turns it
    got, _ = drain(ImageStream([folder / "b.jpg"]))
    np.testing.assert_array_equal(got[0], expected / np.float32(255))


def test_grey_image_is_replicated_for_rgb(folder):
    got, _ = drain(ImageStream([str(folder / "c_grey.png")], color="rgb"))
    grey = np.asarray(Image.open(folder / "c_grey.png")) / np.float32(255)
    for c in range(3):
        np.testing.assert_array_equal(got[0, ..., c], grey)


def test_array_source_equals_file_source(folder):
    rng = np.random.default_rng(1)
    arrays = np.stack([smooth(rng, 21, 29) for _ in range(5)])
    files = []
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(folder / f"z{i}.png")
        files.append(str(folder / f"z{i}.png"))
    for resize in ("crop", "pad", "stretch"):
        kw = dict(size=(16, 16), resize=resize, batch_size=2, channels_first=True)
        a, _ = drain(ImageStream(arrays, **kw))
        f, _ = drain(ImageStream(files, **kw))
        assert a.shape == (5, 3, 16, 16)
        np.testing.assert_array_equal(a, f)
    # float arrays are resized in float, grey arrays gain a channel axis
    g, _ = drain(
        ImageStream(arrays[..., 0] / np.float32(255), size=10, color="grey", channels_first=True)
    )
    assert g.shape == (5, 1, 10, 10) and g.dtype == np.float32


def test_crop_and_pad_keep_the_aspect_ratio():
    img = np.zeros((1, 10, 40), np.uint8)
    img[0, :, 15:25] = 255  # a white band in the middle, 10 wide
    crop, _ = drain(ImageStream(img, size=10, resize="crop", color="grey", interpolation="nearest"))
    # scaled by 1 (shorter side 10 already), centre 10x10 cut out: all white
    np.testing.assert_array_equal(crop[0], np.ones((10, 10), np.float32))
    pad, _ = drain(
        ImageStream(
            img, size=20, resize="pad", pad_value=0.5, color="grey", interpolation="nearest"
        )
    )
    # scaled by 0.5 to 5x20, pasted in rows 7..11, the rest padding
    assert pad.shape == (1, 20, 20)
    assert (pad[0, :7] == 0.5).all() and (pad[0, 12:] == 0.5).all()
    np.testing.assert_array_equal(pad[0, 7:12, 8:12], 1.0)
    np.testing.assert_array_equal(pad[0, 7:12, :7], 0.0)
    stretch, _ = drain(
        ImageStream(img, size=20, resize="stretch", color="grey", interpolation="nearest")
    )
    assert stretch[0, :, 8:12].min() == 1.0 and stretch[0, :, :7].max() == 0.0
    half, _ = drain(
        ImageStream(
            img, size=5, resize="crop", crop_fraction=0.5, color="grey", interpolation="nearest"
        )
    )
    assert half.shape == (1, 5, 5)  # scaled to 10x40 (5 / 0.5), centre 5x5


# ------------------------------------------------------------------ order, prefetch


def test_order_and_bounded_prefetch(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    files = []
    for i in range(23):
        p = tmp_path / f"{i:02d}.png"
        a = np.full((6, 6), i * 10, np.uint8)  # the value says which file it is
        Image.fromarray(a).save(p)
        files.append(str(p))
    rng.shuffle(files)  # any order the caller chooses is kept
    decoded = []
    lock = threading.Lock()
    real = _stream.read_image_file

    def counting(path, rgb):
        with lock:
            decoded.append(path)
        return real(path, rgb)

    monkeypatch.setattr(_stream, "read_image_file", counting)
    bs, prefetch = 3, 2
    stream = ImageStream(files, batch_size=bs, prefetch=prefetch, n_workers=2, color="grey")
    assert len(stream) == 8
    consumed, values = 0, []
    for batch in stream:
        consumed += len(batch.indices)
        # give the workers time to run ahead as far as they are allowed
        for _ in range(50):
            if len(decoded) >= min(len(files), consumed + prefetch * bs):
                break
            threading.Event().wait(0.01)
        assert len(decoded) - consumed <= prefetch * bs
        assert stream.n_buffered <= prefetch
        values.extend(np.round(batch.images[:, 0, 0] * 255 / 10).astype(int))
    assert stream.max_buffered <= prefetch
    expected = [int(os.path.basename(f)[:2]) for f in files]
    assert values == expected
    assert len(decoded) == len(files)

    # stopping early decodes at most prefetch batches more, and ends the workers
    decoded.clear()
    it = iter(ImageStream(files, batch_size=bs, prefetch=1, n_workers=2, color="grey"))
    next(it)
    it.close()
    assert len(decoded) <= 2 * bs
    assert not [t for t in threading.enumerate() if t.name.startswith("skjule-decode")]


def test_no_workers_gives_the_same_batches(folder):
    files = list_image_files(folder)
    a, ia = drain(ImageStream(files, size=9, n_workers=0, batch_size=2))
    b, ib = drain(ImageStream(files, size=9, n_workers=3, batch_size=2, prefetch=0))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ia, ib)


# ------------------------------------------------------------------ errors


def test_unreadable_files_raise_or_are_skipped(folder):
    (folder / "broken.png").write_bytes(b"garbage" * 10)
    files = list_image_files(folder)
    bad = files.index(str(folder / "broken.png"))
    with pytest.raises(
        ValueError,
        match=r"Cannot read the image .*broken\.png: PIL does "
        "not recognise it",
    ):
        list(ImageStream(files, size=8))
    stream = ImageStream(files, size=8, on_error="skip", batch_size=2)
    with pytest.warns(UserWarning, match=r"Skipped 1 of 7 .*broken\.png"):
        images, idx = drain(stream)
    assert len(images) == len(files) - 1
    assert bad not in idx and list(idx) == [i for i in range(len(files)) if i != bad]
    assert stream.skipped == [(bad, files[bad], stream.skipped[0][2])]
    missing = ImageStream([str(folder / "gone.png")], on_error="raise")
    with pytest.raises(ValueError, match="Cannot read the image .*gone.png: cannot access"):
        list(missing)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_fifo_is_an_error_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    result = {}

    def run():
        try:
            list(ImageStream([str(tmp_path / "pipe.png")]))
        except ValueError as exc:
            result["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "the stream hangs on a FIFO"
    assert "FIFO" in str(result["error"])


def test_sizes_must_agree_without_size(folder):
    with pytest.raises(ValueError, match=r"pass size=\(height, width\)"):
        list(ImageStream(list_image_files(folder)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(size=0), "size must be"),
        (dict(size=(3, 4, 5)), "size must be"),
        (dict(resize="zoom"), "resize must be"),
        (dict(crop_fraction=0), "crop_fraction"),
        (dict(crop_fraction=1.5), "crop_fraction"),
        (dict(pad_value=float("nan")), "pad_value"),
        (dict(interpolation="area"), "interpolation"),
        (dict(color="auto"), "color"),
        (dict(batch_size=0), "batch_size"),
        (dict(prefetch=-1), "prefetch"),
        (dict(n_workers=-2), "n_workers"),
        (dict(on_error="warn"), "on_error"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImageStream(np.zeros((2, 4, 4), np.uint8), **kwargs)


@pytest.mark.parametrize(
    "source, match",
    [
        (np.zeros((2, 4, 4, 2)), "1 or 3 channels"),
        (np.zeros((4, 4)), "shape"),
        (np.array(["a", 1], dtype=object), "only paths"),
        ([], "empty"),
        (42, "Expected a folder"),
    ],
)
def test_bad_sources(source, match):
    with pytest.raises(ValueError, match=match):
        ImageStream(source)


def test_nan_in_an_array_is_an_error():
    a = np.zeros((2, 4, 4), np.float32)
    a[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="Image 1 of the array holds NaN"):
        list(ImageStream(a))


def test_datasets_does_not_import_torch():
    code = (
        "import sys, skjule.datasets as d; assert callable(d.ImageStream); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_folder_source_and_no_warning_when_all_read(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, idx = drain(ImageStream(str(folder), size=8))
    assert images.shape == (6, 8, 8, 3) and list(idx) == list(range(6))
