import math

from mitodet.evaluate.matching import best_threshold, match_points, score, score_detection


def test_greedy_in_ground_truth_order_not_optimal():
    # GT 0 takes its nearest prediction (p1) although p1 is GT 1's only hit:
    # an optimal assignment would match both, the official greedy rule matches one.
    gt = [(0, 0), (10, 0)]
    pred = [(-9, 0), (5, 0)]
    assert list(match_points(gt, pred, radius=6)) == [1, -1]
    s = score_detection(gt, pred, radius=6)
    assert (s.true_positives, s.false_negatives, s.false_positives) == (1, 1, 1)


def test_radius_is_inclusive_and_one_to_one():
    assert score_detection([(0, 0)], [(3, 4)], radius=5).true_positives == 1
    assert score_detection([(0, 0)], [(3, 4.001)], radius=5).true_positives == 0
    # two predictions on one GT: 1 TP, 1 FP; one prediction for two GTs: 1 TP, 1 FN
    s = score_detection([(0, 0)], [(1, 0), (0, 1)], radius=5)
    assert (s.true_positives, s.false_positives) == (1, 1)
    s = score_detection([(0, 0), (1, 0)], [(0.5, 0)], radius=5)
    assert (s.true_positives, s.false_negatives) == (1, 1)


def test_empty_sides():
    s = score_detection([], [(1, 1)], radius=5)
    assert (s.true_positives, s.false_negatives, s.false_positives) == (0, 0, 1)
    s = score_detection([(1, 1)], [], radius=5)
    assert (s.true_positives, s.false_negatives, s.false_positives) == (0, 1, 0)


def test_pooled_f1_is_not_mean_of_images():
    truth = {"a": [(0, 0)], "b": [(0, 0), (50, 50), (100, 100)]}
    pred = {"a": [(0, 0, 0.9)], "b": [(200, 200, 0.8)]}
    s = score(truth, pred, radius=30)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 3)
    assert math.isclose(s["f1"], 2 / (2 + 1 + 3), rel_tol=1e-5)


def test_threshold_and_best_threshold():
    truth = {"a": [(0, 0), (100, 0)]}
    pred = {"a": [(0, 0, 0.9), (500, 0, 0.7), (100, 0, 0.6), (900, 0, 0.2)]}
    assert score(truth, pred, 30, threshold=0.65)["tp"] == 1
    best = best_threshold(truth, pred, 30)
    # t=0.6 keeps 2 TP + 1 FP: F1 = 0.8, the maximum
    assert best["threshold"] == 0.6
    assert math.isclose(best["f1"], 0.8, rel_tol=1e-5)
    assert len(best["curve"]) == 4
