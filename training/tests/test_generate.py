import pandas as pd

from fraudscore_training import generate


def test_deterministic_and_handbook_format(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert generate.main(["--days", "10", "--customers", "50", "--terminals", "80", "--seed", "5", "--output", str(a)]) == 0
    assert generate.main(["--days", "10", "--customers", "50", "--terminals", "80", "--seed", "5", "--output", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    df = pd.read_csv(a, dtype={"TX_AMOUNT": str})
    assert list(df.columns) == generate.COLUMNS
    assert df["TX_AMOUNT"].str.match(r"^\d+\.\d\d$").all()
    t = pd.to_datetime(df["TX_DATETIME"])
    assert t.is_monotonic_increasing
    assert (t - pd.Timestamp("2018-04-01")).dt.total_seconds().astype(int).equals(df["TX_TIME_SECONDS"])


def test_collisions_and_scenarios():
    df = generate.generate(days=30, customers=200, terminals=400, seed=1)
    t = pd.to_datetime(df["TX_DATETIME"])
    assert pd.DataFrame({"c": df["CUSTOMER_ID"], "t": t}).duplicated(["c", "t"]).sum() > 10
    assert (df["TRANSACTION_ID"].diff() < 0).sum() > 0  # arrival order differs from id order
    assert set(df.loc[df.TX_FRAUD == 1, "TX_FRAUD_SCENARIO"]) == {1, 2, 3}
    assert ((df.TX_FRAUD == 1) == (df.TX_FRAUD_SCENARIO > 0)).all()
    other = generate.generate(days=30, customers=200, terminals=400, seed=2)
    assert not other.equals(df)
