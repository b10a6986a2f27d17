"""Period checkpoints of long fits: atomic files, keyed by data and parameters.

A fit with ``checkpoint_dir`` writes one file at the end of every period
(``<dir>/<ClassName>-<fingerprint>.pt``). The fingerprint hashes the training
data and every parameter that changes the result, so a second call with the
same arguments finds the file and resumes from the last completed period,
while a call with other data or parameters starts afresh (and never reads a
checkpoint that does not belong to it). Files are written to a temporary name
and renamed, so a fit killed while writing leaves the previous checkpoint
intact, never a truncated one.

The files are read with ``torch.load(weights_only=False)``: only point
``checkpoint_dir`` at a folder whose files you (or your own fits) wrote.
"""

import hashlib
import os
import tempfile
import warnings

import numpy as np
import torch

__all__ = ["Checkpointer", "fingerprint", "module_digest"]

_FORMAT = 1


def fingerprint(estimator, X, ignore=("verbose", "checkpoint_dir", "n_jobs", "device"),
                extra=b""):
    """Hex digest of ``X``, the estimator's result-relevant parameters and ``extra``
    (bytes that parameters' reprs do not show, e.g. a fitted sub-estimator's weights)."""
    h = hashlib.sha256(extra)
    h.update(type(estimator).__name__.encode())
    params = estimator.get_params(deep=False)
    for key in sorted(params):
        if key in ignore:
            continue
        value = params[key]
        if isinstance(value, np.random.RandomState):
            value = "RandomState"  # its state is saved in the checkpoint itself
        h.update(f"{key}={value!r};".encode())
    X = np.ascontiguousarray(X)
    h.update(f"{X.dtype.str}{X.shape}".encode())
    h.update(memoryview(X).cast("B"))
    return h.hexdigest()[:20]


def module_digest(module):
    """Bytes that identify a torch module's weights (for ``fingerprint``'s ``extra``)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.digest()


class Checkpointer:
    """Save and load the state of one fit in ``directory``."""

    def __init__(self, directory, estimator, X, extra=b""):
        self.directory = os.fspath(directory)
        self.key = fingerprint(estimator, X, extra=extra)
        self.path = os.path.join(self.directory, f"{type(estimator).__name__}-{self.key}.pt")
        try:  # fail now, not after the first hour of training
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise ValueError(
                f"checkpoint_dir={self.directory!r} cannot be created: {exc}"
            ) from exc
        if not os.access(self.directory, os.W_OK):
            raise ValueError(f"checkpoint_dir={self.directory!r} is not writable.")

    def load(self, map_location):
        """The saved state, or None when there is none (or it cannot be read)."""
        if not os.path.exists(self.path):
            return None
        try:
            state = torch.load(self.path, map_location=map_location, weights_only=False)
        except Exception as exc:  # a damaged file must not stop the fit
            warnings.warn(
                f"Ignoring unreadable checkpoint {self.path} ({type(exc).__name__}: {exc}); "
                "starting the fit from the beginning.", RuntimeWarning, stacklevel=3,
            )
            return None
        if not isinstance(state, dict) or state.get("format") != _FORMAT \
                or state.get("key") != self.key:
            warnings.warn(f"Ignoring checkpoint {self.path} written by another version.",
                          RuntimeWarning, stacklevel=3)
            return None
        return state

    def save(self, state):
        """Write ``state`` atomically (temporary file, fsync, rename)."""
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(dict(state, format=_FORMAT, key=self.key), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
