"""Metrics: sklearn parity on random data, hand-computed imbalanced and 2-fold cases, bootstrap CIs, breakdowns."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from emollama.evaluation import metrics as M

sk = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(12))
def test_matches_sklearn_on_random_data(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    n = int(rng.integers(1, 400))
    t = rng.integers(0, k, n)
    p = np.where(rng.random(n) < 0.15, -1, rng.integers(0, k, n))  # ~15% unparseable
    assert M.war(t, p, k) == pytest.approx(sk.accuracy_score(t, p))
    with warnings.catch_warnings():  # sklearn warns about the -1 "class" having no true samples
        warnings.simplefilter("ignore")
        assert M.uar(t, p, k) == pytest.approx(sk.balanced_accuracy_score(t, p))
    labels = sorted(set(t.tolist()) | set(p[p >= 0].tolist()))
    assert M.macro_f1(t, p, k) == pytest.approx(sk.f1_score(t, p, labels=labels, average="macro", zero_division=0))
    np.testing.assert_array_equal(M.confusion_matrix(t, p, k), sk.confusion_matrix(t, p, labels=list(range(k))))
    recall = M.per_class_recall(t, p, k)
    present = np.isin(np.arange(k), t)
    np.testing.assert_allclose(recall[present], sk.recall_score(t, p, labels=np.flatnonzero(present), average=None))
    assert np.isnan(recall[~present]).all()


def test_imbalanced_uar_differs_from_war():
    t = [0] * 8 + [1] * 2
    p = [0] * 10  # always the majority class
    assert M.war(t, p, 2) == pytest.approx(0.8)
    assert M.uar(t, p, 2) == pytest.approx(0.5)
    assert M.macro_f1(t, p, 2) == pytest.approx((2 * 8 / (8 + 10) + 0.0) / 2)


def test_unparseable_is_wrong_and_counted_in_none_column():
    t, p = [0, 0, 1, 1], [0, -1, 1, -1]
    assert M.war(t, p, 2) == 0.5 and M.uar(t, p, 2) == 0.5
    np.testing.assert_array_equal(M.confusion_matrix(t, p, 2, include_none=True), [[1, 0, 1], [0, 1, 1]])
    m = M.compute_metrics(t, p, 2)
    assert m["n"] == 4 and m["n_no_prediction"] == 2


def test_absent_class_convention():
    # class 2 never occurs in the truth: excluded from UAR; predicted once, so it counts in macro-F1 with F1 = 0
    t, p = [0, 0, 1, 1], [0, 2, 1, 1]
    m = M.compute_metrics(t, p, 3)
    assert m["uar"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["classes_absent"] == [2] and np.isnan(m["per_class_recall"][2])
    f1_0, f1_1 = 2 * 1 / (2 + 1), 1.0
    assert m["macro_f1"] == pytest.approx((f1_0 + f1_1 + 0.0) / 3)


def test_fold_mean_vs_pooled_hand_computed():
    # fold A: t=[0,0,0,1] p=[0,0,0,0] -> WAR 3/4, UAR (1+0)/2; fold B: t=[0,1,1] p=[1,1,1] -> WAR 2/3, UAR (0+1)/2
    t = [0, 0, 0, 1, 0, 1, 1]
    p = [0, 0, 0, 0, 1, 1, 1]
    folds = ["A"] * 4 + ["B"] * 3
    r = M.fold_metrics(t, p, folds, 2)
    assert r["per_fold"]["A"]["war"] == pytest.approx(0.75) and r["per_fold"]["B"]["war"] == pytest.approx(2 / 3)
    assert r["fold_mean"]["war"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert r["fold_mean"]["uar"] == pytest.approx(0.5)
    # pooled: class 0 recall 3/4, class 1 recall 2/3
    assert r["pooled"]["war"] == pytest.approx(5 / 7)
    assert r["pooled"]["uar"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert r["fold_mean"]["uar"] != pytest.approx(r["pooled"]["uar"])


def test_fold_order_is_natural():
    r = M.fold_metrics([0] * 3, [0] * 3, [10, 2, 1], 1)
    assert list(r["per_fold"]) == ["1", "2", "10"]


def test_bootstrap_contains_point_and_is_deterministic():
    rng = np.random.default_rng(3)
    t = rng.integers(0, 7, 500)
    p = np.where(rng.random(500) < 0.6, t, rng.integers(-1, 7, 500))
    ci = M.bootstrap_ci(t, p, 7, n_boot=300, seed=5)
    point = M.compute_metrics(t, p, 7)
    for name in M.METRICS:
        lo, hi = ci[name]
        assert lo <= point[name] <= hi and hi - lo < 0.2
    assert ci == M.bootstrap_ci(t, p, 7, n_boot=300, seed=5)
    assert ci != M.bootstrap_ci(t, p, 7, n_boot=300, seed=6)


def test_fold_bootstrap_contains_fold_mean():
    rng = np.random.default_rng(4)
    t = rng.integers(0, 5, 600)
    p = np.where(rng.random(600) < 0.5, t, rng.integers(0, 5, 600))
    folds = rng.integers(1, 6, 600)
    ci = M.bootstrap_ci(t, p, 5, folds=folds, n_boot=200, seed=0)
    mean = M.fold_metrics(t, p, folds, 5)["fold_mean"]
    for name in M.METRICS:
        assert ci[name][0] <= mean[name] <= ci[name][1]


def test_batched_confusion_metrics_equal_one_by_one():
    rng = np.random.default_rng(0)
    cms = np.stack([M.confusion_matrix(rng.integers(0, 4, 50), rng.integers(-1, 4, 50), 4, include_none=True)
                    for _ in range(6)])
    batched = M.metrics_from_confusion(cms)
    for i, cm in enumerate(cms):
        single = M.metrics_from_confusion(cm)
        for name in M.METRICS:
            assert batched[name][i] == pytest.approx(float(single[name]))


def test_group_breakdown():
    t, p = [0, 1, 0, 1], [0, 1, 1, -1]
    g = M.group_breakdown(t, p, ["f", "f", "m", "m"], 2)
    assert list(g) == ["f", "m"] and g["f"]["war"] == 1.0 and g["m"]["war"] == 0.0 and g["m"]["n_no_prediction"] == 1


def test_bad_inputs_are_loud():
    with pytest.raises(ValueError, match="y_true holds ids outside 0..1"):
        M.war([0, 2], [0, 0], 2)
    with pytest.raises(ValueError, match="y_pred holds ids outside -1..1"):
        M.war([0, 1], [0, -2], 2)
    with pytest.raises(ValueError, match="same length"):
        M.war([0, 1], [0], 2)
    assert np.isnan(M.war([], [], 3))
