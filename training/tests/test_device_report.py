import numpy as np
import pandas as pd

from fraudscore_training import device_report


def test_v2_and_v3_per_scenario_on_small_generated_data():
    r = device_report.run(days=60, customers=200, terminals=400, seed=2, smoke=True, log=lambda s: None, resamples=50)
    for spec in ("transaction_v2", "transaction_v3"):
        assert r[spec]["overall"]["frauds"] > 0
        assert 0.5 < r[spec]["overall"]["auc_roc"] <= 1
    assert r["transaction_v3"]["inputs"] > r["transaction_v2"]["inputs"]
    c = r["comparison"]
    assert (c["resamples"], c["seed"], c["confidence"]) == (50, 7, 0.95)
    overall = c["rows"]["overall"]
    assert set(overall["metrics"]) == {"auc_roc", "average_precision", "card_precision_at_100"}
    d = overall["metrics"]["average_precision"]
    # The paired comparison's point estimates are the table's.
    assert np.isclose(d["candidate"], r["transaction_v3"]["overall"]["average_precision"])
    assert np.isclose(d["champion"], r["transaction_v2"]["overall"]["average_precision"])
    assert d["ci_lower"] <= d["delta"] <= d["ci_upper"]
    for row in c["rows"].values():
        assert row["verdict"] in ("lift", "no loss", "loss")
    assert isinstance(r["acceptance"]["pass"], bool) and r["acceptance"]["reasons"]
    md = device_report.markdown(r, "cmd")
    assert "| overall" in md and "AUC v3" in md and "ΔAP" in md and "Acceptance" in md


def _d(lo: float, hi: float) -> dict:
    return {"delta": (lo + hi) / 2, "ci_lower": lo, "ci_upper": hi}


def test_verdicts_and_acceptance():
    m = ("auc_roc", "average_precision")
    assert device_report.verdict({"auc_roc": _d(-0.01, 0.02), "average_precision": _d(0.01, 0.2)}, m)["verdict"] == "lift"
    assert device_report.verdict({"auc_roc": _d(-0.01, 0.02), "average_precision": _d(-0.01, 0.2)}, m)["verdict"] == "no loss"
    # An interval touching 0 from below is not a loss; one entirely below is, even beside a lift.
    assert device_report.verdict({"auc_roc": _d(-0.03, 0.0), "average_precision": _d(-0.01, 0.2)}, m)["verdict"] == "no loss"
    v = device_report.verdict({"auc_roc": _d(-0.03, -0.001), "average_precision": _d(0.01, 0.2)}, m)
    assert v["verdict"] == "loss" and v["loss"] == ["auc_roc"]
    rows = {k: {"verdict": "no loss", "lift": []} for k in ("overall", *device_report.HANDBOOK_SCENARIOS)}
    rows |= {k: {"verdict": "lift", "lift": ["average_precision"]} for k in device_report.NEW_SCENARIOS}
    assert device_report.acceptance({"rows": rows})["pass"]
    rows["fraud ring"] = {"verdict": "lift", "lift": ["auc_roc"]}  # a lift in AUC only does not do
    assert not device_report.acceptance({"rows": rows})["pass"]
    rows["fraud ring"] = {"verdict": "lift", "lift": ["average_precision"]}
    rows["compromised customer"] = {"verdict": "loss", "lift": []}
    assert not device_report.acceptance({"rows": rows})["pass"]


def test_compare_resamples_each_subset_by_its_cards():
    rng = np.random.default_rng(1)
    n = 400
    test = pd.DataFrame(
        {
            "CUSTOMER_ID": rng.integers(0, 60, n).astype(str),
            "TX_FRAUD": (rng.random(n) < 0.1).astype(int),
            "day": pd.Timestamp("2018-06-01") + pd.to_timedelta(rng.integers(0, 3, n), unit="D"),
        }
    )
    sc = np.where(test["TX_FRAUD"] == 1, rng.integers(1, 7, n), 0)
    s = rng.random(n)
    c = device_report.compare(test, sc, s, s, 30, 7, 0.95, log=lambda _m: None)
    for row in c["rows"].values():  # the same scores: no difference, no verdict but "no loss"
        assert row["verdict"] == "no loss"
        assert all(d["delta"] == 0 for d in row["metrics"].values() if d["delta"] == d["delta"])
