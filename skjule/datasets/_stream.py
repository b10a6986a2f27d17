"""Folders of any size: list the image files, then decode them in batches on demand.

:func:`load_image_folder` holds every image in one array, so memory grows with
the folder. :class:`ImageStream` instead decodes a batch at a time in worker
threads (PIL releases the GIL while it decodes and resizes), a bounded number
of batches ahead of the consumer, so memory is a few batches whatever the
number of files, and yields the batches in the order of the files.

Every file is read exactly as :func:`load_image_folder` reads it - the same
walking (:func:`list_image_files`), the same checks before a file is opened
(regular files only), EXIF orientation, bit depths and error messages - by
the loader's own helpers. What differs is the geometry: each image is brought
to one ``size`` by a centre crop, padding or stretching, so photos of any
shape can share a batch.

This module needs only numpy and Pillow (no torch).
"""

import numbers
import os
import warnings
from collections import deque, namedtuple
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ._image_folder import (
    _N_NAMED,
    IMAGE_EXTENSIONS,
    _describe,
    _image_files,
    _open_image,
    _pixels,
)

__all__ = ["ImageBatch", "ImageStream", "list_image_files"]

RESIZE_MODES = ("crop", "pad", "stretch")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")

ImageBatch = namedtuple("ImageBatch", ["images", "indices"])
ImageBatch.__doc__ = """One batch of an :class:`ImageStream`: the pixels and their positions.

Parameters
----------
images : ndarray
    The batch's images, float32 with values in [0, 1]: shape
    ``(batch, H, W, 3)`` for ``color='rgb'``, ``(batch, H, W)`` for
    ``'grey'``; ``(batch, C, H, W)`` with ``channels_first``.
indices : ndarray of shape (batch,)
    The position of each image in the stream's source (int64).
"""


class _FileError(Exception):
    """One file could not be read; carries the loader's description of why."""

    def __init__(self, index, path, reason):
        super().__init__(reason)
        self.index, self.path, self.reason = index, path, reason


# ------------------------------------------------------------------ listing


