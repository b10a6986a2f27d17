"""What ``load_image_folder`` does with each kind of file (issue 23, items 3 and 6).

One test per class of defect (each failed on the loader before the fix:
16-bit and float images flattened, EXIF orientation ignored, symlinked folders
skipped, FIFOs hanging the loader, PIL's own errors escaping), then a
hypothesis fuzz test writing random files - valid images in odd modes and bit
depths, truncated or corrupted ones, random bytes, wrong extensions, special
files - and checking that every load ends, within a time limit, in a
well-formed result or one ``ValueError``.
"""

import io
import os
import socket
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from skjule import datasets

#: Seconds one load may take before the test calls it a hang.
LIMIT = 20.0


def load(path, **kwargs):
    """``datasets.load_image_folder`` in a daemon thread, failing the test after LIMIT s."""
    result = {}

    def run():
        try:
            result["value"] = datasets.load_image_folder(path, **kwargs)
        except BaseException as exc:  # handed to the test thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(LIMIT)
    if thread.is_alive():
        _unblock_fifos(path)
        thread.join(5)
        pytest.fail(f"load_image_folder({path}) did not end within {LIMIT} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


def _unblock_fifos(path):
    """Open every FIFO under path for writing and close it, so a reader stuck in open() ends."""
    for dirpath, _, filenames in os.walk(path):
        for f in filenames:
            p = os.path.join(dirpath, f)
            try:
                fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            os.close(fd)


def save(path, arr_or_image, fmt=None, **kwargs):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = arr_or_image if isinstance(arr_or_image, Image.Image) else Image.fromarray(arr_or_image)
    im.save(path, fmt, **kwargs)
    return path


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
needs_symlink = pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges")


# ------------------------------------------------------------- dynamic range


def test_16bit_png_keeps_its_levels_and_scale(tmp_path):
    ramp = np.linspace(0, 65535, 8 * 64).round().astype(np.uint16).reshape(8, 64)
    save(tmp_path / "ramp.png", ramp)
    assert Image.open(tmp_path / "ramp.png").mode.startswith("I")
    data = load(tmp_path)
    assert data.images.dtype == np.float32
    np.testing.assert_allclose(data.images[0], ramp / 65535, rtol=0, atol=1e-7)
    assert len(np.unique(data.images)) == 8 * 64  # was 2 levels: {0, 255}
    assert data.images.min() == 0 and data.images.max() == 1


def test_mixed_8_and_16_bit_give_one_float_scale(tmp_path):
    grey8 = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    grey16 = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 1365).astype(np.uint16)
    save(tmp_path / "a8.png", grey8)
    save(tmp_path / "b16.png", grey16)
    data = load(tmp_path)
    assert data.images.dtype == np.float32
    np.testing.assert_allclose(data.images[0], grey8 / 255, atol=1e-7)
    np.testing.assert_allclose(data.images[1], grey16 / 65535, atol=1e-7)
    # colour output: a 16-bit grey image becomes three equal float channels
    rgb = load(tmp_path, color="rgb")
    assert rgb.images.shape == (2, 6, 8, 3)
    np.testing.assert_allclose(
        rgb.images[1], np.repeat((grey16 / 65535)[..., None], 3, -1), atol=1e-7
    )
    # 8-bit only stays uint8, values as read
    (tmp_path / "b16.png").unlink()
    only8 = load(tmp_path)
    assert only8.images.dtype == np.uint8
    np.testing.assert_array_equal(only8.images[0], grey8)


def test_16bit_resize_keeps_the_range(tmp_path):
    ramp = np.linspace(0, 65535, 16 * 32).round().astype(np.uint16).reshape(16, 32)
    save(tmp_path / "ramp.png", ramp)
    data = load(tmp_path, resize=(8, 12))
    img = data.images[0]
    assert img.dtype == np.float32 and img.shape == (8, 12)
    assert 0 <= img.min() and img.max() <= 1  # Lanczos overshoot clipped to the source range
    assert len(np.unique(img)) > 50  # a gradient, not 2 levels
    assert np.all(np.diff(img, axis=1) > 0)  # still increasing along the rows


