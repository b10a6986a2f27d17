"""Load a folder of image files (PNG, JPEG, ...) into an array.

How each kind of file is treated (the rules are also in the docstring of
:func:`load_image_folder` and in ``docs/reliability.rst``):

* Only regular files are opened. Every path is checked with ``os.stat`` before
  it is opened and the open file is checked again with ``os.fstat`` (opened
  with ``O_NONBLOCK``, so a FIFO swapped in between cannot block either): a
  FIFO, socket or device named ``*.png`` is an unreadable file, never a hang.
* Symbolic links are followed, to files and to folders; every real folder is
  walked once, so a link loop ends and a second link to a folder already read
  is skipped, both with a warning.
* Anything that goes wrong while one file is opened, identified or decoded is
  a property of that file: it becomes ``ValueError("Cannot read the image
  <path>: <what>")`` (``on_error="raise"``) or a skipped file listed in the
  result and summarised in one warning (``on_error="skip"``).
* The pixel range is kept: 8-bit images give uint8 as they always did; any
  image with more levels (16-bit, 32-bit integer, float) makes the whole
  array float32, integer images divided by the largest value of their sample
  format. High-bit-depth pixels are converted and resized in numpy/float,
  never through PIL's 8-bit conversions (``convert("L")`` clips 'I;16' data).
"""

import contextlib
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._progress import progress_bar

__all__ = ["load_image_folder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".pgm",
    ".ppm",
    ".pbm",
)

#: How many skipped files the summary warning names.
_N_NAMED = 5

#: EXIF orientation -> PIL transpose method name (as ``ImageOps.exif_transpose``).
_ORIENTATION = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}
_EXIF_ORIENTATION_TAG = 0x0112

_RAW_INT = re.compile(r"^I;(\d+)([A-Z]*)$")


class _Unreadable(Exception):
    """One file cannot be read; the message says why (no path: the caller adds it)."""


# ------------------------------------------------------------------ walking


def _image_files(root, extensions, failures):
    """Image files under ``root`` in walk order, following symbolic links.

    Every real folder is entered once (tracked by ``os.path.realpath``), so a
    link loop terminates and a second link to the same folder is not read
    twice; the links left out are returned so the caller can say so. Folders
    that cannot be listed are appended to ``failures``.
    """

    def onerror(exc):
        failures.append(
            (Path(exc.filename or root), "folder", f"cannot list the folder: {exc.strerror or exc}")
        )

    files, pruned = [], []
    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in seen:
                pruned.append(Path(dirpath) / d)
                continue
            seen.add(real)
            keep.append(d)
        dirnames[:] = keep
        files.extend(
            Path(dirpath) / f
            for f in sorted(filenames)
            if f.lower().endswith(extensions) and not f.startswith(".")
        )
    return files, pruned


# ------------------------------------------------------------------ opening


def _kind(mode):
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"


def _open_regular(path):
    """Open ``path`` for binary reading if, and only if, it is a regular file.

    The path is checked with ``os.stat`` (which follows links) before it is
    opened, so nothing else is ever opened; the open descriptor is checked
    again with ``fstat`` against a swap in between, and the open uses
    ``O_NONBLOCK`` so even such a swapped-in FIFO cannot block it.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):
            raise _Unreadable(
                f"it is a symbolic link to {os.readlink(path)!r}, "
                f"which cannot be followed ({exc.strerror or exc})"
            ) from exc
        raise _Unreadable(f"cannot access it ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise _Unreadable(f"it is {_kind(st.st_mode)}, not a regular file")
    flags = (
        os.O_RDONLY
        | getattr(os, "O_NONBLOCK", 0)
        | getattr(os, "O_NOCTTY", 0)
        | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _Unreadable(f"cannot open it ({exc.strerror or exc})") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Unreadable(f"it is {_kind(st.st_mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def _open_image(path):
    """``PIL.Image.open`` on a regular file, with the decompression-bomb limit as an error.

    PIL warns (``DecompressionBombWarning``) above ``Image.MAX_IMAGE_PIXELS``
    pixels and raises above twice that, when a file is opened and, for some
    formats (GIF frames, BLP), while it is decoded: here the warning is an
    error too, for as long as the file is open, so no bomb is ever decoded.
    """
    from PIL import Image

    with _open_regular(path) as fp, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(fp) as im:
            limit = Image.MAX_IMAGE_PIXELS
            if limit and im.size[0] * im.size[1] > limit:  # in case PIL did not check
                raise _Unreadable(_bomb_message(im.size, limit))
            yield im


def _bomb_message(size, limit):
    return (
        f"{size[0]}x{size[1]} = {size[0] * size[1]} pixels is more than "
        f"PIL.Image.MAX_IMAGE_PIXELS ({limit}), a possible decompression bomb; "
        "raise PIL.Image.MAX_IMAGE_PIXELS (None: no limit) if you trust the file"
    )


def _describe(exc):
    """What went wrong with one file, for the message."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, _Unreadable):
        return str(exc)
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return (
            f"a possible decompression bomb: {str(exc).rstrip('.')}; raise "
            "PIL.Image.MAX_IMAGE_PIXELS (None: no limit) if you trust the file"
        )
    if isinstance(exc, UnidentifiedImageError):
        return "PIL does not recognise it as an image (not an image, or a damaged one)"
    if isinstance(exc, OSError) and "truncated" in str(exc).lower():
        return f"the file is truncated ({exc})"
    text = str(exc) or "no message"
    return f"{type(exc).__name__}: {text}"