def list_image_files(path, *, extensions=IMAGE_EXTENSIONS, on_error="raise"):
    """The image files under a folder, in the order :func:`load_image_folder` reads them.

    Nothing is opened: the list is cheap even for a folder of a million
    photos. Pass it to :class:`ImageStream` or to
    :class:`skjule.FeatureExtractor`.

    Parameters
    ----------
    path : str or path-like
        Folder to walk; sub-folders are searched too, hidden files and
        folders are skipped, symbolic links are followed (each real folder
        once, with a ``UserWarning`` for a link loop or a second link to a
        folder already listed), exactly as in :func:`load_image_folder`.
    extensions : tuple of str
        File-name endings recognised as images (case-insensitive).
    on_error : {'raise', 'skip'}, default='raise'
        A sub-folder that cannot be listed: ``'raise'`` raises
        ``ValueError("Cannot read the folder <path>: ...")``, ``'skip'``
        leaves it out with a ``UserWarning``.

    Returns
    -------
    files : list of str
        The paths (``path`` joined with each file's relative path), sorted
        within each folder, folders in walk order.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ValueError
        If ``on_error`` is invalid, if the folder holds no image file, or
        (``on_error='raise'``) if a sub-folder cannot be listed.

    Examples
    --------
    >>> from skjule.datasets import list_image_files, ImageStream
    >>> files = list_image_files("holiday/")  # doctest: +SKIP
    >>> for batch in ImageStream(files, size=224):  # doctest: +SKIP
    ...     batch.images.shape
    (64, 224, 224, 3)
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{path} is not a folder of images.")
    _check_on_error(on_error)
    extensions = tuple(e.lower() for e in extensions)
    failures = []
    files, pruned = _image_files(root, extensions, failures)
    if pruned:
        warnings.warn(
            f"Not following {len(pruned)} symbolic link(s) to folders already listed "
            "(a link loop, or a second link to the same folder): "
            + ", ".join(f"{p} -> {os.path.realpath(p)}" for p in pruned[:_N_NAMED])
            + (", ..." if len(pruned) > _N_NAMED else ""),
            UserWarning,
            stacklevel=2,
        )
    if failures:
        f, what, reason = failures[0]
        if on_error == "raise":
            raise ValueError(f"Cannot read the {what} {f}: {reason}")
        warnings.warn(
            f"Skipped {len(failures)} folder(s) under {path} that could not be "
            "listed: " + "; ".join(f"{f} ({r})" for f, _, r in failures[:_N_NAMED]),
            UserWarning,
            stacklevel=2,
        )
    if not files:
        raise ValueError(f"No image files in {path} (looked for {', '.join(extensions)}).")
    return [str(f) for f in files]


# ------------------------------------------------------------------ checks


def _check_on_error(on_error):
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")


def check_size(size, name="size"):
    """``None`` or a positive int / (height, width) -> None or a tuple of two ints."""
    if size is None:
        return None
    values = (size, size) if isinstance(size, numbers.Integral) else size
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != 2 or any(
        isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 1
        for v in values
    ):
        raise ValueError(
            f"{name} must be None, a positive int or (height, width) of "
            f"positive ints; got {size!r}."
        )
    return int(values[0]), int(values[1])


def check_geometry(resize, crop_fraction, pad_value, interpolation):
    """Validate the geometry parameters shared by ImageStream and FeatureExtractor."""
    if resize not in RESIZE_MODES:
        raise ValueError(
            f"resize must be one of {', '.join(map(repr, RESIZE_MODES))}; "
            f"got {resize!r}. 'crop' keeps the aspect ratio and cuts the "
            "centre, 'pad' keeps all of the image and pads, 'stretch' "
            "distorts it to the size."
        )
    if (
        isinstance(crop_fraction, (bool, np.bool_))
        or not isinstance(crop_fraction, numbers.Real)
        or not 0 < crop_fraction <= 1
    ):
        raise ValueError(
            f"crop_fraction must be a number in (0, 1] (the part of the "
            f"resized image the crop keeps, e.g. 0.875 = 224/256); got "
            f"{crop_fraction!r}."
        )
    if (
        isinstance(pad_value, (bool, np.bool_))
        or not isinstance(pad_value, numbers.Real)
        or not np.isfinite(pad_value)
    ):
        raise ValueError(
            f"pad_value must be a finite number (a pixel value in [0, 1]); got {pad_value!r}."
        )
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"interpolation must be one of "
            f"{', '.join(map(repr, INTERPOLATIONS))}; got {interpolation!r}."
        )


def _check_array(X):
    """An image array (n, H, W), (n, H, W, 1) or (n, H, W, 3) of real numbers."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"The image array has dtype {X.dtype}; expected numbers "
            "(uint8 0..255, or float in [0, 1])."
        )
    if X.ndim not in (3, 4) or (X.ndim == 4 and X.shape[3] not in (1, 3)):
        raise ValueError(
            f"Expected images of shape (n, height, width) or (n, height, "
            f"width, channels) with 1 or 3 channels; got an array of shape "
            f"{X.shape}."
        )
    if X.shape[0] == 0 or X.shape[1] == 0 or X.shape[2] == 0:
        raise ValueError(f"The image array is empty (shape {X.shape}).")
    return X


# ------------------------------------------------------------------ pixels


def _resample(name):
    from PIL import Image

    return {
        "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
    }[name]


def _resize(a, hw, interpolation):
    """Resize an (H, W) or (H, W, C) uint8 or float32 array to ``hw`` with PIL.

    8-bit images go through PIL's 8-bit resize (as ``load_image_folder``);
    float images are resized channel by channel in PIL's float mode and kept
    within their own value range (no bicubic/Lanczos overshoot).
    """
    from PIL import Image

    if a.shape[:2] == hw:
        return a
    resample = _resample(interpolation)
    if a.dtype == np.uint8:
        return np.asarray(Image.fromarray(a).resize(hw[::-1], resample))
    planes = a[..., None] if a.ndim == 2 else a
    out = np.empty((*hw, planes.shape[2]), dtype=np.float32)
    for c in range(planes.shape[2]):
        p = np.ascontiguousarray(planes[..., c], dtype=np.float32)
        out[..., c] = np.asarray(Image.fromarray(p, mode="F").resize(hw[::-1], resample))
    if interpolation in ("bicubic", "lanczos"):
        np.clip(out, planes.min(), planes.max(), out=out)
    return out[..., 0] if a.ndim == 2 else out


