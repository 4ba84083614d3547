"""Metrics against hand-computed small examples and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gender_cli.train.metrics import (
    average_ranks, choose_threshold, classification_metrics, confusion_matrix, roc_auc, roc_curve,
)


def test_confusion_and_per_class_by_hand():
    # true:  M M M M F F F      predicted: M M M F F F M
    y_true = [0, 0, 0, 0, 1, 1, 1]
    p_female = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9, 0.4]
    m = classification_metrics(y_true, p_female, threshold=0.5)
    assert m["confusion_matrix"]["rows_true_cols_predicted"] == [[3, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(5 / 7)
    male, female = m["per_class"]["male"], m["per_class"]["female"]
    assert male["precision"] == pytest.approx(3 / 4) and male["recall"] == pytest.approx(3 / 4)
    assert male["specificity"] == pytest.approx(2 / 3) and male["support"] == 4
    assert female["precision"] == pytest.approx(2 / 3) and female["recall"] == pytest.approx(2 / 3)
    assert female["f1"] == pytest.approx(2 / 3) and female["specificity"] == pytest.approx(3 / 4)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    # AUC by hand: of the 12 (female, male) pairs, the female scores higher in 11
    # (0.4 < 0.6 is the only loss)
    assert m["roc_auc"] == pytest.approx(11 / 12)


def test_threshold_moves_predictions():
    m = classification_metrics([0, 1], [0.3, 0.35], threshold=0.32)
    assert m["accuracy"] == 1.0 and m["accuracy_at_0.5"] == 0.5


def test_auc_with_ties_by_hand():
    # pairs: female 0.5 vs male 0.5 tie (1/2), female 0.5 vs male 0.2 win, female 0.9 wins both
    assert roc_auc([0, 0, 1, 1], [0.5, 0.2, 0.5, 0.9]) == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([1, 1], [0.1, 0.2]) is None


def test_auc_matches_pair_counting():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60), 1)  # many ties
    pos, neg = scores[y == 1], scores[y == 0]
    brute = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)])
    assert roc_auc(y, scores) == pytest.approx(brute)
    fpr, tpr, _ = roc_curve(y, scores)
    assert np.trapezoid(tpr, fpr) == pytest.approx(brute)  # the trapezoid area equals Mann-Whitney
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1


def test_average_ranks():
    assert average_ranks([3, 1, 3, 2]).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_choose_threshold_separates_and_prefers_half():
    # perfectly separable anywhere in (0.3, 0.8): the rule picks the midpoint nearest 0.5
    t = choose_threshold([0, 0, 1, 1], [0.1, 0.3, 0.8, 0.9])
    assert t == pytest.approx(0.55)
    # imbalanced: balanced accuracy, not accuracy, decides
    y = [0] * 8 + [1] * 2
    s = [0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.45, 0.6, 0.5, 0.7]
    t = choose_threshold(y, s)
    pred = (np.array(s) >= t).astype(int)
    assert (pred[np.array(y) == 1] == 1).all()
    assert choose_threshold([1, 1], [0.2, 0.3]) == 0.5


def test_confusion_matrix_counts():
    assert confusion_matrix([0, 1, 1, 1], [1, 1, 0, 1]).tolist() == [[0, 1], [1, 2]]