def test_float_tiff_is_returned_unscaled(tmp_path):
    values = np.linspace(-2.5, 3.5, 24, dtype=np.float32).reshape(4, 6)
    save(tmp_path / "f.tif", values)
    data = load(tmp_path)
    assert data.images.dtype == np.float32
    np.testing.assert_array_equal(data.images[0], values)  # was all zeros / clipped


def test_float_tiff_with_nan_is_an_error(tmp_path):
    values = np.ones((4, 6), np.float32)
    values[1, 2] = np.nan
    save(tmp_path / "nan.tif", values)
    with pytest.raises(ValueError, match=r"nan\.tif.*NaN"):
        load(tmp_path)


def test_32bit_and_pgm_integer_images_are_scaled_by_their_format(tmp_path):
    signed = np.array([[-(2**31) + 1, 0, 2**31 - 1]], dtype=np.int32)
    save(tmp_path / "a" / "i32.tif", signed)
    assert Image.open(tmp_path / "a" / "i32.tif").mode == "I"
    np.testing.assert_allclose(load(tmp_path / "a").images[0], [[-1, 0, 1]], atol=1e-7)
    # the same scale when an EXIF orientation turns it (decided before any decoding)
    save(tmp_path / "a2" / "i32.tif", signed, exif=_exif(6))
    np.testing.assert_allclose(load(tmp_path / "a2").images[0], [[-1], [0], [1]], atol=1e-7)
    pgm = np.array([[0, 1000, 65535]], dtype=np.uint16)
    save(tmp_path / "b" / "x.pgm", pgm)
    assert Image.open(tmp_path / "b" / "x.pgm").mode == "I"
    np.testing.assert_allclose(load(tmp_path / "b").images[0], pgm / 65535, atol=1e-7)
    # a PGM with maxval 4095: PIL scales it to 0..65535, so white is 1
    (tmp_path / "c").mkdir()
    twelve = np.array([[0, 4095]], dtype=">u2")
    (tmp_path / "c" / "y.pgm").write_bytes(b"P5\n2 1\n4095\n" + twelve.tobytes())
    np.testing.assert_allclose(load(tmp_path / "c").images[0], [[0, 1]], atol=1e-6)


# ----------------------------------------------------------- EXIF orientation


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _with_orientation(arr, orientation, path, fmt):
    return save(path, arr, fmt, exif=_exif(orientation))


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    arr = np.zeros((16, 32), np.uint8)
    arr[:, 16:] = 255  # stored: left half dark, right half light (16 high, 32 wide)
    _with_orientation(arr, 6, tmp_path / "photo.jpg", "JPEG")
    img = load(tmp_path).images[0]
    # orientation 6: turn 90 degrees clockwise -> 32 high, 16 wide, top dark
    assert img.shape == (32, 16)
    assert img[:14].mean() < 30 and img[18:].mean() > 225


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pil(tmp_path, orientation):
    arr = np.arange(15, dtype=np.uint8).reshape(3, 5) * 17
    _with_orientation(arr, orientation, tmp_path / "x.png", "PNG")
    _with_orientation(np.zeros((3, 5), np.uint8), orientation, tmp_path / "y.png", "PNG")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "x.png")))
    data = load(tmp_path)  # sizes from the headers agree with the decoded images
    np.testing.assert_array_equal(data.images[0], expected)
    # 16-bit images turn the same way
    save(tmp_path / "z.png", arr.astype(np.uint16) * 257, exif=_exif(orientation))
    np.testing.assert_allclose(load(tmp_path).images[2], expected / 255, atol=1e-7)


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32])
def test_exif_orientation_of_tiffs_is_applied_once(tmp_path, orientation, dtype):
    # recent PIL turns TIFFs itself while loading them: the loader must not turn
    # them again, and the size it plans from the header must be the final one
    arr = (np.arange(6).reshape(2, 3) * 7).astype(dtype)
    save(tmp_path / "t.tif", arr, exif=_exif(orientation))
    save(tmp_path / "u.tif", np.zeros((2, 3), dtype), exif=_exif(orientation))
    turn = {3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1), 8: np.rot90}[orientation]
    img = load(tmp_path).images[0]
    scale = {np.uint8: 1, np.uint16: 65535, np.int32: 2**31 - 1, np.float32: 1}[dtype]
    np.testing.assert_allclose(img, turn(arr) / scale, rtol=1e-6)