def _geometry(hw, size, resize, crop_fraction):
    """(resized height, width), (top, left) of the cut/paste, for an image of ``hw``."""
    (h, w), (th, tw) = hw, size
    if resize == "stretch":
        return (th, tw), (0, 0)
    if resize == "crop":
        s = max(th / h, tw / w) / crop_fraction
        nh, nw = max(th, round(h * s)), max(tw, round(w * s))
        return (nh, nw), ((nh - th) // 2, (nw - tw) // 2)
    s = min(th / h, tw / w)  # pad
    nh, nw = min(th, max(1, round(h * s))), min(tw, max(1, round(w * s)))
    return (nh, nw), ((th - nh) // 2, (tw - nw) // 2)


def _to_float(a):
    """uint8 -> float32 / 255; other integers by their largest value; floats as float32."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255)
    if a.dtype.kind in "iu":
        return (a.astype(np.float64) / np.iinfo(a.dtype).max).astype(np.float32)
    return a.astype(np.float32, copy=False)


def _colour(a, rgb):
    """An array image to grey (H, W) or RGB (H, W, 3); uint8 through PIL as files are."""
    from PIL import Image

    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype == np.bool_:
        a = a.astype(np.float32)
    is_rgb = a.ndim == 3
    if is_rgb == rgb:
        return a
    if a.dtype == np.uint8:  # as PIL converts an 8-bit file: 'L' <-> 'RGB'
        return np.asarray(Image.fromarray(a).convert("RGB" if rgb else "L"))
    a = _to_float(a)
    if rgb:
        return np.repeat(a[..., None], 3, axis=2)
    return (
        a[..., 0] * np.float32(0.299)
        + a[..., 1] * np.float32(0.587)
        + a[..., 2] * np.float32(0.114)
    )


def prepare_image(a, *, size, resize, crop_fraction, pad_value, interpolation):
    """One image (grey or RGB, uint8 or float) at ``size``: uint8 when it was 8-bit and
    nothing made it float (see :func:`write_float`), else float32 in [0, 1]."""
    if size is not None:
        (nh, nw), (top, left) = _geometry(a.shape[:2], size, resize, crop_fraction)
        a = _resize(a, (nh, nw), interpolation)
        if resize == "crop":
            a = a[top : top + size[0], left : left + size[1]]
        elif resize == "pad":
            out = np.full((*size, *a.shape[2:]), pad_value, dtype=np.float32)
            out[top : top + nh, left : left + nw] = _to_float(a)
            return out
    if a.dtype == np.uint8:
        return a
    return _to_float(a)


def write_float(dst, a):
    """``dst[...] = a`` as float32 in [0, 1] (uint8 divided by 255 as :func:`_to_float`)."""
    if a.dtype == np.uint8:
        np.divide(a, np.float32(255), out=dst, dtype=np.float32)
    else:
        dst[...] = a


def read_image_file(path, rgb):
    """The pixels of one image file at its own size: uint8 for 8-bit files,
    float32 in [0, 1] for deeper ones (the loader's rules: EXIF orientation,
    bit depths, regular files only). Raises the loader's errors."""
    with _open_image(path) as im:
        return _pixels(im, rgb=rgb, as_float=False, size=None, resize=False)


# ------------------------------------------------------------------ stream


class ImageStream:
    """Batches of images decoded on demand, in order, a bounded number ahead.

    Iterating over the stream yields :class:`ImageBatch` tuples
    ``(images, indices)``: ``images`` a float32 array of up to
    ``batch_size`` images with values in [0, 1], ``indices`` their positions
    in ``source``. Worker threads decode (and resize) the images of the next
    ``prefetch`` batches while the caller works on the current one; no more
    is ever decoded ahead, so memory is about ``prefetch + 1`` batches
    whatever the length of ``source``. The stream can be iterated again
    (files are decoded again).

    Parameters
    ----------
    source : sequence of paths, folder path, or array
        Image files (e.g. from :func:`list_image_files`); a folder (its
        :func:`list_image_files`); or an image array ``(n, H, W)`` /
        ``(n, H, W, C)`` (uint8, other integers scaled by their largest value,
        or float taken to be in [0, 1]), which gets the same geometry.
    size : int, (int, int) or None, default=None
        Output ``(height, width)``. ``None`` keeps each image's own size,
        which must then be the same for all (``ValueError`` otherwise).
    resize : {'crop', 'pad', 'stretch'}, default='crop'
        How an image of another shape is brought to ``size``: ``'crop'``
        scales it (aspect ratio kept) until it covers ``size`` and cuts out
        the centre; ``'pad'`` scales it until it fits inside ``size`` and
        pads the rest with ``pad_value``; ``'stretch'`` resizes it to
        ``size``, distorting it.
    crop_fraction : float in (0, 1], default=1.0
        For ``'crop'``: the centre crop keeps this fraction of the scaled
        image's shorter side (``0.875``: scale to 256, crop 224, the
        classic ImageNet evaluation).
    pad_value : float, default=0.0
        Pixel value of the padding (in [0, 1]).
    interpolation : {'nearest', 'bilinear', 'bicubic', 'lanczos'}, default='bilinear'
        PIL resampling filter (antialiased when shrinking). 8-bit images are
        resized in 8 bits, deeper ones in float.
    color : {'rgb', 'grey'}, default='rgb'
        ``'rgb'``: ``(..., 3)`` (grey images replicated); ``'grey'``: one
        channel (PIL's ``'L'`` conversion for 8-bit images, ITU-R 601 luma
        for float ones).
    channels_first : bool, default=False
        Yield ``(batch, C, H, W)`` (the layout of torch) instead of
        ``(batch, H, W, C)``; grey images then get a channel axis of 1.
    batch_size : int, default=64
        Images per batch; the last batch holds the rest (fewer with
        ``on_error='skip'`` when files are left out). Memory grows with
        ``batch_size * (prefetch + 1)``.
    n_workers : int or None, default=None
        Decoding threads; ``None``: ``min(4, os.cpu_count())``; ``0``:
        decode in the calling thread (nothing ahead).
    prefetch : int, default=1
        Batches decoded ahead of the one the caller holds.
    on_error : {'raise', 'skip'}, default='raise'
        A file that cannot be read (the cases of :func:`load_image_folder`):
        ``'raise'`` raises ``ValueError("Cannot read the image <path>:
        <why>")`` when its batch is reached; ``'skip'`` leaves it out of its
        batch (``indices`` say which images a batch holds), records
        ``(index, path, reason)`` in ``skipped`` and emits one
        ``UserWarning`` at the end of the iteration.

    Attributes
    ----------
    files : list of str or None
        The image files (None for an array source).
    skipped : list of (int, str, str)
        The files left out by the last iteration with ``on_error='skip'``.
    n_buffered : int
        Batches submitted to the workers and not yet handed to the caller
        (at most ``prefetch`` while the caller holds a batch).
    max_buffered : int
        The largest ``n_buffered`` seen while the caller held a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from skjule.datasets import ImageStream
    >>> images = np.zeros((5, 30, 40, 3), dtype=np.uint8)
    >>> [b.images.shape for b in ImageStream(images, size=16, batch_size=2)]
    [(2, 16, 16, 3), (2, 16, 16, 3), (1, 16, 16, 3)]
    """

    def __init__(
        self,
        source,
        *,
        size=None,
        resize="crop",
        crop_fraction=1.0,
        pad_value=0.0,
        interpolation="bilinear",
        color="rgb",
        channels_first=False,
        batch_size=64,
        n_workers=None,
        prefetch=1,
        on_error="raise",
    ):
        self.size = check_size(size)
        check_geometry(resize, crop_fraction, pad_value, interpolation)
        if color not in ("rgb", "grey"):
            raise ValueError(f"color must be 'rgb' or 'grey'; got {color!r}.")
        for name, value, low in (("batch_size", batch_size, 1), ("prefetch", prefetch, 0)):
            if (
                isinstance(value, (bool, np.bool_))
                or not isinstance(value, numbers.Integral)
                or value < low
            ):
                raise ValueError(f"{name} must be an int >= {low}; got {value!r}.")
        if n_workers is not None and (
            isinstance(n_workers, (bool, np.bool_))
            or not isinstance(n_workers, numbers.Integral)
            or n_workers < 0
        ):
            raise ValueError(f"n_workers must be None or an int >= 0; got {n_workers!r}.")
        _check_on_error(on_error)
        self.resize, self.crop_fraction = resize, float(crop_fraction)
        self.pad_value, self.interpolation = float(pad_value), interpolation
        self.color, self.channels_first = color, bool(channels_first)
        self.batch_size, self.prefetch = int(batch_size), int(prefetch)
        self.n_workers = min(4, os.cpu_count() or 1) if n_workers is None else int(n_workers)
        self.on_error = on_error
        self.files, self._array = _source(source)
        self.skipped = []
        self.n_buffered = 0
        self.max_buffered = 0

    def __len__(self):
        """The number of batches."""
        return -(-self.n_images // self.batch_size)

    @property
    def n_images(self):
        """The number of images in the source (files or array rows)."""
        return len(self.files) if self._array is None else self._array.shape[0]

    # -------------------------------------------------------------- one image
    def _load(self, i):
        """Image ``i`` at the output size, uint8 or float32 (worker threads run this)."""
        rgb = self.color == "rgb"
        if self._array is None:
            path = self.files[i]
            try:
                a = read_image_file(path, rgb)
            except Exception as exc:  # noqa: BLE001 - whatever PIL raises is about this file
                raise _FileError(i, path, _describe(exc)) from exc
        else:
            a = _colour(self._array[i], rgb)
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise ValueError(f"Image {i} of the array holds NaN or infinite values.")
        return prepare_image(
            a,
            size=self.size,
            resize=self.resize,
            crop_fraction=self.crop_fraction,
            pad_value=self.pad_value,
            interpolation=self.interpolation,
        )

    def _view(self, buf, k):
        """Image ``k`` of a batch buffer, as an (H, W[, C]) view."""
        if not self.channels_first:
            return buf[k]
        return buf[k, 0] if self.color == "grey" else buf[k].transpose(1, 2, 0)

    def _load_into(self, i, buf, k):
        """Decode image ``i`` into ``buf[k]`` (known size); a _FileError is returned."""
        try:
            a = self._load(i)
        except _FileError as exc:
            return exc
        dst = self._view(buf, k)
        if a.shape != dst.shape:  # cannot happen with a size, but never write garbage
            raise ValueError(f"{self._describe_source(i)} came out {a.shape}, not {dst.shape}")
        write_float(dst, a)
        return None

    def _load_alone(self, i):
        """Decode image ``i`` at its own size (size=None); a _FileError is returned."""
        try:
            return self._load(i)
        except _FileError as exc:
            return exc

    def _describe_source(self, i):
        return self.files[i] if self._array is None else f"image {i} of the array"

    # -------------------------------------------------------------- batches
    def _new_buffer(self, m, size):
        c = 3 if self.color == "rgb" else None
        h, w = size
        if c is None:
            shape = (m, 1, h, w) if self.channels_first else (m, h, w)
        else:
            shape = (m, c, h, w) if self.channels_first else (m, h, w, c)
        return np.empty(shape, dtype=np.float32)

    def _tasks(self, start, run):
        """Start decoding one batch: (start, buffer or None, list of pending results).
        ``run(fn, *args)`` runs now (no workers) or submits to the pool."""
        stop = min(start + self.batch_size, self.n_images)
        if self.size is None:
            return start, None, [run(self._load_alone, i) for i in range(start, stop)]
        buf = self._new_buffer(stop - start, self.size)
        return (
            start,
            buf,
            [run(self._load_into, i, buf, k) for k, i in enumerate(range(start, stop))],
        )

    def _check_shape(self, i, shape, got):
        if shape[0] is None:
            shape[0] = got
        elif got != shape[0]:
            raise ValueError(
                f"{self._describe_source(i)} is {got[0]}x{got[1]} (HxW) but the images "
                f"before it are {shape[0][0]}x{shape[0][1]}; pass size=(height, width) "
                "(input_size= for FeatureExtractor) to bring every image to one size."
            )

    def _assemble(self, start, buf, results, shape):
        """The batch of one chunk of images (None if all were skipped)."""
        keep = np.ones(len(results), dtype=bool)
        for k, res in enumerate(results):
            if isinstance(res, _FileError):
                if self.on_error == "raise":
                    raise ValueError(
                        f"Cannot read the image {res.path}: {res.reason}"
                    ) from res.__cause__
                self.skipped.append((res.index, str(res.path), res.reason))
                keep[k] = False
            elif buf is None:
                self._check_shape(start + k, shape, res.shape[:2])
        if not keep.any():
            return None
        if buf is None:  # size=None: stack the images
            kept = [r for r, ok in zip(results, keep) if ok]
            buf = self._new_stack(kept)
        elif not keep.all():
            buf = buf[keep]
        return ImageBatch(buf, start + np.flatnonzero(keep).astype(np.int64))

    def _new_stack(self, images):
        buf = self._new_buffer(len(images), images[0].shape[:2])
        for k, a in enumerate(images):
            write_float(self._view(buf, k), a)
        return buf

    def __iter__(self):
        self.skipped = []
        self.n_buffered = self.max_buffered = 0
        n, bs = self.n_images, self.batch_size
        starts = deque(range(0, n, bs))
        shape = [None]
        if self.n_workers == 0:
            for start in starts:
                start, buf, results = self._tasks(start, lambda fn, *a: fn(*a))
                batch = self._assemble(start, buf, results, shape)
                if batch is not None:
                    yield batch
        else:
            pool = ThreadPoolExecutor(self.n_workers, thread_name_prefix="skjule-decode")
            pending = deque()

            def submit():
                pending.append(self._tasks(starts.popleft(), pool.submit))

            try:
                while starts and len(pending) < self.prefetch + 1:
                    submit()
                while pending:
                    start, buf, futures = pending.popleft()
                    results = [f.result() for f in futures]
                    del futures
                    batch = self._assemble(start, buf, results, shape)
                    del results, buf
                    self.n_buffered = len(pending)
                    self.max_buffered = max(self.max_buffered, self.n_buffered)
                    if batch is not None:
                        yield batch
                        batch = None
                    if starts:  # the caller is done with its batch: one more ahead
                        submit()
            finally:
                for _, _, futures in pending:
                    for f in futures:
                        f.cancel()
                pending.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                self.n_buffered = 0
        if self.skipped:
            named = "; ".join(f"{p} ({r})" for _, p, r in self.skipped[:_N_NAMED])
            more = (
                f"; and {len(self.skipped) - _N_NAMED} more" if len(self.skipped) > _N_NAMED else ""
            )
            warnings.warn(
                f"Skipped {len(self.skipped)} of {n} image files that could not "
                f"be read: {named}{more}. They are listed in the stream's "
                "'skipped'.",
                UserWarning,
                stacklevel=2,
            )


def _source(source):
    """(files, None) for paths or a folder, (None, array) for an image array."""
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isdir(source):
            raise ValueError(
                f"{source} is not a folder; pass a folder, a list of image files or an image array."
            )
        return list_image_files(source), None
    if isinstance(source, np.ndarray) and source.dtype.kind not in "USO":
        return None, _check_array(source)
    try:
        items = list(source)
    except TypeError:
        raise ValueError(
            f"Expected a folder, a list of image file paths or an image "
            f"array; got {type(source).__name__}."
        ) from None
    if items and all(isinstance(p, (str, os.PathLike)) for p in items):
        return [os.fspath(p) for p in items], None
    if not items:
        raise ValueError("No images: the list of image files is empty.")
    if any(isinstance(p, (str, os.PathLike)) for p in items):
        bad = next(p for p in items if not isinstance(p, (str, os.PathLike)))
        raise ValueError(
            f"A list of image files must hold only paths; it holds {type(bad).__name__} {bad!r}."
        )
    return None, _check_array(np.asarray(items))
