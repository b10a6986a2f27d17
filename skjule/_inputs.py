"""Input preparation shared by the network estimators: image shapes and scaling."""

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._validation import check_features

__all__ = ["input_scaling", "network_input", "new_network_input", "resolve_image_shape"]


def resolve_image_shape(sample_shape, image_shape):
    """(H, W, C) for image input, None for plain vectors."""
    if len(sample_shape) == 2:
        native = (sample_shape[0], sample_shape[1], 1)
    elif len(sample_shape) == 3:
        native = tuple(sample_shape)
    else:
        native = None
    if image_shape is None:
        return native
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"image_shape must be (height, width) or (height, width, channels); got {image_shape!r}."
        )
    n_features = int(np.prod(sample_shape))
    if native is not None and native != shape:
        raise ValueError(
            f"image_shape={image_shape!r} does not match the images' shape {tuple(sample_shape)}."
        )
    if int(np.prod(shape)) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} holds {int(np.prod(shape))} values but each sample "
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
