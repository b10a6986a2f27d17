"""Input preparation shared by the network estimators: image shapes and scaling."""

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._validation import check_features

__all__ = [
    "check_image_shape",
    "input_scaling",
    "network_input",
    "new_network_input",
    "resolve_image_shape",
]


def check_image_shape(image_shape, name="image_shape"):
    """``image_shape`` as a tuple of 2 or 3 positive Python ints, or ``ValueError``.

    Each value must be an integer: a Python or numpy int (not a bool). Floats
    are refused even when whole (``28.0``), like every integer parameter of
    scikit-learn and of skjule (``n_clusters=4.0`` is refused too): a float
    usually comes from a computation such as ``np.sqrt(n_features)`` whose
    result should be checked, and ``int()`` would silently truncate ``4.5``
    to 4. Pass ``int(...)`` values.
    """
    try:
        values = tuple(image_shape)
    except TypeError:
        raise ValueError(
            f"{name} must be (height, width) or (height, width, channels); got {image_shape!r}."
        ) from None
    if len(values) not in (2, 3):
        raise ValueError(
            f"{name} must be (height, width) or (height, width, channels); got "
            f"{image_shape!r} ({len(values)} values)."
        )
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise ValueError(
                f"{name} must hold integers; got {image_shape!r}, whose value {v!r} "
                f"is a {type(v).__name__}. Pass ints, e.g. {name}=(28, 28)."
            )
        if v < 1:
            raise ValueError(f"{name} must hold positive integers; got {image_shape!r}.")
    return tuple(int(v) for v in values)


def resolve_image_shape(sample_shape, image_shape, name="image_shape"):
    """(H, W, C) for image input, None for plain vectors.

    ``image_shape`` (see :func:`check_image_shape`) must match the samples:
    their own shape when they are images, their number of features when
    they are flat rows.
    """
    if len(sample_shape) == 2:
        native = (sample_shape[0], sample_shape[1], 1)
    elif len(sample_shape) == 3:
        native = tuple(sample_shape)
    else:
        native = None
    if image_shape is None:
        return native
    shape = check_image_shape(image_shape, name)
    if len(shape) == 2:
        shape = shape + (1,)
    n_features = int(np.prod(sample_shape))
    if native is not None and native != shape:
        raise ValueError(
            f"{name}={image_shape!r} does not match the images' shape {tuple(sample_shape)}."
        )
    if int(np.prod(shape)) != n_features:
        raise ValueError(
            f"{name}={image_shape!r} holds {int(np.prod(shape))} values but each sample "
            f"has {n_features} features; pass the (height, width[, channels]) of the images."
        )
    return shape


def input_scaling(X):
    """``(scale, mean, std)`` that standardise ``X / scale`` (one value each for all
    features, like the authors' global mean/std). Dividing by the largest
    magnitude first keeps data near the float range (1e300) finite in float32."""
    scale = float(np.max(np.abs(X))) if X.size else 1.0
    scale = scale if scale > 0 else 1.0
    Xs = X / scale
    mean = float(Xs.mean())
    std = float(Xs.std())
    return scale, mean, (std if std > 0 else 1.0)


def network_input(X_flat, image_shape, scale, mean, std):
    """CPU float32 tensor for the network: (n, C, H, W) for images, (n, d) otherwise."""
    with np.errstate(over="ignore", invalid="ignore"):
        Xs = ((np.asarray(X_flat) / scale - mean) / std).astype(np.float32)
    if not np.isfinite(Xs).all():
        raise ValueError(
            "X holds values too large for the network (beyond float32 after the training "
            f"data's scaling by {scale:.3g}); rescale X like the training data."
        )
    import torch  # local: the shape checks above serve torch-free code too

    t = torch.from_numpy(np.ascontiguousarray(Xs))
    if image_shape is None:
        return t
    h, w, c = image_shape
    return t.reshape(-1, h, w, c).permute(0, 3, 1, 2).contiguous()


def new_network_input(estimator, X):
    """Validate new samples for a fitted network estimator and prepare its input.

    Uses the estimator's ``n_features_in_``, ``sample_shape_``, ``image_shape_``
    and ``input_scaling_`` (set by its ``fit``).
    """
    check_is_fitted(estimator, "network_")
    X, sample_shape = check_features(estimator, X, reset=False, min_samples=1)
    if len(sample_shape) > 1 and tuple(sample_shape) != estimator.sample_shape_:
        raise ValueError(
            f"X holds samples of shape {tuple(sample_shape)}, but the model was fitted "
            f"on samples of shape {estimator.sample_shape_}."
        )
    return network_input(X, estimator.image_shape_, *estimator.input_scaling_)
