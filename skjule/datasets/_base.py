"""Download, verify and cache: the machinery behind the fetchers.

Every file goes to a temporary name in the destination folder and is moved
into place (``os.replace``, atomic on POSIX and Windows) only after its
checksum has been verified, so an interrupted or corrupted download never
leaves a file that a later call would load as valid. A file without a
published checksum is verified by reading its format (ZIP, gzip, bz2,
MATLAB) through, and only an intact one is kept and has its sha256 recorded.

A file already in the destination folder (a copy the user put there, or an
earlier download) is verified the same way and used without any download;
one that fails the check is never deleted: it is replaced only by a verified
download, or reported as an error when downloading is not allowed.
"""

import bz2
import gzip
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["get_data_home", "clear_data_home"]

_CHUNK = 1 << 20


def get_data_home(data_home=None):
    """Folder of the fetchers' data.

    A fetcher of data set ``<name>`` reads ``<data_home>/<name>.npz`` when
    it is there (a prepared copy: arrays already converted), else keeps the
    original files (downloaded, or put there by the user) and the arrays it
    converts from them in ``<data_home>/<name>/``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder. ``None`` uses the ``SKJULE_DATA`` environment variable, or
        ``~/skjule_data`` when it is not set.

    Returns
    -------
    data_home : pathlib.Path
        The folder; it is created if missing.
    """
    if data_home is None:
        data_home = os.environ.get("SKJULE_DATA", os.path.join("~", "skjule_data"))
    path = Path(data_home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def clear_data_home(data_home=None):
    """Delete everything cached under :func:`get_data_home`.

    The folder is removed with all it holds: the prepared copies, the
    original files (downloaded or put there by the user) and the arrays
    converted from them. A later fetch downloads the originals again.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to delete. ``None`` means the default of
        :func:`get_data_home`: the ``SKJULE_DATA`` environment variable, or
        ``~/skjule_data`` when it is not set.
    """
    shutil.rmtree(get_data_home(data_home))


@dataclass(frozen=True)
class RemoteFile:
    """A file of a public data set: where it lives and how to recognise it.

    ``checksum`` is ``"sha256:<hex>"`` or ``"md5:<hex>"``; ``None`` means no
    checksum is published for it: the first download's sha256 is recorded
    next to it and later downloads must match it (trust on first use). Such
    a file is recorded only once its archive reads through intact (see
    :func:`archive_damage`): a download cut short without a Content-Length
    header would otherwise have its truncated bytes recorded as the truth.
    """

    filename: str
    url: str
    checksum: str | None


def file_digest(path, algorithm="sha256"):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def archive_damage(path, filename=None):
    """Why the archive at ``path`` is damaged, or None when it reads through.

    The format comes from ``filename`` (default: ``path``'s name): ``.zip``
    (the central directory and every member's CRC), ``.gz`` or ``.bz2`` (the
    whole stream), ``.mat`` (read through by :func:`scipy.io.loadmat`);
    other files are not checked (None).
    """
    name = str(filename if filename is not None else path).lower()
    if name.endswith(".mat"):
        from scipy.io import loadmat

        try:
            loadmat(path)
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001
            # scipy raises OSError, ValueError, IndexError, zlib.error,
            # MatReadError, NotImplementedError (v7.3 files), ... for a file
            # it cannot read through: all mean "not an intact MAT-file".
            return f"{type(exc).__name__}: {exc}"
        return None
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            return None if bad is None else f"member {bad} fails its CRC check"
        opener = gzip.open if name.endswith(".gz") else bz2.open if name.endswith(".bz2") else None
        if opener is not None:
            with opener(path, "rb") as f:
                while f.read(_CHUNK):
                    pass
        return None
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        zlib.error,
        ValueError,
    ) as exc:
        return f"{type(exc).__name__}: {exc}"


def _recorded(remote, folder):
    return folder / (remote.filename + ".sha256")


def _expected(remote, folder):
    if remote.checksum is not None:
        algorithm, _, digest = remote.checksum.partition(":")
        return algorithm, digest.lower()
    recorded = _recorded(remote, folder)
    if recorded.exists():
        return "sha256", recorded.read_text().split()[0]
    return None, None


def _local_problem(path, remote, folder):
    """What is wrong with the file already at ``path``, or None when it is good.

    A file that matches a pinned checksum is good. A file without a
    published checksum must match the sha256 recorded on first use (when
    there is one) and read through intact; a record that a damaged file
    matches was taken from a damaged file and is deleted.
    """
    algorithm, digest = _expected(remote, folder)
    if algorithm is not None:
        got = file_digest(path, algorithm)
        if got != digest:
            if remote.checksum is not None:
                return (
                    f"{path} does not match its checksum: its {algorithm} is {got}, not "
                    f"the pinned {digest}, so it is damaged or not the original file."
                )
            record = _recorded(remote, folder)
            return (
                f"{path} does not match its checksum: its sha256 is {got}, not the "
                f"{digest} recorded on first use in {record}, so it is damaged or not "
                f"the file first seen (if you trust this copy, delete {record})."
            )
        if remote.checksum is not None:
            return None
    damage = archive_damage(path)
    if damage is not None:
        _recorded(remote, folder).unlink(missing_ok=True)
        return f"{path} is a damaged archive ({damage})."
    return None


