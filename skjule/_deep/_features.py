"""FeatureExtractor: frozen features from any torch network, for images of any number.

A scikit-learn transformer around a ``torch.nn.Module`` or a TorchScript file:
it brings each image to the network's input size (centre crop, padding or
stretching), scales it to [0, 1], normalises it by a per-channel mean and
std, replicates grey images when the network wants three channels, and runs
the network in batches under ``torch.no_grad()`` in eval mode. Lists of files
are streamed (:class:`skjule.datasets.ImageStream`): memory holds a few
batches of pixels plus the ``(n, d)`` output, whatever the number of photos.

An optional on-disk cache stores one ``.npy`` per image, keyed by the sha256
of the image's bytes, a digest of the network and the preprocessing
parameters; it is never pickled, written atomically and safe to share
between processes and users.
"""

import hashlib
import inspect
import json
import numbers
import os
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._progress import progress_bar
from ..datasets._image_folder import _open_regular
from ..datasets._stream import (
    INTERPOLATIONS,
    RESIZE_MODES,
    ImageStream,
    _source,
    check_geometry,
    check_size,
)
from ._checkpoint import module_digest
from ._networks import resolve_device

__all__ = ["FeatureExtractor"]

#: Bumped whenever the meaning of a cached vector changes.
_CACHE_FORMAT = 1
_HASH_CHUNK = 1 << 20
#: Cache files get the permissions of any new file here (umask read once, at import).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class FeatureExtractor(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Embed images with a given torch network (frozen features).

    ``transform`` turns images - an array, or image files that are decoded a
    batch at a time - into one float32 feature vector each, with a network
    you provide: a pretrained backbone exported to TorchScript (see
    :doc:`/features`), or any ``torch.nn.Module``. Nothing is trained: the
    network runs in eval mode under ``torch.no_grad()``. Put a clusterer
    after it: ``Pipeline([("features", FeatureExtractor("resnet50.pt")),
    ("cluster", GDLClustering(None))])``.

    Parameters
    ----------
    model : torch.nn.Module, str or path-like
        The network: a module mapping a float tensor ``(batch, C, H, W)`` to
        ``(batch, d)`` (or ``(batch, d, 1, 1)``, which is flattened); or the
        path of a TorchScript file (``torch.jit.save``, e.g.
        ``torch.jit.trace(model.eval(), example).save(path)``), loaded with
        ``torch.jit.load`` onto the CPU, then moved to ``device``. Load only
        files you trust: TorchScript is code. A module you pass is put in
        eval mode and moved to ``device`` during ``fit``/``transform``; its
        training mode and device are restored afterwards.
    input_size : int, (int, int) or None, default=None
        The ``(height, width)`` the network takes; every image is brought to
        it as ``resize`` says. ``None`` feeds images at their own size (they
        must then all have one size; the network must accept it).
    resize : {'crop', 'pad', 'stretch'}, default='crop'
        ``'crop'``: scale (aspect ratio kept) until the image covers
        ``input_size``, then cut out the centre; ``'pad'``: scale until it
        fits inside ``input_size`` and pad with ``pad_value`` (nothing is cut
        off); ``'stretch'``: resize to ``input_size``, distorting the image.
    crop_fraction : float in (0, 1], default=1.0
        For ``'crop'``: the crop keeps this fraction of the scaled image
        (``0.875`` = resize to 256, crop 224, as torchvision's ImageNet
        evaluation transforms).
    pad_value : float, default=0.0
        Pixel value of the padding, in [0, 1] (before ``mean``/``std``).
    interpolation : {'nearest', 'bilinear', 'bicubic', 'lanczos'}, default='bilinear'
        PIL resampling filter, antialiased when shrinking.
    channels : {'auto', 1, 3}, default='auto'
        Channels the network takes. ``'auto'`` tries a dry run with 3 and,
        if the network fails on it, with 1. Grey images are replicated for a
        3-channel network; colour images become grey (luma) for a 1-channel
        one.
    mean, std : float, sequence of float or None, default=None
        Per-channel normalisation ``(x - mean) / std`` of pixels in [0, 1]
        (ImageNet networks: ``mean=(0.485, 0.456, 0.406), std=(0.229, 0.224,
        0.225)``). A single number applies to every channel; ``None``: 0 and
        1.
    l2_normalize : bool, default=False
        Divide each output vector by its Euclidean norm.
    batch_size : int, default=64
        Images per forward pass. Every pass sees exactly ``batch_size``
        images (the last batch is padded), so an image's features never
        depend on which other images came with it.
    device : str or torch.device, default='auto'
        ``'auto'``: CUDA when available, else the CPU. CUDA has not been
        measured by the developers (no GPU was available).
    cache_dir : str, path-like or None, default=None
        Folder of an on-disk feature cache (created when needed). Each image's
        vector is stored as one small ``.npy`` under a sub-folder named by a
        digest of the network (its TorchScript file's bytes, or a module's
        architecture, code and weights), the preprocessing parameters and the
        torch version, and a file named by the sha256 of the image file's
        bytes (of the pixels, for arrays): renaming, moving or duplicating a
        file still hits; changing the network or any preprocessing parameter
        misses. Files are written atomically and read with
        ``allow_pickle=False``; a damaged entry is recomputed; a cache that
        cannot be written is used read-only with a warning. ``l2_normalize``
        is applied after the cache, so it does not split it.
    n_workers : int or None, default=None
        Threads decoding and hashing image files; ``None``: ``min(4,
        os.cpu_count())``; ``0``: in the calling thread.
    prefetch : int, default=1
        Batches decoded ahead of the one the network is working on (memory:
        about ``prefetch + 1`` batches of pixels).
    on_error : {'raise', 'skip'}, default='raise'
        An image file that cannot be read (the cases of
        :func:`skjule.datasets.load_image_folder`): ``'raise'`` raises
        ``ValueError("Cannot read the image <path>: <why>")``; ``'skip'``
        leaves its row out of the output with one ``UserWarning`` and records
        it in ``skipped_`` (the output then has fewer rows than the input:
        realign with ``skipped_``).
    verbose : int, default=0
        Progress bar over the images.

    Attributes
    ----------
    n_features_out_ : int
        Length of the feature vectors.
    n_channels_ : int
        Channels the network takes (1 or 3).
    input_size_ : tuple of int or None
        ``(height, width)`` images are brought to; ``None``: their own size.
    model_digest_ : str
        sha256 (hex) of the TorchScript file, or of the module's architecture
        and weights, at ``fit``.
    device_ : torch.device
        The device the network runs on.
    skipped_ : list of (int, str, str)
        Rows left out by the last ``transform`` with ``on_error='skip'``:
        position in the input, path, reason.

    See Also
    --------
    skjule.datasets.ImageStream : The batches of decoded images used here.
    skjule.datasets.list_image_files : The image files of a folder.
    JULETransformer : Learns the network (``freeze_backbone=True`` trains
        only a head on top of a fixed one).

    Notes
    -----
    ``fit`` loads the network and runs it once on a batch of two zero
    images, to check it and to find ``n_features_out_`` (and, with
    ``channels='auto'``, the channels); otherwise the transformer is
    stateless.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn.pipeline import Pipeline
    >>> from skjule import FeatureExtractor, GDLClustering
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> images = np.random.default_rng(0).integers(0, 256, (40, 32, 48, 3), dtype=np.uint8)
    >>> FeatureExtractor(net, input_size=24).fit_transform(images).shape
    (40, 8)
    >>> pipe = Pipeline([("features", FeatureExtractor(net, input_size=24)),
    ...                  ("cluster", GDLClustering(3))])
    >>> pipe.fit_predict(images).shape
    (40,)

    With a TorchScript file and a folder of photos (streamed)::

        from skjule.datasets import list_image_files
        files = list_image_files("holiday/")
        fe = FeatureExtractor("resnet50.pt", input_size=224,
                              mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                              cache_dir="~/.cache/skjule-features")
        features = fe.fit_transform(files)          # (len(files), 2048)
    """

    _parameter_constraints: dict = {
        "model": [torch.nn.Module, str, os.PathLike],
        "input_size": [Interval(numbers.Integral, 1, None, closed="left"), "array-like", None],
        "resize": [StrOptions(set(RESIZE_MODES))],
        "crop_fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "pad_value": [numbers.Real],
        "interpolation": [StrOptions(set(INTERPOLATIONS))],
        "channels": [StrOptions({"auto"}), numbers.Integral],
        "mean": [numbers.Real, "array-like", None],
        "std": [numbers.Real, "array-like", None],
        "l2_normalize": ["boolean"],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "cache_dir": [str, os.PathLike, None],
        "n_workers": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "prefetch": [Interval(numbers.Integral, 0, None, closed="left")],
        "on_error": [StrOptions({"raise", "skip"})],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model,
        *,
        input_size=None,
        resize="crop",
        crop_fraction=1.0,
        pad_value=0.0,
        interpolation="bilinear",
        channels="auto",
        mean=None,
        std=None,
        l2_normalize=False,
        batch_size=64,
        device="auto",
        cache_dir=None,
        n_workers=None,
        prefetch=1,
        on_error="raise",
        verbose=0,
    ):
        self.model = model
        self.input_size = input_size
        self.resize = resize
        self.crop_fraction = crop_fraction
        self.pad_value = pad_value
        self.interpolation = interpolation
        self.channels = channels
        self.mean = mean
        self.std = std
        self.l2_normalize = l2_normalize
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = cache_dir
        self.n_workers = n_workers
        self.prefetch = prefetch
        self.on_error = on_error
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load and check the network; record its input and output sizes.

        Parameters
        ----------
        X : image array, list of image file paths, or folder path
            Used only when ``input_size`` is None (the size of the images,
            from the array or from the first readable file).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : FeatureExtractor
            The fitted extractor.
        """
        input_size = self._check_params()
        module, digest = self._load_model()
        files, array = _source(X)
        if input_size is None:
            input_size = self._size_of(files, array)
        device = resolve_device(self.device)
        channels, n_out = self._dry_run(module, input_size, device)
        self._check_mean_std(channels)
        self._module = module if self._from_file() else None
        self.input_size_ = None if self.input_size is None else input_size
        self.n_channels_ = channels
        self.n_features_out_ = n_out
        self.model_digest_ = digest
        self.device_ = device
        self.skipped_ = []
        return self

    @property
    def _n_features_out(self):
        return self.n_features_out_

    # ------------------------------------------------------------------ transform
    def transform(self, X):
        """Features of images.

        Parameters
        ----------
        X : image array, list of image file paths, or folder path
            An array ``(n, H, W)`` or ``(n, H, W, C)`` with ``C`` 1 or 3
            (uint8 0..255, other integers scaled by their largest value,
            floats taken to be in [0, 1]); or image files (any format and
            size :func:`skjule.datasets.load_image_folder` reads; EXIF
            orientation applied), decoded a batch at a time; or a folder (its
            :func:`skjule.datasets.list_image_files`).

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out), float32
            One row per image, in input order (without the rows of files
            skipped with ``on_error='skip'``).
        """
        check_is_fitted(self, "n_features_out_")
        self._check_params()
        self._check_mean_std(self.n_channels_)
        files, array = _source(X)
        n = len(files) if array is None else array.shape[0]
        d = self.n_features_out_
        module = self._fitted_module()
        out = np.zeros((n, d), dtype=np.float32)
        done = np.zeros(n, dtype=bool)
        bar = progress_bar(total=n, desc="embedding images", enabled=self.verbose > 0)

        def subset(rows):
            if array is None:
                return [files[i] for i in rows]
            return array if rows.size == n else array[rows]

        if self.cache_dir is None:
            skipped = self._embed(
                module, subset(np.arange(n)), np.arange(n), out, done, None, None, bar
            )
        else:
            skipped = self._embed_cached(module, files, array, subset, out, done, bar)
        bar.close()
        self.skipped_ = skipped
        if self.l2_normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, np.maximum(norms, np.float32(1e-12)), out=out)
        if not done.all():  # on_error='skip' (otherwise _embed raised)
            out = out[done]
        return out

    # ------------------------------------------------------------------ pieces
    def _embed_cached(self, module, files, array, subset, out, done, bar):
        """Cached features where the cache has them, the network for the others.

        The input is taken in chunks: each chunk's files are hashed, looked up,
        and the misses embedded right away, so a file is read for its hash and
        read again for decoding while it is still in the operating system's
        cache. Identical contents are embedded once.
        """
        n, d = len(out), self.n_features_out_
        cache = _Cache(self.cache_dir, self._cache_config(module, array is None), d)
        chunk = 16 * int(self.batch_size)
        keys = [None] * n
        first, skipped, why = {}, [], {}
        for lo in range(0, n, chunk):
            rows = np.arange(lo, min(lo + chunk, n))
            keys[lo : lo + rows.size] = self._content_keys(files, array, rows)
            todo, copies = [], []
            for i in rows:
                key = keys[i]
                vec = None if key is None else cache.get(key)
                if vec is not None:
                    out[i], done[i] = vec, True
                    bar.update(1)
                elif key is not None and key in first:
                    copies.append(i)
                else:
                    todo.append(i)
                    if key is not None:
                        first[key] = i
            todo = np.asarray(todo, dtype=np.int64)
            if todo.size:
                new = self._embed(
                    module, subset(todo), todo, out, done, keys, cache, bar, warn=False
                )
                skipped.extend(new)
                why.update((row, reason) for row, _, reason in new)
            for i in copies:  # the same content as an earlier image
                j = first[keys[i]]
                if done[j]:
                    out[i], done[i] = out[j], True
                    bar.update(1)
                elif j in why:
                    skipped.append((int(i), files[i], why[j]))
        skipped.sort()
        self._warn_skipped(skipped, n)
        return skipped

    def _warn_skipped(self, skipped, n):
        if skipped:
            named = "; ".join(f"{p} ({r})" for _, p, r in skipped[:5])
            more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            warnings.warn(
                f"Skipped {len(skipped)} of {n} image files that could "
                f"not be read: {named}{more}. Their rows are left out of the "
                "output; FeatureExtractor.skipped_ lists them.",
                UserWarning,
                stacklevel=4,
            )

    def _embed(self, module, source, rows, out, done, keys, cache, bar, warn=True):
        """Run the network over ``source`` (rows ``rows`` of the output)."""
        channels, bs = self.n_channels_, int(self.batch_size)
        stream = ImageStream(
            source,
            size=self.input_size_,
            resize=self.resize,
            crop_fraction=self.crop_fraction,
            pad_value=self.pad_value,
            interpolation=self.interpolation,
            color="rgb" if channels == 3 else "grey",
            channels_first=True,
            batch_size=bs,
            n_workers=self.n_workers,
            prefetch=self.prefetch,
            on_error=self.on_error,
        )
        mean, std = self._mean_std(channels)
        device = resolve_device(self.device)
        with _Running(module, device) as net, torch.no_grad(), warnings.catch_warnings():
            # the stream's end-of-run warning is re-issued below with input positions
            warnings.filterwarnings("ignore", message="Skipped .* image files")
            for batch in stream:
                x = torch.from_numpy(batch.images)
                m = x.shape[0]
                if m < bs:
                    x = torch.cat([x, x.new_zeros((bs - m, *x.shape[1:]))])
                if mean is not None:
                    x = (x - mean) / std
                z = _features(net(x.to(device)), bs, "transform")[:m]
                z = z.to("cpu", torch.float32).numpy()
                if not np.isfinite(z).all():
                    bad = int(np.flatnonzero(~np.isfinite(z).all(axis=1))[0])
                    raise ValueError(
                        f"The model returned NaN or infinite features for "
                        f"{_name(source, batch.indices[bad])}; check the model and "
                        "mean/std (std must not be 0)."
                    )
                if z.shape[1] != self.n_features_out_:
                    raise ValueError(
                        f"The model returned {z.shape[1]} features per image here but "
                        f"{self.n_features_out_} in fit; with input_size=None images of "
                        "another size can change that: set input_size, or fit again."
                    )
                idx = rows[batch.indices]
                out[idx] = z
                done[idx] = True
                if cache is not None:
                    for i, vec in zip(idx, z):
                        if keys[i] is not None:
                            cache.put(keys[i], vec)
                bar.update(m)
        skipped = [(int(rows[i]), path, reason) for i, path, reason in stream.skipped]
        if warn:
            self._warn_skipped(skipped, len(done))
        return skipped

    def _check_params(self):
        """Validate what the constraints cannot; returns input_size as a tuple or None."""
        size = check_size(self.input_size, "input_size")
        check_geometry(self.resize, self.crop_fraction, self.pad_value, self.interpolation)
        if self.channels != "auto" and (
            isinstance(self.channels, (bool, np.bool_)) or self.channels not in (1, 3)
        ):
            raise ValueError(f"channels must be 'auto', 1 or 3; got {self.channels!r}.")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if v is None:
                continue
            try:
                a = np.asarray(v, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                a = None
            if (
                a is None
                or a.size == 0
                or not np.isfinite(a).all()
                or (name == "std" and (a <= 0).any())
            ):
                what = "positive numbers" if name == "std" else "finite numbers"
                raise ValueError(
                    f"{name} must be None, a number or one number per "
                    f"channel, all {what}; got {v!r}."
                )
        return size

    def _check_mean_std(self, channels):
        for name in ("mean", "std"):
            v = getattr(self, name)
            if v is not None and np.asarray(v).size not in (1, channels):
                raise ValueError(
                    f"{name} has {np.asarray(v).size} values but the model takes "
                    f"{channels} channel(s); give one value per channel or a single "
                    "number"
                    + (" (or channels=3 for a 3-channel model)" if channels == 1 else "")
                    + "."
                )

    def _mean_std(self, channels):
        if self.mean is None and self.std is None:
            return None, None
        mean = np.zeros(channels) if self.mean is None else np.asarray(self.mean, np.float64)
        std = np.ones(channels) if self.std is None else np.asarray(self.std, np.float64)

        def t(v):
            return torch.tensor(
                np.broadcast_to(np.reshape(v, -1), (channels,)), dtype=torch.float32
            ).reshape(1, channels, 1, 1)

        return t(mean), t(std)

    def _from_file(self):
        return isinstance(self.model, (str, os.PathLike))

    def _load_model(self):
        """(module, hex digest)."""
        if not self._from_file():
            module = self.model
            return module, _module_digest(module).hex()
        path = Path(os.path.expanduser(os.fspath(self.model)))
        if not path.exists():
            raise ValueError(
                f"model={os.fspath(self.model)!r}: no such file. Pass a "
                "torch.nn.Module or the path of a TorchScript file "
                "(torch.jit.trace(net.eval(), example).save(path))."
            )
        if not path.is_file():
            raise ValueError(
                f"model={os.fspath(self.model)!r} is not a file (a folder?); "
                "pass the path of a TorchScript .pt file."
            )
        digest = _file_sha256(path)
        with warnings.catch_warnings():  # torch >= 2.9 deprecates TorchScript; it still works
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                module = torch.jit.load(str(path), map_location="cpu")
            except Exception as exc:  # noqa: BLE001 - whatever torch says, the file is the cause
                try:  # a torch.export program (.pt2)?
                    module = torch.export.load(str(path)).module()
                except Exception:  # noqa: BLE001 - report the TorchScript error
                    raise ValueError(
                        f"model={os.fspath(self.model)!r} is not a TorchScript file "
                        f"(torch.jit.load failed: {type(exc).__name__}: "
                        f"{str(exc).strip()[:300]}) nor a torch.export program. Export the "
                        "network with torch.jit.trace(net.eval(), torch.rand(1, 3, 224, "
                        "224)).save(path) or torch.jit.script(net).save(path); a state_dict "
                        "or a module saved with torch.save is not TorchScript (load it "
                        "yourself and pass the module)."
                    ) from exc
        return module, digest

    def _fitted_module(self):
        """The network: the module given, or the TorchScript file loaded in ``fit``
        (loaded again after unpickling, and checked to be the same file)."""
        if not self._from_file():
            return self.model
        module = getattr(self, "_module", None)
        if module is None:
            module, digest = self._load_model()
            if digest != self.model_digest_:
                raise ValueError(
                    f"The TorchScript file {os.fspath(self.model)!r} changed "
                    "since this FeatureExtractor was fitted; fit it again."
                )
            self._module = module
        return module

    def _size_of(self, files, array):
        """The images' own size (input_size=None): the array's, or the first file's."""
        if array is not None:
            return tuple(int(s) for s in array.shape[1:3])
        stream = ImageStream(files, batch_size=1, n_workers=0, on_error=self.on_error, color="grey")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for batch in stream:
                return tuple(int(s) for s in batch.images.shape[1:3])
        raise ValueError(
            "None of the image files could be read: "
            + "; ".join(f"{p} ({r})" for _, p, r in stream.skipped[:5])
        )

    def _dry_run(self, module, size, device):
        """Run the network on two zero images: (channels, n_features_out)."""
        tried = [self.channels] if self.channels != "auto" else [3, 1]
        errors = []
        with _Running(module, device) as net, torch.no_grad():
            for c in tried:
                shape = (2, c, *size)
                try:
                    out = net(torch.zeros(shape, device=device))
                except Exception as exc:  # noqa: BLE001 - reported with the shape
                    errors.append(f"on {shape}: {type(exc).__name__}: {str(exc).strip()[:400]}")
                    continue
                return c, int(_features(out, 2, "dry").shape[1])
        raise ValueError(
            "The model failed on a dry-run batch of zeros "
            + "; and ".join(errors)
            + ". Check that it takes a float tensor (batch, channels, height, width); set "
            "input_size to the size it expects (it was "
            + ("the images' own size" if self.input_size is None else f"{size}")
            + ") and channels if it is neither 1 nor 3."
        )

    def _cache_config(self, module, from_files):
        digest = (
            self.model_digest_ if self._from_file() else _module_digest(module).hex()
        )  # the weights may have changed
        mean, std = self._mean_std(self.n_channels_)
        return {
            "format": _CACHE_FORMAT,
            "model": digest,
            "torch": torch.__version__,
            "source": "file bytes" if from_files else "pixels",
            "input_size": self.input_size_,
            "resize": self.resize if self.input_size_ is not None else None,
            "crop_fraction": float(self.crop_fraction) if self.resize == "crop" else None,
            "pad_value": float(self.pad_value) if self.resize == "pad" else None,
            "interpolation": self.interpolation,
            "channels": self.n_channels_,
            "mean": None if mean is None else mean.reshape(-1).tolist(),
            "std": None if std is None else std.reshape(-1).tolist(),
            "n_features": self.n_features_out_,
        }

    def _content_keys(self, files, array, rows):
        """sha256 (hex) of the bytes of files ``rows`` (None: unreadable), or of the
        pixels of array images ``rows``."""
        if array is not None:
            head = f"{array.dtype.str}{array.shape[1:]}".encode()
            return [
                hashlib.sha256(head + np.ascontiguousarray(array[i]).tobytes()).hexdigest()
                for i in rows
            ]
        paths = [files[i] for i in rows]
        workers = min(4, os.cpu_count() or 1) if self.n_workers is None else self.n_workers
        if workers == 0:
            return [_file_sha256_or_none(f) for f in paths]
        with ThreadPoolExecutor(workers, thread_name_prefix="skjule-hash") as pool:
            return list(pool.map(_file_sha256_or_none, paths))

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_module", None)  # a loaded TorchScript file: loaded again from its path
        return state


# ------------------------------------------------------------------ helpers


class _Running:
    """Context: the module in eval mode on ``device``; mode and device restored after."""

    def __init__(self, module, device):
        self.module, self.device = module, device

    def __enter__(self):
        m = self.module
        self.training = m.training
        tensors = list(m.parameters()) + list(m.buffers())
        self.old_device = tensors[0].device if tensors else None
        if self.old_device is not None and self.old_device != self.device:
            m.to(self.device)
        _set_mode(m, False)
        return m

    def __exit__(self, *exc):
        m = self.module
        _set_mode(m, self.training)
        if self.old_device is not None and self.old_device != self.device:
            m.to(self.old_device)
        return False


def _set_mode(module, training):
    """``module.train(training)``; a torch.export module (fixed when exported) refuses it."""
    if module.training == training:
        return
    try:
        module.train(training)
    except (NotImplementedError, RuntimeError):
        pass


def _features(out, batch, when):
    """A network output as (batch, d): (batch, d, 1, 1) flattened; else a clear error."""
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"The model returned a {type(out).__name__}, not a tensor. Wrap it in a module "
            "whose forward returns the (batch, features) tensor you want (e.g. the "
            "pooled features of a backbone)."
        )
    shape = tuple(out.shape)
    if out.ndim >= 2 and shape[0] == batch and all(s == 1 for s in shape[2:]):
        out = out.reshape(batch, -1)
        if not out.is_floating_point():
            out = out.float()
        return out
    if out.ndim > 2 and shape[0] == batch:
        raise ValueError(
            f"The model returned a tensor of shape {shape} for a batch of {batch}: a "
            "feature map, not one vector per image. End the network with global pooling, "
            "e.g. torch.nn.Sequential(net, torch.nn.AdaptiveAvgPool2d(1), "
            "torch.nn.Flatten()), and export it again."
        )
    raise ValueError(
        f"The model must return a (batch, features) tensor; for a batch of {batch} it "
        f"returned shape {shape}. End it with torch.nn.Flatten() (after pooling) so that "
        "it outputs one feature vector per image."
    )