# ------------------------------------------------------------------- symlinks


@needs_symlink
def test_symlinked_subfolder_is_followed(tmp_path):
    root, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    save(root / "cats" / "c.png", np.full((4, 4), 10, np.uint8))
    save(elsewhere / "dogs" / "d.png", np.full((4, 4), 20, np.uint8))
    save(elsewhere / "e.png", np.full((4, 4), 30, np.uint8))
    os.symlink(elsewhere / "dogs", root / "dogs")
    (root / "birds").mkdir()
    os.symlink(elsewhere / "e.png", root / "birds" / "linked.png")  # a link to a file
    data = load(root)
    assert list(data.filenames) == ["birds/linked.png", "cats/c.png", "dogs/d.png"]
    assert list(data.target_names) == ["birds", "cats", "dogs"]
    np.testing.assert_array_equal(data.images[:, 0, 0], [30, 10, 20])


@needs_symlink
def test_symlink_loop_terminates_and_is_reported(tmp_path):
    save(tmp_path / "a" / "x.png", np.zeros((4, 4), np.uint8))
    os.symlink(tmp_path, tmp_path / "a" / "loop")  # back to the top
    os.symlink(tmp_path / "a", tmp_path / "again")  # a second link to a folder
    with pytest.warns(UserWarning, match=r"Not following 2 symbolic link.*loop"):
        data = load(tmp_path)
    assert list(data.filenames) == ["a/x.png"]


@needs_symlink
def test_broken_symlink_is_reported(tmp_path):
    save(tmp_path / "good.png", np.zeros((4, 4), np.uint8))
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    with pytest.raises(ValueError, match=r"dangling\.png: it is a symbolic link"):
        load(tmp_path)
    with pytest.warns(UserWarning, match="Skipped 1 of 2"):
        data = load(tmp_path, on_error="skip")
    assert list(data.skipped) == ["dangling.png"]


# -------------------------------------------------------------- special files


@needs_fifo
def test_fifo_named_png_does_not_hang(tmp_path):
    save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    os.mkfifo(tmp_path / "b.png")
    with pytest.raises(ValueError, match=r"b\.png: it is a FIFO .*not a regular file"):
        load(tmp_path)
    with pytest.warns(UserWarning, match=r"Skipped 1 of 2 .*b\.png \(it is a FIFO"):
        data = load(tmp_path, on_error="skip")
    assert list(data.filenames) == ["a.png"] and list(data.skipped) == ["b.png"]


@needs_symlink
def test_device_and_socket_named_png_are_never_opened(tmp_path):
    save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    if os.path.exists("/dev/zero"):
        os.symlink("/dev/zero", tmp_path / "zero.png")
    sock = None
    if hasattr(socket, "AF_UNIX") and len(str(tmp_path / "s.png")) < 100:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(tmp_path / "s.png"))
    try:
        with pytest.warns(UserWarning, match="Skipped"):
            data = load(tmp_path, on_error="skip")
        reasons = dict(zip(data.skipped, data.skip_reasons))
        if "zero.png" in reasons:
            assert "character device" in reasons["zero.png"]
        if sock is not None:
            assert "socket" in reasons["s.png"]
        assert len(reasons) >= 1 and list(data.filenames) == ["a.png"]
    finally:
        if sock is not None:
            sock.close()


