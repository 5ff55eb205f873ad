import numpy as np
import pytest

from sam4ir.segmentation_check import matching_miou


def test_identical_partitions_with_other_ids_score_one():
    clean = np.repeat(np.array([[1, 1, 2, 2, 3, 3]]), 4, axis=0)
    assert matching_miou(clean * 7 + 5, clean) == 1.0


def test_matching_miou_by_hand():
    clean = np.array([[1, 1, 2, 2]])
    restored = np.array([[4, 9, 9, 9]])
    # segment 1: best IoU = |{0}|/|{0,1}| = 0.5 (with id 4) or |{1}|/|{0,1,2,3}| = 0.25 -> 0.5
    # segment 2: with id 9: 2/3
    assert matching_miou(restored, clean) == pytest.approx((0.5 + 2 / 3) / 2)


def test_unlabelled_clean_pixels_are_ignored_and_shapes_checked():
    clean = np.array([[0, 0, 1, 1]])
    assert matching_miou(np.array([[5, 6, 7, 7]]), clean) == 1.0
    assert np.isnan(matching_miou(np.zeros((1, 4), int), np.zeros((1, 4), int)))
    with pytest.raises(ValueError, match="shape"):
        matching_miou(np.zeros((2, 2), int), np.zeros((2, 3), int))
