"""Period checkpoints of long fits: atomic files that hold data only, keyed by the fit.

A fit with ``checkpoint_dir`` writes one file at the end of every period
(``<dir>/<ClassName>-<key>.pt``). The key identifies exactly one fit: it hashes

- the training data (dtype, shape and bytes),
- every parameter that changes the result (not ``verbose``, ``n_jobs``,
  ``device`` or ``checkpoint_dir``), by value,
- the state of the random generator when ``fit`` starts (so
  ``RandomState(0)`` and ``RandomState(1)`` never share a file, and
  ``random_state=None`` - a new seed every time - never resumes), and
- the network the fit starts from: its architecture and initial weights
  (so a callable or module ``backbone`` resumes when it builds the same
  network, and not otherwise).

A second call with the same arguments therefore finds the file and resumes
after the last completed period; any other call starts afresh and never reads
a file that does not belong to it. Files are written to a temporary name and
renamed, so a fit killed while writing leaves the previous checkpoint intact.

Safety: a checkpoint holds only tensors, NumPy arrays (stored as raw bytes in
a tensor) and plain Python values (numbers, strings, lists, tuples, dicts),
and is read with ``torch.load(weights_only=True)``, whose unpickler refuses
anything else. A planted or foreign file is therefore never executed: it is
ignored with a ``RuntimeWarning`` that names it, and the fit starts afresh.
"""

import hashlib
import os
import pickle
import tempfile
import warnings

import numpy as np
import torch

__all__ = [
    "Checkpointer",
    "fingerprint",
    "module_digest",
    "random_state_digest",
    "to_plain",
    "from_plain",
]

_FORMAT = 2
_NDARRAY = "__ndarray__"
_PLAIN = (type(None), bool, int, float, str, bytes)


