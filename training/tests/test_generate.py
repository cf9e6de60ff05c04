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


def test_devices_networks_and_device_scenarios(tmp_path):
    """--devices: the same legitimate transactions and handbook scenarios, plus DEVICE_ID / IP and scenarios 4-6."""
    base = generate.generate(days=30, customers=120, terminals=200, seed=4)
    df = generate.generate(days=30, customers=120, terminals=200, seed=4, devices=True)
    assert list(df.columns) == generate.COLUMNS + generate.DEVICE_COLUMNS
    assert df[df.TX_FRAUD_SCENARIO <= 3].reset_index(drop=True)[generate.COLUMNS].equals(base)
    assert set(df.loc[df.TX_FRAUD == 1, "TX_FRAUD_SCENARIO"]) == {1, 2, 3, 4, 5, 6}
    assert pd.to_datetime(df["TX_DATETIME"]).is_monotonic_increasing
    assert df["TRANSACTION_ID"].is_unique
    assert 0.01 < df["DEVICE_ID"].isna().mean() < 0.06 and 0.01 < df["IP"].isna().mean() < 0.06
    assert df["IP"].dropna().str.contains(":").any() and df["IP"].dropna().str.contains(r"^\d+\.").any()
    legit = df[df.TX_FRAUD_SCENARIO == 0]
    # Customers keep a few devices (a new phone now and then); card testing puts many cards on one device.
    assert legit.groupby("CUSTOMER_ID")["DEVICE_ID"].nunique().max() <= 5
    testing = df[df.TX_FRAUD_SCENARIO == 5].groupby("DEVICE_ID")["CUSTOMER_ID"].nunique()
    assert testing.min() >= 20
    ring = df[df.TX_FRAUD_SCENARIO == 6]
    assert ring["DEVICE_ID"].nunique() == 3 and ring["CUSTOMER_ID"].nunique() > 10
    ato = df[df.TX_FRAUD_SCENARIO == 4]
    assert not set(ato["DEVICE_ID"]) & set(legit["DEVICE_ID"].dropna())
    # The file: empty fields where a transaction lacks a device or an IP; deterministic.
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    args = ["--days", "10", "--customers", "50", "--terminals", "80", "--seed", "5", "--devices"]
    assert generate.main([*args, "--output", str(a)]) == 0
    assert generate.main([*args, "--output", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert ",," in a.read_text() or a.read_text().count(",\n") > 0
