from fraudscore_training import device_report


def test_v2_and_v3_per_scenario_on_small_generated_data():
    r = device_report.run(days=60, customers=200, terminals=400, seed=2, smoke=True, log=lambda s: None)
    for spec in ("transaction_v2", "transaction_v3"):
        assert r[spec]["overall"]["frauds"] > 0
        assert 0.5 < r[spec]["overall"]["auc_roc"] <= 1
    assert r["transaction_v3"]["inputs"] > r["transaction_v2"]["inputs"]
    md = device_report.markdown(r, "cmd")
    assert "| overall" in md and "AUC v3" in md