# --------------------------------------------------------------- plain values
def to_plain(obj):
    """``obj`` with every NumPy value turned into tensors and plain values.

    What comes out is what ``torch.load(weights_only=True)`` accepts:
    tensors, ``None``, bools, numbers, strings, and lists, tuples and dicts
    of those. An ndarray becomes a small dict holding its raw bytes in a
    ``uint8`` tensor, its dtype and shape (any numeric dtype round-trips
    exactly). Anything else (an estimator, a module, a function) is a
    ``TypeError``: such objects are never written into a checkpoint.
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu")
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("object arrays cannot be stored in a checkpoint")
        arr = np.ascontiguousarray(obj)
        raw = torch.from_numpy(arr.reshape(-1).view(np.uint8).copy())
        return {_NDARRAY: raw, "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    raise TypeError(
        f"{type(obj).__name__} cannot be stored in a checkpoint "
        "(only tensors, arrays and plain values)"
    )


def from_plain(obj):
    """Undo :func:`to_plain` (arrays come back as writable ndarrays)."""
    if isinstance(obj, dict):
        if _NDARRAY in obj:
            raw = obj[_NDARRAY].numpy()
            return raw.view(np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(from_plain(v) for v in obj)
    return obj


# ----------------------------------------------------------------- identity
def random_state_digest(rng):
    """Bytes that identify a ``RandomState``'s current state.

    Take it when ``fit`` starts, before anything is drawn.
    """
    name, keys, pos, has_gauss, cached = rng.get_state()
    h = hashlib.sha256(f"{name};{pos};{has_gauss};{cached!r};".encode())
    h.update(np.ascontiguousarray(keys).tobytes())
    return h.digest()


def module_digest(module):
    """Bytes that identify a torch module: its architecture and its weights."""
    h = hashlib.sha256(repr(module).encode())
    for sub in module.modules():
        h.update(f"{type(sub).__module__}.{type(sub).__qualname__};".encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.digest()


def _param_token(value):
    """A text for one parameter value that holds no memory address."""
    from sklearn.base import BaseEstimator

    if isinstance(value, np.random.RandomState):
        return "RandomState"  # identified by random_state_digest
    if isinstance(value, BaseEstimator):
        inner = value.get_params(deep=False)
        return (
            type(value).__name__
            + "("
            + ",".join(f"{k}={_param_token(inner[k])}" for k in sorted(inner))
            + ")"
        )
    if isinstance(value, torch.nn.Module) or (callable(value) and not isinstance(value, type)):
        # identified by the network it builds (module_digest of the fit's network)
        return f"<{type(value).__module__}.{getattr(value, '__qualname__', type(value).__name__)}>"
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + "(" + ",".join(_param_token(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k!r}:{_param_token(value[k])}" for k in sorted(value)) + "}"
    return repr(value)


def fingerprint(estimator, X, ignore=("verbose", "checkpoint_dir", "n_jobs", "device"), extra=b""):
    """Hex digest of ``X``, the estimator's result-relevant parameters and ``extra``.

    ``extra`` carries what parameters do not show: the random generator's
    starting state (:func:`random_state_digest`) and the starting network's
    architecture and weights (:func:`module_digest`).
    """
    h = hashlib.sha256(extra)
    h.update(f"format={_FORMAT};{type(estimator).__name__};".encode())
    params = estimator.get_params(deep=False)
    for key in sorted(params):
        if key in ignore:
            continue
        h.update(f"{key}={_param_token(params[key])};".encode())
    X = np.ascontiguousarray(X)
    h.update(f"{X.dtype.str}{X.shape}".encode())
    h.update(memoryview(X).cast("B"))
    return h.hexdigest()[:24]


# ------------------------------------------------------------------- files
class Checkpointer:
    """Save and load the state of one fit in ``directory``.

    Parameters
    ----------
    directory : str or path-like
        Created if missing; must be writable.
    estimator : BaseEstimator
        The estimator being fitted (its class name and parameters).
    X : ndarray
        The training data.
    extra : bytes
        See :func:`fingerprint`.
    """

    def __init__(self, directory, estimator, X, extra=b""):
        self.directory = os.fspath(directory)
        self.key = fingerprint(estimator, X, extra=extra)
        self.path = os.path.join(self.directory, f"{type(estimator).__name__}-{self.key}.pt")
        try:  # fail now, not after the first hour of training
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"checkpoint_dir={self.directory!r} cannot be created: {exc}") from exc
        if not os.access(self.directory, os.W_OK):
            raise ValueError(f"checkpoint_dir={self.directory!r} is not writable.")
        if estimator.get_params(deep=False).get("random_state", 0) is None:
            warnings.warn(
                "checkpoint_dir is set but random_state=None: every fit draws a new seed, "
                "so a killed fit cannot be resumed. Pass an int random_state to make the "
                "fit resumable.",
                UserWarning,
                stacklevel=3,
            )

    def _ignore(self, why):
        warnings.warn(
            f"Ignoring checkpoint {self.path}: {why}; starting the fit from the beginning.",
            RuntimeWarning,
            stacklevel=4,
        )

    def load(self, map_location):
        """The saved state (arrays as ndarrays), or None when there is none.

        A file that is not a regular file, holds anything but tensors and
        plain values, cannot be read, or belongs to another fit or format is
        ignored with a ``RuntimeWarning``; nothing in it is executed.
        """
        if not os.path.lexists(self.path):
            return None
        if os.path.islink(self.path) or not os.path.isfile(self.path):
            self._ignore("it is not a regular file")
            return None
        try:
            state = torch.load(self.path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as exc:
            # torch's message suggests weights_only=False: never show that advice
            found = [line.strip() for line in str(exc).splitlines() if "Unsupported global" in line]
            what = (
                f"it holds objects other than tensors and plain values ({found[0]})"
                if found
                else "it is unreadable or not a skjule checkpoint"
            )
            self._ignore(f"{what}; nothing in it was executed")
            return None
        except Exception as exc:  # a damaged file must not stop the fit
            self._ignore(f"it is unreadable ({type(exc).__name__}: {exc})")
            return None
        if (
            not isinstance(state, dict)
            or state.get("format") != _FORMAT
            or state.get("key") != self.key
        ):
            self._ignore("it was written by another version or for another fit")
            return None
        return from_plain(state["state"])

    def save(self, state):
        """Write ``state`` (tensors, arrays, plain values) atomically."""
        payload = {"format": _FORMAT, "key": self.key, "state": to_plain(state)}
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
