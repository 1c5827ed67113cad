import math

import numpy as np
import pytest

from mitodet.classify.metrics import auc, best_threshold, confusion, scores


def test_scores_by_hand():
    p = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1])
    y = np.array([1, 1, 1, 0, 0, 0], bool)
    s = scores(p, y, 0.5)
    assert s["confusion"] == {"tp": 2, "fn": 1, "fp": 1, "tn": 2}
    assert s["sensitivity"] == pytest.approx(2 / 3) and s["specificity"] == pytest.approx(2 / 3)
    assert s["balanced_accuracy"] == pytest.approx(2 / 3)
    assert s["auroc"] == pytest.approx(8 / 9)  # 8 of the 9 (atypical, normal) pairs ordered right


def test_auc_ties_and_one_class():
    assert auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_best_threshold_maximises_balanced_accuracy():
    p = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.1])
    y = np.array([1, 1, 0, 1, 0, 0, 0], bool)
    t, ba = best_threshold(p, y)
    assert ba == max(scores(p, y, c)["balanced_accuracy"] for c in np.linspace(0, 1, 1001))
    assert scores(p, y, t)["balanced_accuracy"] == ba


def test_best_threshold_weighs_groups_equally():
    # a large group wants a high threshold, a small one a low one; the mean of the two decides
    p = np.array([0.9, 0.8, 0.1, 0.05, 0.3, 0.2, 0.25, 0.02])
    y = np.array([1, 0, 0, 0, 1, 0, 1, 0], bool)
    g = ["big"] * 4 + ["small"] * 4
    t, ba = best_threshold(p, y, g)
    per = [scores(p[:4], y[:4], t)["balanced_accuracy"], scores(p[4:], y[4:], t)["balanced_accuracy"]]
    assert ba == pytest.approx(np.mean(per))
    assert confusion(p, y, t)["tp"] >= 1
