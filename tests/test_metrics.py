"""skjule.metrics: clustering accuracy and the Hungarian map behind it."""

import numpy as np
import pytest

from skjule.metrics import clustering_accuracy, matched_labels


def test_matched_labels_rename_clusters_to_their_classes():
    y = np.array(["a", "a", "b", "b", "c"])
    labels = np.array([7, 7, 3, 7, 5])
    matched = matched_labels(y, labels)
    assert matched.tolist() == ["a", "a", "b", "a", "c"]
    # the samples it counts as correct are those clustering_accuracy counts
    assert np.mean(matched == y) == clustering_accuracy(y, labels) == 0.8


def test_clusters_beyond_the_classes_are_marked_none():
    matched = matched_labels([0, 0, 1, 1], [0, 1, 2, 2])
    assert matched.tolist() == [0, None, 1, 1]
    assert clustering_accuracy([0, 0, 1, 1], [0, 1, 2, 2]) == 0.75


@pytest.mark.parametrize("fn", [clustering_accuracy, matched_labels])
def test_bad_label_arrays_say_what_is_wrong(fn):
    with pytest.raises(ValueError, match="same length"):
        fn([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="empty"):
        fn([], [])
