import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudscore_training import evaluate as ev
from fraudscore_training import gate


def _test_set(seed=1, n=3000, cards=400):
    rng = np.random.default_rng(seed)
    card = rng.integers(0, cards, n).astype(str)
    y = (rng.random(n) < 0.05).astype(int)
    s1 = np.round(np.clip(y * 0.3 + rng.random(n) * 0.8, 0, 1), 2)  # rounded: ties
    s2 = np.round(np.clip(y * 0.1 + rng.random(n), 0, 1), 2)
    day = pd.Timestamp("2018-08-08") + pd.to_timedelta(rng.integers(0, 7, n), unit="D")
    return pd.DataFrame({"CUSTOMER_ID": card, "TX_FRAUD": y, "day": day}), s1, s2


def test_fast_metrics_equal_the_protocol_on_the_full_set_and_weighted_sklearn_on_resamples():
    df, s1, s2 = _test_set()
    b = gate.PairedBootstrap(df, [s1, s2])
    ones = np.ones(b.n_cards, dtype=np.int64)
    for j, s in enumerate((s1, s2)):
        p = ev.metrics(df, s)
        assert b.metrics(j, ones) == pytest.approx([p["auc_roc"], p["average_precision"], p["card_precision_at_100"]], abs=1e-12)
    mult = np.bincount(np.random.default_rng(2).integers(0, b.n_cards, b.n_cards), minlength=b.n_cards)
    w = mult[b.card_of_row]
    got = b.metrics(0, mult)
    assert got[0] == pytest.approx(roc_auc_score(df["TX_FRAUD"], s1, sample_weight=w), abs=1e-12)
    assert got[1] == pytest.approx(average_precision_score(df["TX_FRAUD"], s1, sample_weight=w), abs=1e-12)


def test_gate_rules_and_verdicts():
    df, s1, s2 = _test_set()
    c = gate.compare(df, s1, s2, resamples=100, seed=7, confidence=0.95, log=lambda _m: None)
    d = c["metrics"]["average_precision"]
    assert d["ci_lower"] <= d["delta"] <= d["ci_upper"]
    assert gate.decide([gate.parse_rule("average_precision>=-0.01")], c)["verdict"] == "eligible"
    worse = gate.compare(df, s2, s1, resamples=100, seed=7, confidence=0.95, log=lambda _m: None)
    assert gate.decide([gate.parse_rule("average_precision>=-0.01")], worse)["verdict"] == "rejected"
    assert gate.decide([gate.parse_rule("auc_roc.point>=-1")], worse)["verdict"] == "eligible"
    assert gate.decide([], None)["verdict"] == "eligible"
    with pytest.raises(ValueError):
        gate.parse_rule("accuracy>=0")
