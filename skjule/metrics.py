"""Clustering metrics used in the deep-clustering literature."""

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics.cluster import contingency_matrix

__all__ = ["clustering_accuracy", "matched_labels"]


def _check_label_pair(labels_true, labels_pred):
    """Both label arrays, checked to be 1-D, non-empty and of one length."""
    labels_true = np.asarray(labels_true)
    labels_pred = np.asarray(labels_pred)
    if labels_true.shape != labels_pred.shape or labels_true.ndim != 1:
        raise ValueError(
            "labels_true and labels_pred must be 1-D of the same length; got shapes "
            f"{labels_true.shape} and {labels_pred.shape}."
        )
    if labels_true.size == 0:
        raise ValueError("labels_true and labels_pred are empty.")
    return labels_true, labels_pred


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
    labels_true, labels_pred = _check_label_pair(labels_true, labels_pred)
    C = contingency_matrix(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(C, maximize=True)
    return float(C[rows, cols].sum() / labels_true.size)


def matched_labels(labels_true, labels_pred):
    """Cluster labels renamed to the classes they are matched with (Hungarian).

    The map of :func:`clustering_accuracy`: ``labels_true == matched_labels(...)``
    marks the samples it counts as correct, e.g. to compare the accuracy of
    confident and unsure predictions.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground-truth classes.
    labels_pred : array-like of shape (n_samples,)
        Cluster labels.

    Returns
    -------
    matched : ndarray of shape (n_samples,)
        The class each sample's cluster is matched with, of the dtype of
        ``labels_true``. Samples of clusters left without a class (more
        clusters than classes) are marked ``None`` (object dtype then).

    Examples
    --------
    >>> from skjule.metrics import matched_labels
    >>> matched_labels(["a", "a", "b", "b"], [1, 1, 0, 1]).tolist()
    ['a', 'a', 'b', 'a']
    """
    labels_true, labels_pred = _check_label_pair(labels_true, labels_pred)
    classes = np.unique(labels_true)
    clusters, inverse = np.unique(labels_pred, return_inverse=True)
    C = contingency_matrix(labels_true, labels_pred)  # classes x clusters, sorted
    rows, cols = linear_sum_assignment(C, maximize=True)
    if len(cols) == len(clusters):
        mapping = np.empty(len(clusters), dtype=labels_true.dtype)
    else:
        mapping = np.full(len(clusters), None, dtype=object)
    mapping[cols] = classes[rows]
    return mapping[inverse]