# -------------------------------------------------- every failure: ValueError


def test_decompression_bomb_is_a_value_error(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    save(tmp_path / "a" / "warn.png", np.zeros((12, 12), np.uint8))  # 144 > 100: PIL warns
    save(tmp_path / "b" / "error.png", np.zeros((20, 20), np.uint8))  # 400 > 200: PIL raises
    for folder, name in (("a", "warn.png"), ("b", "error.png")):
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with pytest.raises(ValueError, match=rf"{name}.*decompression bomb") as info:
                load(tmp_path / folder)
        assert "MAX_IMAGE_PIXELS" in str(info.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # PIL's "no limit"
    assert load(tmp_path / "b").images.shape == (1, 20, 20)


def test_truncated_png_names_the_file(tmp_path):
    save(tmp_path / "good.png", np.zeros((32, 32), np.uint8))
    raw = io.BytesIO()
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (32, 32), dtype=np.uint8)).save(
        raw, "PNG"
    )
    (tmp_path / "cut.png").write_bytes(raw.getvalue()[: len(raw.getvalue()) // 2])
    with pytest.raises(ValueError, match=r"Cannot read the image .*cut\.png: .*truncated") as info:
        load(tmp_path)
    assert info.value.__cause__ is not None


def _png_chunk(tag, data):
    return (
        struct.pack(">I", len(data))
        + tag
        + data
        + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    )


@pytest.mark.parametrize(
    "error",
    [
        struct.error("unpack requires a buffer of 4 bytes"),
        ZeroDivisionError("division by zero"),
        IndexError("x"),
        SyntaxError("broken PNG file"),
        EOFError(),
        MemoryError(),
    ],
)
def test_whatever_pil_raises_becomes_a_value_error(tmp_path, monkeypatch, error):
    # PIL's decoders raise far more than OSError on damaged files (struct.error,
    # SyntaxError, IndexError, ...): every one is about that file
    save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))

    def broken_convert(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(Image.Image, "convert", broken_convert)
    pattern = rf"Cannot read the image .*a\.png: .*{type(error).__name__}"
    with pytest.raises(ValueError, match=pattern) as info:
        load(tmp_path)
    assert info.value.__cause__ is error


def test_keyboard_interrupt_is_not_swallowed(tmp_path, monkeypatch):
    save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "convert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load(tmp_path, on_error="skip")


def test_lab_tiff_converts_through_rgb(tmp_path):
    Image.new("LAB", (4, 3), (50, 0, 0)).save(tmp_path / "lab.tif")
    assert Image.open(tmp_path / "lab.tif").mode == "LAB"
    grey = load(tmp_path, color="grey")  # PIL has no LAB -> L conversion
    assert grey.images.shape == (1, 3, 4) and grey.images.dtype == np.uint8
    assert load(tmp_path).images.shape == (1, 3, 4, 3)


def test_wrong_extension_is_read_by_content_and_text_is_an_error(tmp_path):
    save(tmp_path / "really_a_jpeg.png", np.full((8, 8), 128, np.uint8), "JPEG")
    assert abs(int(load(tmp_path).images[0].mean()) - 128) <= 2
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.png: PIL does not recognise it"):
        load(tmp_path)


def test_unlistable_subfolder_is_reported(tmp_path, monkeypatch):
    save(tmp_path / "ok" / "a.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "locked").mkdir()
    scandir = os.scandir

    def denied(path="."):  # as chmod 000 would, also when the tests run as root
        if os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(ValueError, match=r"Cannot read the folder .*locked: cannot list"):
        load(tmp_path)
    with pytest.warns(UserWarning, match="Skipped 1 of 2"):
        data = load(tmp_path, on_error="skip")
    assert list(data.filenames) == ["ok/a.png"] and list(data.skipped) == ["locked"]


# ------------------------------------------------------------------ on_error


def test_skip_keeps_the_good_images_aligned(tmp_path):
    rng = np.random.RandomState(3)
    good = {}
    for cls in ("a", "b", "c"):
        for i in range(3):
            good[f"{cls}/{i}.png"] = rng.randint(0, 256, (5, 7)).astype(np.uint8)
            save(tmp_path / cls / f"{i}.png", good[f"{cls}/{i}.png"])
    (tmp_path / "a" / "0b_text.png").write_text("not an image")
    raw = (tmp_path / "b" / "1.png").read_bytes()
    (tmp_path / "b" / "1x_cut.png").write_bytes(raw[: len(raw) - 30])
    (tmp_path / "c" / "2.png").unlink()  # class c keeps two images
    del good["c/2.png"]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "c" / "fifo.png")
    with pytest.warns(UserWarning, match=r"Skipped \d of \d+ image files") as record:
        data = load(tmp_path, on_error="skip")
    assert len([w for w in record if "Skipped" in str(w.message)]) == 1
    assert list(data.filenames) == sorted(good)
    for img, name in zip(data.images, data.filenames):
        np.testing.assert_array_equal(img, good[name])
    np.testing.assert_array_equal(data.target, [0, 0, 0, 1, 1, 1, 2, 2])
    assert set(data.skipped) >= {"a/0b_text.png", "b/1x_cut.png"}
    assert len(data.skip_reasons) == len(data.skipped)
    assert data.data.shape == (len(good), 35)
    # default: the first bad file stops the load
    with pytest.raises(ValueError, match="Cannot read the image"):
        load(tmp_path)
    with pytest.warns(UserWarning, match="Skipped 1 of 4"):
        only_a = load(tmp_path / "a", on_error="skip", labels=None)
    assert only_a.target is None and list(only_a.skipped) == ["0b_text.png"]


def test_skip_with_nothing_readable_and_bad_on_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    (tmp_path / "y.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="No readable image .* 2 image files"):
        load(tmp_path, on_error="skip")
    with pytest.raises(ValueError, match="on_error"):
        load(tmp_path, on_error="ignore")


def test_skip_in_the_decoding_pass_keeps_alignment(tmp_path):
    # the header is fine, the pixels are not: found only while decoding
    rng = np.random.RandomState(4)
    for i in range(4):
        arr = rng.randint(0, 256, (16, 16)).astype(np.uint8)
        arr[0, 0] = 40 * i
        save(tmp_path / f"{i}.png", arr)
    raw = (tmp_path / "2.png").read_bytes()
    (tmp_path / "2.png").write_bytes(raw[:100])
    with Image.open(tmp_path / "2.png") as im:
        assert im.size == (16, 16)  # the header is intact
    with pytest.warns(UserWarning, match=r"Skipped 1 of 4 .*2\.png"):
        data = load(tmp_path, on_error="skip")
    assert list(data.filenames) == ["0.png", "1.png", "3.png"]
    np.testing.assert_array_equal(data.images[:, 0, 0], [0, 40, 120])
    assert data.data.shape == (3, 256)


# -------------------------------------------------------------------- fuzzing

MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F")
FORMATS = {
    ".png": "PNG",
    ".tif": "TIFF",
    ".jpg": "JPEG",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".webp": "WEBP",
    ".pgm": "PPM",
    ".ppm": "PPM",
}
MAGIC = (
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
    b"P5\n4 4\n255\n",
    b"P6\n2 2\n65535\n",
    b"RIFF\x00\x00\x00\x00WEBP",
)


def _image(mode, h, w, rng, values):
    if mode == "1":
        return Image.fromarray(rng.rand(h, w) > 0.5)
    if mode == "F":
        a = {
            "unit": rng.rand(h, w),
            "wide": rng.randn(h, w) * 1e6,
            "nan": np.where(rng.rand(h, w) > 0.5, np.nan, 1.0),
            "inf": np.full((h, w), np.inf),
        }[values]
        return Image.fromarray(a.astype(np.float32))
    if mode == "I;16":
        return Image.fromarray(rng.randint(0, 65536, (h, w)).astype(np.uint16))
    if mode == "I":
        return Image.fromarray(rng.randint(-(2**31), 2**31 - 1, (h, w)).astype(np.int32))
    channels = {"L": 1, "LA": 2, "P": 3, "RGB": 3, "RGBA": 4}[mode]
    a = rng.randint(0, 256, (h, w, channels)).astype(np.uint8)
    im = Image.fromarray(a[..., 0] if channels == 1 else a)
    return im.convert("P") if mode == "P" else im


@st.composite
def fuzz_file(draw):
    kind = draw(st.sampled_from(["image"] * 6 + ["bytes", "special"]))
    ext = draw(st.sampled_from(sorted(FORMATS) + [".PNG", ".jpeg", ".tiff"]))
    if kind == "bytes":
        return ("bytes", ext, draw(st.sampled_from(MAGIC)) + draw(st.binary(max_size=200)))
    if kind == "special":
        return (
            "special",
            ext,
            draw(st.sampled_from(["fifo", "empty", "dangling", "dev", "dir", "bomb"])),
        )
    spec = dict(
        mode=draw(st.sampled_from(MODES)),
        h=draw(st.sampled_from([1, 4, 4, 9])),
        w=draw(st.sampled_from([1, 5, 5, 8])),
        seed=draw(st.integers(0, 2**16)),
        values=draw(st.sampled_from(["unit", "unit", "wide", "nan", "inf"])),
        fmt=draw(st.sampled_from(sorted(set(FORMATS.values())))),
        damage=draw(st.sampled_from(["none"] * 3 + ["truncate", "flip"])),
        where=draw(st.floats(0, 1)),
        orientation=draw(st.integers(1, 8)),
    )
    return ("image", ext, spec)


def _write(folder, i, kind, ext, spec):
    path = folder / (f"sub{i % 2}" if i % 3 else "") / f"f{i}{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "bytes":
        path.write_bytes(spec)
        return path
    if kind == "special":
        if spec == "fifo" and hasattr(os, "mkfifo"):
            os.mkfifo(path)
        elif spec == "dangling":
            os.symlink(folder / "nowhere", path)
        elif spec == "dev" and os.path.exists("/dev/zero"):
            os.symlink("/dev/zero", path)
        elif spec == "dir":
            path.mkdir()
            return None  # a folder named x.png is walked, not read
        elif spec == "bomb":  # a PNG header claiming 100000 x 100000 pixels
            ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
            path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + _png_chunk(b"IEND", b""))
        else:
            path.write_bytes(b"")
        return path
    rng = np.random.RandomState(spec["seed"])
    im = _image(spec["mode"], spec["h"], spec["w"], rng, spec["values"])
    raw = io.BytesIO()
    kwargs = (
        {"exif": _exif(spec["orientation"])}
        if spec["fmt"] in ("PNG", "JPEG", "TIFF", "WEBP")
        else {}
    )
    try:
        im.save(raw, spec["fmt"], **kwargs)
    except (OSError, ValueError, KeyError, TypeError):
        raw = io.BytesIO()
        im.save(raw, "TIFF")  # TIFF stores every mode
    data = bytearray(raw.getvalue())
    cut = int(spec["where"] * (len(data) - 1))
    if spec["damage"] == "truncate":
        data = data[:cut]
    elif spec["damage"] == "flip":
        data[cut] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@needs_symlink
@settings(
    max_examples=100, deadline=10000, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    files=st.lists(fuzz_file(), min_size=1, max_size=4),
    resize=st.sampled_from([None, None, 3, (2, 5)]),
    color=st.sampled_from(["auto", "grey", "rgb"]),
    on_error=st.sampled_from(["raise", "skip"]),
)
def test_fuzz_every_file_ends_in_a_result_or_a_value_error(files, resize, color, on_error):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        written = [p for i, f in enumerate(files) if (p := _write(folder, i, *f)) is not None]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL's and the loader's warnings
                data = load(folder, resize=resize, color=color, on_error=on_error, labels=None)
        except ValueError as exc:
            msg = str(exc)
            assert msg
            if msg.startswith("Cannot read the image"):
                msg = "Cannot read: " + msg.split(": ", 1)[1][:30]
            event(f"ValueError: {msg.replace(tmp, '<tmp>')[:45]}")
            return
        event(f"success, dtype {data.images.dtype}, {len(data.skipped)} skipped")
        images = data.images
        assert images.dtype in (np.uint8, np.float32)
        assert len(images) == len(data.filenames) >= 1
        assert len(data.filenames) + len(data.skipped) == len(written)
        if on_error == "raise":
            assert len(data.skipped) == 0
        assert images.ndim == (4 if color == "rgb" or (color == "auto" and images.ndim == 4) else 3)
        if images.ndim == 4:
            assert images.shape[-1] == 3
        if resize is not None:
            expected = (resize, resize) if isinstance(resize, int) else resize
            assert images.shape[1:3] == expected
        assert np.isfinite(images).all()
        assert data.data.shape == (len(images), int(np.prod(images.shape[1:])))


@st.composite
def valid_image(draw):
    return dict(
        mode=draw(st.sampled_from(MODES)),
        h=draw(st.integers(1, 9)),
        w=draw(st.integers(1, 9)),
        seed=draw(st.integers(0, 2**16)),
        values=draw(st.sampled_from(["unit", "wide"])),
        fmt=draw(st.sampled_from(sorted(set(FORMATS.values())))),
        damage="none",
        where=0.0,
        orientation=draw(st.integers(1, 8)),
    )


@settings(
    max_examples=60, deadline=10000, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    spec=valid_image(),
    ext=st.sampled_from(sorted(FORMATS)),
    color=st.sampled_from(["auto", "grey", "rgb"]),
)
def test_fuzz_every_valid_image_loads_as_pil_decodes_it(spec, ext, color):
    """A sound image in any mode, format and orientation loads, with PIL's upright pixels."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), 0, "image", ext, spec)
        with open(path, "rb") as fp, Image.open(fp) as im:
            mode, fmt = im.mode, im.format
            ref = ImageOps.exif_transpose(im)
            wide = mode == "F" or mode == "I" or mode.startswith("I;16")
            rgb_ref = np.asarray(ref.convert("RGB")) if not wide else None
            colour = not wide and (
                bool(np.ptp(rgb_ref, axis=-1).any())
                if mode in ("P", "PA")
                else mode not in ("1", "L", "LA")
            )
            rgb = color == "rgb" or (color == "auto" and colour)
            if wide:
                expected = np.asarray(ref).astype(np.float64)
            else:
                expected = np.asarray(ref.convert("RGB" if rgb else "L"))
        event(f"{mode} -> {'float32' if wide else 'uint8'}")
        data = load(tmp, color=color)
        img = data.images[0]
        assert data.images.dtype == (np.float32 if wide else np.uint8)
        assert img.shape[:2] == expected.shape[:2]
        assert img.ndim == (3 if rgb else 2)
        if wide:
            if mode != "F":
                assert 0 <= img.min() or mode == "I"
                assert img.max() <= 1
                # PIL writes 'I' to TIFF as signed 32-bit, to PGM as 16-bit
                expected = expected / (2**31 - 1 if (mode, fmt) == ("I", "TIFF") else 65535)
            if rgb:
                expected = np.repeat(expected[..., None], 3, -1)
            np.testing.assert_allclose(img, expected, rtol=1e-6, atol=1e-9)
        else:
            np.testing.assert_array_equal(img, expected)