# ------------------------------------------------------------------ pixels


def _orientation(im):
    """The EXIF orientation (1..8); 1 when absent or unreadable (it is only metadata)."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block does not spoil the pixels
        return 1
    return value if value in _ORIENTATION else 1


def _is_colour(im):
    """Whether an opened image has colour channels (a palette is decoded)."""
    from PIL import ImageMode

    if im.mode in ("P", "PA"):
        rgb = np.asarray(im.convert("RGB"))
        return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())
    return ImageMode.getmode(im.mode).basemode != "L"


def _int_bits(im):
    """(bits, signed) of the samples of an 'I' image, from the decoder's raw mode.

    16-bit PNG/PGM/PPM and TIFF samples are unpacked into 'I' with raw modes
    such as 'I;16B' or 'I;32S'; a bare 'I' is 32-bit signed. PIL's PGM/PPM
    decoder already scales other maximum values to 0..65535, so unknown raw
    modes count as 16-bit.
    """
    for tile in getattr(im, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        raw = (
            args
            if isinstance(args, str)
            else (
                args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else None
            )
        )
        if raw == "I":
            return 32, True
        m = _RAW_INT.match(raw or "")
        if m:
            return int(m.group(1)), "S" in m.group(2)
    return 16, False


def _depth(im):
    """How the samples of an opened image map to the output.

    Returns ``None`` for 8-bit images (every mode but 'I;16*', 'I' and 'F':
    1 bit, grey, palette, RGB(A), CMYK, ...), ``("int", scale)`` for wider
    integer samples (divided by ``scale``, the largest value of their format)
    and ``("float", None)`` for float samples. Call it before the pixels are
    loaded: the raw mode of an 'I' image is read from its (pending) tiles.
    """
    mode = im.mode
    if mode == "F":
        return ("float", None)
    if mode == "I":
        bits, signed = _int_bits(im)
    elif mode.startswith("I;16"):
        bits, signed = 16, mode.endswith("S")
    else:
        return None
    return ("int", float(2 ** (bits - 1) - 1 if signed else 2**bits - 1))


def _upright(im):
    """The decoded image turned by its EXIF orientation, as ``ImageOps.exif_transpose``.

    The pixels are loaded first and the orientation read after: recent PIL
    versions turn TIFFs themselves while loading them (and drop the tag), so
    nothing is turned twice.
    """
    from PIL import Image

    im.load()
    orientation = _orientation(im)
    if orientation == 1:
        return im
    return im.transpose(getattr(Image.Transpose, _ORIENTATION[orientation]))


def _header(im, colour_wanted):
    """(height, width) after the EXIF orientation, colour, depth - no pixel decoded
    except a palette's (to tell grey palettes from colour ones) and a turned TIFF's."""
    depth = _depth(im)  # first: reading the EXIF block may load the pixels
    w, h = im.size
    if _orientation(im) in (5, 6, 7, 8):
        if im.format == "TIFF":  # PIL may have swapped the size already: decode to know
            w, h = _upright(im).size
        else:
            w, h = h, w
    colour = colour_wanted and depth is None and _is_colour(im)
    return (h, w), colour, depth


def _pixels(im, *, rgb, as_float, size, resize):
    """The pixels of an opened image as an (H, W) or (H, W, 3) array.

    ``size=None`` keeps the size the image decodes to (used by the streaming
    reader, which resizes, crops or pads itself).
    """
    from PIL import Image

    depth = _depth(im)  # before anything loads the pixels (see _depth)
    im = _upright(im)  # before any conversion: everything after sees the upright image
    if depth is None:  # 8-bit: PIL's conversions and resize, as always
        target = "RGB" if rgb else "L"
        try:
            im = im.convert(target)
        except ValueError:  # no direct conversion (e.g. LAB -> L): through RGB
            im = im.convert("RGB").convert(target)
        if size is not None and im.size[::-1] != size:
            if not resize:
                raise _Unreadable(_size_changed(im.size[::-1], size))
            im = im.resize(size[::-1], Image.Resampling.LANCZOS)
        a = np.asarray(im)
        return a.astype(np.float32) / np.float32(255) if as_float else a

    # More than 8 bits: in float, never through PIL's 8-bit convert (which clips).
    a = np.asarray(im)
    if a.ndim != 2:
        raise _Unreadable(f"its pixel mode {im.mode!r} is not supported")
    kind, scale = depth
    a = a.astype(np.float64)
    if kind == "float":
        if not np.isfinite(a).all():
            raise _Unreadable("its float pixels include NaN or infinity")
    else:
        a /= scale
    a = a.astype(np.float32)
    if size is not None and a.shape != size:
        if not resize:
            raise _Unreadable(_size_changed(a.shape, size))
        lo, hi = a.min(), a.max()
        a = np.asarray(Image.fromarray(a).resize(size[::-1], Image.Resampling.LANCZOS))
        a = np.clip(a, lo, hi)  # no Lanczos overshoot beyond the image's own range
    return np.repeat(a[..., None], 3, axis=-1) if rgb else a


# ------------------------------------------------------------------ public


def load_image_folder(
    path,
    *,
    resize=None,
    color="auto",
    labels="auto",
    extensions=IMAGE_EXTENSIONS,
    on_error="raise",
    verbose=0,
):
    """Load every image file under a folder into one array.

    Parameters
    ----------
    path : str or path-like
        Folder to read; sub-folders are searched too (hidden files and
        folders are skipped). Files are taken in sorted path order.
        Symbolic links are followed, to files and to folders (their images
        are listed under the link's name); each real folder is read once, so
        a link loop, or a second link to a folder already read, is left out
        with a ``UserWarning`` naming it.
    resize : int or (int, int), default=None
        Resize every image to ``(height, width)`` (Lanczos). ``None`` requires
        all images to have the same size and says which ones differ if not.
    color : {'auto', 'grey', 'rgb'}, default='auto'
        ``'grey'`` converts to one channel, ``'rgb'`` to three; ``'auto'``
        gives RGB when any image is in colour, grey otherwise.
    labels : {'auto', 'subfolders', None}, default='auto'
        ``'subfolders'`` labels each image by the first-level sub-folder it is
        in (an error if some images are not in one); ``'auto'`` does so when
        every image is in a sub-folder; ``None`` never labels.
    extensions : tuple of str
        File-name endings recognised as images (case-insensitive). The content
        decides the format: a JPEG named ``.png`` is read as a JPEG.
    on_error : {'raise', 'skip'}, default='raise'
        What to do with a file that has an image extension but cannot be
        read (see Raises for the cases). ``'raise'`` stops at the first one
        with a ``ValueError``; ``'skip'`` leaves such files out, lists them in
        the result's ``skipped`` and ``skip_reasons`` and emits one
        ``UserWarning`` saying how many were skipped and naming the first
        few, so one bad file among thousands does not end the run.
    verbose : int, default=0
        Show a progress bar while the images are decoded.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``images`` : array of shape (n, H, W) or (n, H, W, 3).
        Its dtype: **uint8** (0..255, as read) when every image has 8-bit
        samples (1-bit, grey, palette, RGB(A), CMYK, ...); otherwise
        **float32** for the whole array: integer images divided by the
        largest value of their sample format (8-bit: 255; 16-bit PNG, TIFF,
        PGM: 65535; 'I' images by the bit depth their file declares, 65535
        when it declares none, ``2**(bits - 1) - 1`` for signed samples, whose
        negative values stay negative), so they lie in [0, 1]; float images
        ('F', e.g. 32-bit float TIFF) as they are, unscaled. Values are never
        clipped to 8 bits, and a resize never leaves an image's own value
        range. Images are turned upright by their EXIF orientation first
        (as :func:`PIL.ImageOps.exif_transpose` does; a damaged EXIF block is
        ignored). Only the first frame of an animation or multi-page file is
        read; 16-bit-per-channel colour files are decoded by PIL to 8 bits
        per channel.
        ``data`` : the images flattened (a view); ``filenames`` : paths
        relative to ``path``, aligned with ``images``; ``target`` : int64
        labels or None; ``target_names`` : the sub-folder names or None;
        ``skipped`` / ``skip_reasons`` : the files (relative paths) left out
        by ``on_error='skip'`` and why (empty otherwise).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ValueError
        If a parameter is invalid, if the folder holds no image (or, with
        ``on_error='skip'``, no readable one), if sizes differ and ``resize``
        is None, or - with ``on_error='raise'`` - if a file with an image
        extension cannot be read: ``"Cannot read the image <path>: <why>"``
        for a file that is not a regular file (a FIFO, socket or device is
        never opened), a broken symbolic link, a file PIL does not recognise,
        a truncated or damaged file, more pixels than
        ``PIL.Image.MAX_IMAGE_PIXELS`` (PIL's decompression-bomb warning and
        error alike), an unsupported pixel mode, float pixels that are NaN or
        infinite, or any ``OSError`` while reading; and ``"Cannot read the
        folder <path>: ..."`` for a sub-folder that cannot be listed. The
        original exception is chained (``__cause__``).

    Examples
    --------
    >>> from skjule.datasets import load_image_folder
    >>> photos = load_image_folder("my_photos/", resize=64)  # doctest: +SKIP
    >>> labels = JULEClustering(n_clusters=5).fit_predict(photos.images)  # doctest: +SKIP
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{path} is not a folder of images.")
    if color not in ("auto", "grey", "rgb"):
        raise ValueError(f"color must be 'auto', 'grey' or 'rgb'; got {color!r}.")
    if labels not in ("auto", "subfolders", None):
        raise ValueError(f"labels must be 'auto', 'subfolders' or None; got {labels!r}.")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")
    if resize is not None:
        size = (resize, resize) if np.isscalar(resize) else tuple(resize)
        if len(size) != 2 or not all(int(s) == s and s >= 1 for s in size):
            raise ValueError(f"resize must be a positive int or (height, width); got {resize!r}.")
        size = (int(size[0]), int(size[1]))
    extensions = tuple(e.lower() for e in extensions)

    failures = []  # (path, "image" | "folder", reason), in the order met

    def fail(f, what, reason, exc=None):
        if on_error == "raise":
            raise ValueError(f"Cannot read the {what} {f}: {reason}") from exc
        failures.append((f, what, reason))

    files, pruned = _image_files(root, extensions, failures)
    if pruned:
        warnings.warn(
            f"Not following {len(pruned)} symbolic link(s) to folders already read "
            "(a link loop, or a second link to the same folder): "
            + ", ".join(f"{p} -> {os.path.realpath(p)}" for p in pruned[:_N_NAMED])
            + (", ..." if len(pruned) > _N_NAMED else ""),
            UserWarning,
            stacklevel=2,
        )
    for f, what, reason in list(failures):  # folders that could not be listed
        if on_error == "raise":
            fail(f, what, reason)
    n_found = len(files) + sum(what == "folder" for _, what, _ in failures)
    if not files and not failures:
        raise ValueError(f"No image files in {path} (looked for {', '.join(extensions)}).")

    # Pass 1: headers only (sizes, colour, bit depth), so size and dtype are
    # known before any pixel is decoded and the output is allocated once.
    ok, sizes, colour, wide = [], [], False, False
    for f in files:
        try:
            with _open_image(f) as im:
                hw, c, depth = _header(im, color == "auto" and not colour)
        except Exception as exc:  # noqa: BLE001 - whatever PIL raises is about this file
            fail(f, "image", _describe(exc), exc)
            continue
        ok.append(f)
        sizes.append(hw)
        colour = colour or c
        wide = wide or depth is not None
    files = ok
    if not files:
        raise ValueError(_none_readable(path, n_found, failures, root))
    if resize is None:
        distinct = sorted(set(sizes))
        if len(distinct) > 1:
            a = files[sizes.index(distinct[0])]
            b = files[sizes.index(distinct[1])]
            raise ValueError(
                f"The images in {path} have {len(distinct)} different sizes, e.g. "
                f"{a.relative_to(root)} is {distinct[0][0]}x{distinct[0][1]} and "
                f"{b.relative_to(root)} is {distinct[1][0]}x{distinct[1][1]} (HxW); "
                "pass resize=(height, width) to bring them to one size."
            )
        size = distinct[0]
    rgb = color == "rgb" or (color == "auto" and colour)
    out = np.empty(
        (len(files), *size, 3) if rgb else (len(files), *size),
        dtype=np.float32 if wide else np.uint8,
    )
    read = np.ones(len(files), dtype=bool)
    bar = progress_bar(total=len(files), desc="reading images", enabled=verbose > 0)
    try:
        for i, f in enumerate(files):
            bar.update()
            try:
                with _open_image(f) as im:
                    out[i] = _pixels(
                        im, rgb=rgb, as_float=wide, size=size, resize=resize is not None
                    )
            except Exception as exc:  # noqa: BLE001 - whatever PIL raises is about this file
                fail(f, "image", _describe(exc), exc)
                read[i] = False
    finally:
        bar.close()
    if not read.all():
        out = out[read]
        files = [f for f, r in zip(files, read) if r]
        if not files:
            raise ValueError(_none_readable(path, n_found, failures, root))

    skipped = [_rel(f, root) for f, _, _ in failures]
    if failures:
        named = "; ".join(
            f"{s} ({reason})" for s, (_, _, reason) in zip(skipped[:_N_NAMED], failures)
        )
        more = f"; and {len(failures) - _N_NAMED} more" if len(failures) > _N_NAMED else ""
        warnings.warn(
            f"Skipped {len(failures)} of {n_found} image files (or folders) in {path} "
            f"that could not be read: {named}{more}. They are listed in the "
            "result's 'skipped' and 'skip_reasons'.",
            UserWarning,
            stacklevel=2,
        )

    rel = [f.relative_to(root) for f in files]
    in_sub = [len(r.parts) > 1 for r in rel]
    target = target_names = None
    if labels == "subfolders" and not all(in_sub):
        bad = rel[in_sub.index(False)]
        raise ValueError(f"labels='subfolders' but {bad} is not in a sub-folder of {path}.")
    if labels == "subfolders" or (labels == "auto" and all(in_sub)):
        target_names, target = np.unique([r.parts[0] for r in rel], return_inverse=True)
        target = target.astype(np.int64)
    return Bunch(
        images=out,
        data=out.reshape(len(out), -1),
        filenames=np.array([str(r) for r in rel]),
        target=target,
        target_names=target_names,
        skipped=np.array(skipped, dtype=str),
        skip_reasons=np.array([reason for _, _, reason in failures], dtype=str),
    )


def _size_changed(got, expected):
    return (
        f"it decoded to {got[0]}x{got[1]} (HxW) although its header said "
        f"{expected[0]}x{expected[1]} like the other images; pass resize= to "
        "accept any size"
    )


def _rel(f, root):
    try:
        return str(Path(f).relative_to(root))
    except ValueError:
        return str(f)


def _none_readable(path, n_found, failures, root):
    named = "; ".join(f"{_rel(f, root)} ({reason})" for f, _, reason in failures[:_N_NAMED])
    return (
        f"No readable image in {path}: all {n_found} image files (or folders) "
        f"could not be read, e.g. {named}."
    )
