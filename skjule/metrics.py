"""Clustering metrics used in the deep-clustering literature."""

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics.cluster import contingency_matrix

__all__ = ["clustering_accuracy"]


def clustering_accuracy(labels_true, labels_pred):
    """Accuracy under the best one-to-one map of clusters to classes (Hungarian).

    ACC = max over one-to-one maps m of ``mean(labels_true == m(labels_pred))``;
    with more clusters than classes the extra clusters count as errors.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground-truth classes.
    labels_pred : array-like of shape (n_samples,)
        Cluster labels.

    Returns
    -------
    acc : float
        In [0, 1].

    Examples
    --------
    >>> from skjule.metrics import clustering_accuracy
    >>> clustering_accuracy([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    labels_true = np.asarray(labels_true)
    labels_pred = np.asarray(labels_pred)
    if labels_true.shape != labels_pred.shape or labels_true.ndim != 1:
        raise ValueError(
            "labels_true and labels_pred must be 1-D of the same length; got shapes "
            f"{labels_true.shape} and {labels_pred.shape}."
        )
    if labels_true.size == 0:
        raise ValueError("labels_true and labels_pred are empty.")
    C = contingency_matrix(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(C, maximize=True)
    return float(C[rows, cols].sum() / labels_true.size)
