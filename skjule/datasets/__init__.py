"""Data: your own image folders, and the benchmarks of the JULE paper.

:func:`load_image_folder` reads a folder of PNG/JPEG/... files. The fetchers
download the public benchmark sets in their original formats, verify them and
cache them as arrays under :func:`get_data_home`, as
:mod:`sklearn.datasets` does. Original files already at hand go in
``<data_home>/<name>/`` and are verified and used without any download; an
archive of arrays already converted, ``<data_home>/<name>.npz``, is used as it
is after a structural check (see each fetcher's Notes).
"""

from ._base import clear_data_home, get_data_home
from ._fetchers import (
    fetch_coil20,
    fetch_coil100,
    fetch_fashion_mnist,
    fetch_mnist,
    fetch_umist,
    fetch_usps,
)
from ._image_folder import load_image_folder
from ._stream import ImageBatch, ImageStream, list_image_files

__all__ = [
    "clear_data_home",
    "fetch_coil20",
    "fetch_coil100",
    "fetch_fashion_mnist",
    "fetch_mnist",
    "fetch_umist",
    "fetch_usps",
    "get_data_home",
    "list_image_files",
    "load_image_folder",
    "ImageBatch",
    "ImageStream",
]