def _name(source, i):
    return repr(source[i]) if isinstance(source, list) else f"image {i} of the array"


def _module_digest(module):
    """Digest of a module: architecture, weights and, where available, its code."""
    h = hashlib.sha256(module_digest(module))
    seen = set()
    for sub in module.modules():
        if isinstance(sub, torch.jit.ScriptModule):
            try:
                h.update(sub.code.encode())
            except Exception:  # noqa: BLE001 - a module without code of its own
                pass
            continue
        cls = type(sub)
        if cls in seen or cls.__module__.startswith("torch."):
            continue  # torch's own layers: identified by the torch version
        seen.add(cls)
        try:
            h.update(inspect.getsource(cls).encode())
        except (OSError, TypeError):
            pass
    return h.digest()


def _file_sha256(path):
    h = hashlib.sha256()
    with _open_regular(path) as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_sha256_or_none(path):
    """None when the file cannot be read: the decoder then reports it properly."""
    try:
        return _file_sha256(path)
    except Exception:  # noqa: BLE001
        return None


class _Cache:
    """One .npy per image under ``root/skjule-features-v1/<config digest>/<ab>/<sha>.npy``."""

    def __init__(self, root, config, n_features):
        text = json.dumps(config, sort_keys=True)
        name = hashlib.sha256(text.encode()).hexdigest()[:32]
        base = Path(os.path.expanduser(os.fspath(root)))
        self.folder = base / f"skjule-features-v{_CACHE_FORMAT}" / name
        self.n_features = n_features
        self.writable = True
        self._lock = threading.Lock()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = self.folder / "config.json"
            if not meta.exists():
                _atomic_write(
                    meta, lambda f: f.write(json.dumps(config, sort_keys=True, indent=1).encode())
                )
        except OSError as exc:
            self._read_only(exc)

    def _path(self, key):
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key):
        try:
            vec = np.load(self._path(key), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if vec.dtype != np.float32 or vec.shape != (self.n_features,) or not np.isfinite(vec).all():
            return None  # damaged or foreign: recomputed and overwritten
        return vec

    def put(self, key, vec):
        if not self.writable:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(exist_ok=True)
            _atomic_write(
                path, lambda f: np.save(f, np.asarray(vec, np.float32), allow_pickle=False)
            )
        except OSError as exc:
            self._read_only(exc)

    def _read_only(self, exc):
        with self._lock:
            if self.writable:
                self.writable = False
                warnings.warn(
                    f"The feature cache {self.folder} cannot be written ({exc}); it is only read.",
                    UserWarning,
                    stacklevel=4,
                )


def _atomic_write(path, write):
    """Write through a temporary file in the same folder and rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
