"""Download, verify and cache: the machinery behind the fetchers.

Every file goes to a temporary name in the destination folder and is moved
into place (``os.replace``, atomic on POSIX and Windows) only after its
checksum has been verified, so an interrupted or corrupted download never
leaves a file that a later call would load as valid. A file without a
published checksum is verified by reading its archive format (ZIP, gzip,
bz2) through, and only an intact one is kept and has its sha256 recorded.
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
    """Folder where the fetchers cache downloads and converted arrays.

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
    """Delete everything cached under :func:`get_data_home`."""
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
    whole stream); other files are not checked (None).
    """
    name = str(filename if filename is not None else path).lower()
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


def _verify(path, remote, folder):
    """True when ``path`` has the expected checksum (or none is known yet)."""
    algorithm, digest = _expected(remote, folder)
    if algorithm is None:
        return True
    return file_digest(path, algorithm) == digest


def fetch_file(remote, folder, *, download_if_missing=True, timeout=60):
    """Path of ``remote`` in ``folder``, downloading and verifying it if needed.

    Raises
    ------
    OSError
        When the file is missing and ``download_if_missing`` is False, when
        the download fails (offline, HTTP error), when the downloaded bytes
        do not match the pinned checksum, or when a file without a published
        checksum arrives as a damaged (truncated) archive.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / remote.filename
    if path.exists():
        if not _verify(path, remote, folder):
            warnings.warn(
                f"{path} does not match its checksum; downloading it again.", stacklevel=3
            )
            path.unlink()
        elif remote.checksum is None and (damage := archive_damage(path)) is not None:
            # A damaged file kept before its archive was verified: it and any
            # sha256 recorded from it go, so a good download can replace them.
            warnings.warn(
                f"{path} is a damaged archive ({damage}); deleting it and "
                "its recorded sha256, and downloading it again.",
                stacklevel=3,
            )
            path.unlink()
            _recorded(remote, folder).unlink(missing_ok=True)
        else:
            return path
    if not download_if_missing:
        raise OSError(
            f"{path} is not there and download_if_missing=False. "
            f"Download {remote.url} to that path, or allow the download."
        )

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
            raise OSError(
                f"{remote.url} downloaded, but its {algorithm} is {got}, not the "
                f"pinned {digest}: the file is corrupted or has changed upstream. "
                "Nothing was saved; try again later or report it."
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if remote.checksum is None and not _recorded(remote, folder).exists():
        _atomic_write_text(_recorded(remote, folder), f"{sha.hexdigest()}  {remote.filename}\n")
        warnings.warn(
            f"No checksum is published for {remote.url}; recorded the sha256 of this "
            f"first download ({sha.hexdigest()}) and later downloads must match it.",
            stacklevel=3,
        )
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