def _record(remote, folder, digest, what):
    _atomic_write_text(_recorded(remote, folder), f"{digest}  {remote.filename}\n")
    warnings.warn(
        f"No checksum is published for {remote.url}; recorded the sha256 of {what} "
        f"({digest}) in {_recorded(remote, folder)}, and later copies must match it.",
        stacklevel=4,
    )


def fetch_file(remote, folder, *, download_if_missing=True, timeout=60):
    """Path of ``remote`` in ``folder``, downloading and verifying it if needed.

    A file already at ``folder / remote.filename`` (a copy the user put
    there, or an earlier download) is verified as a download would be and
    used without any download. Without a published checksum, the sha256 of
    the first intact copy, downloaded or not, is recorded next to it (trust
    on first use). A file that fails verification is kept until a verified
    download replaces it.

    Raises
    ------
    OSError
        When the file is missing, or fails verification, and
        ``download_if_missing`` is False; when the download fails (offline,
        HTTP error); when the downloaded bytes do not match the pinned or
        recorded checksum; or when a file without a published checksum
        arrives as a damaged (truncated) archive.
    """
    folder = Path(folder)
    path = folder / remote.filename
    if path.exists():
        problem = _local_problem(path, remote, folder)
        if problem is None:
            if remote.checksum is None and not _recorded(remote, folder).exists():
                _record(remote, folder, file_digest(path), f"the copy at {path}")
            return path
        if not download_if_missing:
            raise OSError(
                f"{problem} Replace it with a good copy of {remote.url}, or allow "
                "the download (download_if_missing=True) to replace it."
            )
        warnings.warn(f"{problem} Downloading it again.", stacklevel=3)
    elif not download_if_missing:
        raise OSError(
            f"{path} is not there and download_if_missing=False. "
            f"Download {remote.url} to that path, or allow the download."
        )

    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{remote.filename}.", suffix=".part")
    try:
        sha = hashlib.sha256()
        algorithm, digest = _expected(remote, folder)
        other = hashlib.new(algorithm) if algorithm not in (None, "sha256") else None
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(remote.url, timeout=timeout) as response,
            ):
                expected_size = response.headers.get("Content-Length")
                received = 0
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    received += len(chunk)
                    sha.update(chunk)
                    if other is not None:
                        other.update(chunk)
                if expected_size is not None and received != int(expected_size):
                    raise OSError(f"the transfer stopped after {received} of {expected_size} bytes")
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OSError(
                f"Could not download {remote.url}: {reason}. Check the network "
                f"connection, or put the file at {path} yourself."
            ) from exc
        if remote.checksum is None:  # nothing pinned: the archive must read through
            damage = archive_damage(tmp, remote.filename)
            if damage is not None:
                raise OSError(
                    f"{remote.url} downloaded, but the archive is damaged ({damage}): "
                    "the transfer was probably cut short. Nothing was saved or "
                    "recorded; try again."
                )
        got = sha.hexdigest() if other is None else other.hexdigest()
        if algorithm is not None and got != digest:
            if remote.checksum is not None:
                raise OSError(
                    f"{remote.url} downloaded, but its {algorithm} is {got}, not the "
                    f"pinned {digest}: the file is corrupted or has changed upstream. "
                    "Nothing was saved; try again later or report it."
                )
            record = _recorded(remote, folder)
            raise OSError(
                f"{remote.url} downloaded, but its sha256 is {got}, not the {digest} "
                f"recorded on first use in {record}: the file is corrupted or has "
                "changed upstream. Nothing was saved; try again later, or delete "
                "that record if you trust the new file."
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if remote.checksum is None and not _recorded(remote, folder).exists():
        _record(remote, folder, sha.hexdigest(), "this first download")
    return path


def _atomic_write_text(path, text):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_arrays(path, **arrays):
    """``np.savez_compressed`` to ``path`` atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_arrays(path, keys):
    """The arrays ``keys`` of the cache ``path``, or ``None`` if it is unusable."""
    try:
        with np.load(path, allow_pickle=False) as d:
            return {k: d[k] for k in keys}
    except Exception as exc:  # OSError, ValueError, KeyError, zipfile.BadZipFile, ...
        warnings.warn(f"Ignoring the unreadable cache {path} ({exc}); rebuilding it.", stacklevel=3)
        return None
