from datetime import datetime, timezone

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fraudscore_training import performance as perf

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _d(tx, version, score, decision, at="2026-02-27T00:00:00Z", role="active"):
    return {
        "transaction_id": tx,
        "model_version": version,
        "role": role,
        "score": score,
        "decision": decision,
        "decided_at": at,
    }


def test_served_metrics_last_label_wins_and_unlabelled_decisions_mature():
    decisions = [
        _d("a", "1", 0.9, "decline"),
        _d("b", "1", 0.6, "review"),
        _d("c", "1", 0.1, "approve"),
        _d("old", "1", 0.95, "decline", at="2025-12-01T00:00:00Z"),  # unlabelled, 90 days: matured
        _d("young", "1", 0.2, "approve"),  # unlabelled, 2 days: not yet an outcome
        _d("a", "2", 0.3, "approve", role="shadow"),
    ]
    labels = [
        {"transaction_id": "a", "is_fraud": True},
        {"transaction_id": "b", "is_fraud": True},
        {"transaction_id": "b", "is_fraud": False},  # corrected
        {"transaction_id": "c", "is_fraud": False},
        {"transaction_id": "a", "is_fraud": True},  # redelivered
    ]
    out = perf.served_metrics(decisions, labels, NOW, maturity_days=60)
    v1 = out["1"]
    assert (v1["labelled"], v1["frauds"], v1["explicit"], v1["matured"]) == (4, 1, 3, 1)
    assert v1["precision_at_decline"] == 0.5  # a (fraud), old (matured legit)
    assert v1["recall_at_decline"] == 1.0
    assert v1["precision_at_review"] == pytest.approx(1 / 3)
    assert v1["auc"] == pytest.approx(roc_auc_score([1, 0, 0, 0], [0.9, 0.6, 0.1, 0.95]))
    assert out["2"]["labelled"] == 1 and out["2"]["auc"] is None


def test_delong_reference_identical_scores_have_p_one_and_a_better_model_wins():
    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.2
    good = y * 1.0 + rng.normal(0, 0.7, 400)
    same = perf.delong_reference(y, good, good)
    assert same["variance"] == 0 and same["p_value"] == 1.0
    noise = rng.normal(0, 1, 400)
    worse = perf.delong_reference(y, good, noise)
    assert worse["difference"] < 0 and worse["p_value"] < 0.05
    assert worse["auc_a"] == pytest.approx(roc_auc_score(y, good))


def test_decisions_from_the_audit_log_feed_the_same_metrics():
    t = int(datetime(2026, 2, 27, tzinfo=timezone.utc).timestamp() * 1000)
    log = [
        {"audit": "decision", "time": t, "transaction_id": "a", "model_version": "1", "score": 0.9, "decision": "decline"},
        {"audit": "decision", "time": t, "transaction_id": "b", "model_version": "1", "score": 0.2, "decision": "approve"},
        {"audit": "decision", "time": t, "transaction_id": "c", "model_version": "none", "score": 0.5, "decision": "review"},
        {"audit": "shadow", "time": t, "transaction_id": "a", "model_version": "2", "score": 0.1, "decision": "approve"},
        {"msg": "request completed", "time": t},
    ]
    decisions = perf.decisions_from_audit_log(log)
    assert [(d["model_version"], d["role"]) for d in decisions] == [("1", "active"), ("1", "active"), ("2", "shadow")]
    labels = [{"transaction_id": "a", "is_fraud": True}, {"transaction_id": "b", "is_fraud": False}]
    out = perf.served_metrics(decisions, labels, NOW)
    assert out["1"]["auc"] == 1.0 and out["1"]["precision_at_decline"] == 1.0
    assert out["2"]["labelled"] == 1
