"""Load a folder of image files (PNG, JPEG, ...) into an array."""

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._progress import progress_bar

__all__ = ["load_image_folder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                    ".pgm", ".ppm", ".pbm")
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _image_files(root, extensions):
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in sorted(filenames)
                     if f.lower().endswith(extensions) and not f.startswith("."))
    return files


def _is_colour(im):
    """Whether an opened image has colour channels (a palette is decoded)."""
    if im.mode in ("P", "PA"):
        rgb = np.asarray(im.convert("RGB"))
        return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())
    return im.mode not in _GREY_MODES


def load_image_folder(path, *, resize=None, color="auto", labels="auto",
                      extensions=IMAGE_EXTENSIONS, verbose=0):
    """Load every image file under a folder into one array.

    Parameters
    ----------
    path : str or path-like
        Folder to read; sub-folders are searched too (hidden files and
        folders are skipped). Files are taken in sorted path order.
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
        File-name endings recognised as images (case-insensitive).
    verbose : int, default=0
        Show a progress bar while the images are decoded.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``images`` : uint8 array of shape (n, H, W) or (n, H, W, 3);
        ``data`` : the images flattened (a view); ``filenames`` : paths
        relative to ``path``; ``target`` : int64 labels or None;
        ``target_names`` : the sub-folder names or None.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ValueError
        If it holds no image, if an image cannot be read, or if sizes differ
        and ``resize`` is None.

    Examples
    --------
    >>> from skjule.datasets import load_image_folder
    >>> photos = load_image_folder("my_photos/", resize=64)  # doctest: +SKIP
    >>> labels = JULEClustering(n_clusters=5).fit_predict(photos.images)  # doctest: +SKIP
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{path} is not a folder of images.")
    if color not in ("auto", "grey", "rgb"):
        raise ValueError(f"color must be 'auto', 'grey' or 'rgb'; got {color!r}.")
    if labels not in ("auto", "subfolders", None):
        raise ValueError(f"labels must be 'auto', 'subfolders' or None; got {labels!r}.")
    if resize is not None:
        size = (resize, resize) if np.isscalar(resize) else tuple(resize)
        if len(size) != 2 or not all(int(s) == s and s >= 1 for s in size):
            raise ValueError(f"resize must be a positive int or (height, width); "
                             f"got {resize!r}.")
        size = (int(size[0]), int(size[1]))
    extensions = tuple(e.lower() for e in extensions)
    files = _image_files(root, extensions)
    if not files:
        raise ValueError(f"No image files in {path} (looked for {', '.join(extensions)}).")

    # Pass 1: headers only (sizes, colour), so every error is found before any
    # pixel is decoded and the output can be allocated once.
    sizes, colour = [], False
    for f in files:
        try:
            with Image.open(f) as im:
                sizes.append(im.size[::-1])
                if color == "auto" and not colour:
                    colour = _is_colour(im)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"Cannot read the image {f}: {exc}") from None
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
    out = np.empty((len(files), *size, 3) if rgb else (len(files), *size), dtype=np.uint8)
    bar = progress_bar(total=len(files), desc="reading images", enabled=verbose > 0)
    for i, f in enumerate(files):
        bar.update()
        try:
            with Image.open(f) as im:
                im = im.convert("RGB" if rgb else "L")
                if im.size[::-1] != size:
                    im = im.resize(size[::-1], Image.Resampling.LANCZOS)
                out[i] = np.asarray(im)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"Cannot read the image {f}: {exc}") from None
    bar.close()

    rel = [f.relative_to(root) for f in files]
    in_sub = [len(r.parts) > 1 for r in rel]
    target = target_names = None
    if labels == "subfolders" and not all(in_sub):
        bad = rel[in_sub.index(False)]
        raise ValueError(f"labels='subfolders' but {bad} is not in a sub-folder of {path}.")
    if labels == "subfolders" or (labels == "auto" and all(in_sub)):
        target_names, target = np.unique([r.parts[0] for r in rel], return_inverse=True)
        target = target.astype(np.int64)
    return Bunch(images=out, data=out.reshape(len(out), -1),
                 filenames=np.array([str(r) for r in rel]), target=target,
                 target_names=target_names)
