"""Oracle on a hand-made dataset with known answers, and against a literal implementation."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bruteforce
from fraudscore_training import featureset, generate, oracle

HEADER = "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO"
# 2018-04-01 is a Sunday. TX_TIME_* columns are not used by the oracle (zeros here).
ROWS = [
    ("0", "2018-04-02 12:00:00", "1", "10", "10.00", "0"),
    ("1", "2018-04-03 12:00:00", "1", "10", "20.00", "1"),
    ("2", "2018-04-03 12:00:00", "1", "20", "30.00", "0"),  # same second as row 1, arrives after it
    ("3", "2018-04-04 12:00:00", "1", "10", "40.00", "0"),  # exactly 1 day after rows 1 and 2
    ("4", "2018-04-07 06:59:59", "3", "30", "15.00", "0"),  # Saturday, hour 6
    ("5", "2018-04-08 07:00:00", "3", "30", "25.00", "0"),  # Sunday, hour 7; row 4 is 1 day + 1 s before
    ("6", "2018-04-09 12:00:00", "1", "20", "50.00", "0"),  # exactly 7 days after row 0
    ("7", "2018-04-10 12:00:00", "2", "10", "60.00", "0"),  # row 0 at exactly t-8d, row 1 at exactly t-7d
    ("8", "2018-05-03 12:00:00", "1", "20", "5.00", "0"),  # exactly 30 days after rows 1 and 2
    ("9", "2018-06-02 12:00:00", "1", "20", "8.00", "0"),  # exactly 30 days after row 8
    ("10", "2018-06-02 12:00:00", "1", "10", "16.00", "0"),  # same second as row 9
]

EXPECTED = {
    # row: {feature suffix: value}
    0: dict(W=0, N=0, C1=1, A1=10.0, C7=1, A7=10.0, C30=1, A30=10.0, R7=1.0, R30=1.0, S=2592000.0, T1=0, K1=0.0, T7=0, K7=0.0),
    1: dict(W=0, N=0, C1=1, A1=20.0, C7=2, A7=15.0, C30=2, A30=15.0, R7=2.0, R30=2.0, S=86400.0),
    2: dict(C1=2, A1=25.0, C7=3, A7=20.0, C30=3, A30=20.0, R7=2.0, R30=2.0, S=0.0),
    3: dict(C1=1, A1=40.0, C7=4, A7=25.0, R7=2.0, S=86400.0),
    4: dict(W=1, N=1, C1=1, C7=1, R7=1.0, S=2592000.0),
    5: dict(W=1, N=0, C1=1, A1=25.0, C7=2, A7=20.0, R7=25.0 / 15.0, S=86401.0),
    6: dict(W=0, C1=1, C7=4, A7=35.0, C30=5, A30=30.0, R7=50.0 / 30.0, R30=2.0, S=432000.0, T1=0, T7=0, T30=0),
    7: dict(C1=1, C7=1, C30=1, R7=1.0, S=2592000.0, T1=1, K1=1.0, T7=2, K7=0.5, T30=2, K30=0.5),
    8: dict(C7=1, A7=5.0, C30=3, A30=95.0 / 3, R7=1.0, R30=5.0 / 45.0, S=2073600.0, T1=0, K1=0.0, T7=0, T30=2, K30=0.0),
    9: dict(W=1, C30=1, A30=8.0, R30=1.0, S=2592000.0),
    10: dict(C1=2, A1=12.0, C30=2, A30=12.0, R7=2.0, R30=2.0, S=0.0),
}
NAMES = {
    "W": "TX_DURING_WEEKEND",
    "N": "TX_DURING_NIGHT",
    "C1": "CUSTOMER_ID_NB_TX_1DAY_WINDOW",
    "A1": "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
    "C7": "CUSTOMER_ID_NB_TX_7DAY_WINDOW",
    "A7": "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW",
    "C30": "CUSTOMER_ID_NB_TX_30DAY_WINDOW",
    "A30": "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
    "T1": "TERMINAL_ID_NB_TX_1DAY_WINDOW",
    "K1": "TERMINAL_ID_RISK_1DAY_WINDOW",
    "T7": "TERMINAL_ID_NB_TX_7DAY_WINDOW",
    "K7": "TERMINAL_ID_RISK_7DAY_WINDOW",
    "T30": "TERMINAL_ID_NB_TX_30DAY_WINDOW",
    "K30": "TERMINAL_ID_RISK_30DAY_WINDOW",
    "R7": "CUSTOMER_ID_AMOUNT_RATIO_7DAY_WINDOW",
    "R30": "CUSTOMER_ID_AMOUNT_RATIO_30DAY_WINDOW",
    "S": "CUSTOMER_ID_SECONDS_SINCE_PREV_TX",
}


def _write(path: Path, rows) -> Path:
    lines = [HEADER] + [f"{i},{t},{c},{m},{a},0,0,{f},0" for i, t, c, m, a, f in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tiny(tmp_path):
    return _write(tmp_path / "tiny.csv", ROWS)


def test_known_answers_v2(tiny):
    out = oracle.compute_features(oracle.read_raw([tiny]), featureset.load("v2"))
    for row, exp in EXPECTED.items():
        for key, value in exp.items():
            got = out.at[row, NAMES[key]]
            assert got == pytest.approx(value, rel=1e-15, abs=0), f"row {row} {NAMES[key]}: {got} != {value}"


def test_v1_is_prefix_of_v2(tiny):
    raw = oracle.read_raw([tiny])
    v1 = oracle.compute_features(raw, featureset.load("v1"))
    v2 = oracle.compute_features(raw, featureset.load("v2"))
    assert list(v2.columns[: len(v1.columns)]) == list(v1.columns)
    pd.testing.assert_frame_equal(v1, v2[v1.columns])


def test_cli_output_format(tiny, tmp_path):
    out = tmp_path / "out.csv"
    assert oracle.main(["--input", str(tiny), "--output", str(out), "--feature-set", "v2"]) == 0
    lines = out.read_text().splitlines()
    fs = featureset.load("v2")
    expected_header = oracle.PREFIX_COLUMNS + [n for n in fs.names if n != "TX_AMOUNT"]
    assert lines[0].split(",") == expected_header
    assert len(lines) == len(ROWS) + 1
    # ids and timestamps as in the input; counts as integers; floats round-trip exactly
    first = dict(zip(expected_header, lines[1].split(",")))
    assert first["TRANSACTION_ID"] == "0" and first["TX_DATETIME"] == "2018-04-02 12:00:00"
    assert first["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == "1"
    row5 = dict(zip(expected_header, lines[6].split(",")))
    assert float(row5["CUSTOMER_ID_AMOUNT_RATIO_7DAY_WINDOW"]) == 25.0 / 15.0
    assert row5["CUSTOMER_ID_AMOUNT_RATIO_7DAY_WINDOW"] == repr(25.0 / 15.0)


def test_unsorted_input_is_stably_sorted(tmp_path):
    # Rows out of time order: features are those of the time-sorted file (ties in file order),
    # and the output keeps the input order.
    shuffled = [ROWS[i] for i in (3, 0, 1, 2, 6, 4, 5, 7, 9, 8, 10)]
    a = oracle.compute_features(oracle.read_raw([_write(tmp_path / "a.csv", ROWS)]), featureset.load("v2"))
    b = oracle.compute_features(oracle.read_raw([_write(tmp_path / "b.csv", shuffled)]), featureset.load("v2"))
    b = b.set_index("TRANSACTION_ID").loc[a["TRANSACTION_ID"]].reset_index()
    pd.testing.assert_frame_equal(a, b)


def test_multiple_inputs_concatenate_in_order(tmp_path):
    a = _write(tmp_path / "a.csv", ROWS[:5])
    b = _write(tmp_path / "b.csv", ROWS[5:])
    whole = oracle.compute_features(oracle.read_raw([_write(tmp_path / "w.csv", ROWS)]), featureset.load("v2"))
    split = oracle.compute_features(oracle.read_raw([a, b]), featureset.load("v2"))
    pd.testing.assert_frame_equal(whole, split)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_matches_literal_implementation_on_generated_data(tmp_path, version):
    df = generate.generate(days=12, customers=40, terminals=60, seed=3, same_second_rate=0.05)
    path = tmp_path / "gen.csv"
    generate.write(df, path)
    raw = oracle.read_raw([path])
    fs = featureset.load(version)
    got = oracle.compute_features(raw, fs)
    want = bruteforce.features_for_rows(raw, fs)
    t = pd.to_datetime(raw["TX_DATETIME"])
    assert pd.DataFrame({"c": raw["CUSTOMER_ID"], "t": t}).duplicated(["c", "t"]).sum() > 0, "no same-second rows generated"
    for i, feats in want.items():
        for name, value in feats.items():
            assert got.at[i, name] == pytest.approx(value, rel=1e-12, abs=1e-12), (i, name)


def test_compare_tool(tiny, tmp_path):
    from fraudscore_training import compare

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    oracle.main(["--input", str(tiny), "--output", str(a), "--feature-set", "v2"])
    df = pd.read_csv(a, dtype={"TRANSACTION_ID": str, "CUSTOMER_ID": str, "TERMINAL_ID": str})
    df["TX_DATETIME"] = pd.to_datetime(df["TX_DATETIME"]).dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # ISO form is fine
    df = df.iloc[::-1]  # row order does not matter
    df.to_csv(b, index=False)
    assert compare.compare(str(b), str(a)) == []
    df.loc[df.index[0], "CUSTOMER_ID_AMOUNT_RATIO_7DAY_WINDOW"] += 1e-6
    df.to_csv(b, index=False)
    problems = compare.compare(str(b), str(a))
    assert len(problems) == 1 and "CUSTOMER_ID_AMOUNT_RATIO_7DAY_WINDOW: 1 rows differ" in problems[0]


V3 = featureset.REPO_ROOT / "features" / "transaction_v3.json"


def test_device_features_and_their_defaults(tmp_path):
    """Link aggregations on a hand-made history; a file without DEVICE_ID / IP gives the documented defaults."""
    rows = [
        # id, datetime, customer, terminal, amount, fraud, device, ip
        ("1", "2018-04-01 10:00:00", "A", "T", "10.00", "0", "d1", "192.0.2.1"),
        ("2", "2018-04-01 11:00:00", "B", "T", "20.00", "0", "d1", "192.0.2.200"),
        ("3", "2018-04-01 12:00:00", "A", "T", "30.00", "0", "d2", "2001:db8:1::1"),
        ("4", "2018-04-01 12:00:00", "A", "T", "40.00", "0", "", ""),
        ("5", "2018-04-02 10:30:00", "A", "T", "50.00", "0", "d1", "192.0.2.3"),
    ]
    path = tmp_path / "d.csv"
    path.write_text(
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD,DEVICE_ID,IP\n"
        + "".join(",".join(r) + "\n" for r in rows)
    )
    fs = featureset.load(str(V3))
    out = oracle.compute_features(oracle.read_raw([path]), fs).set_index("TRANSACTION_ID")
    col = lambda name: out[name].tolist()  # noqa: E731
    # Row 5 is 23.5 h after row 2 (B on d1, same /24) and 24.5 h after row 1.
    assert col("DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW") == [1, 2, 1, 0, 2]
    assert col("NETWORK_NB_CUSTOMERS_1DAY_WINDOW") == [1, 2, 1, 0, 2]
    assert col("IP_NB_CUSTOMERS_1DAY_WINDOW") == [1, 1, 1, 0, 1]
    assert col("CUSTOMER_ID_NB_DEVICES_1DAY_WINDOW") == [1, 1, 2, 2, 2]
    assert col("CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW") == [1, 1, 1, 0, 0]
    assert col("CUSTOMER_ID_SECONDS_SINCE_FIRST_DEVICE_USE_30DAY_WINDOW") == [2592000, 2592000, 2592000, 2592000, 88200]
    assert col("DEVICE_ID_NB_TX_1DAY_WINDOW") == [1, 2, 1, 0, 2]
    assert featureset.ip_prefix("2001:db8::1") == "2001:db8:0::/48"
    assert featureset.ip_prefix("192.0.2.77") == "192.0.2.0/24"
    # Handbook-format data without the columns: every device and network feature takes its default.
    bare = tmp_path / "bare.csv"
    bare.write_text("\n".join(",".join(r[:6]) for r in [("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"), *rows]) + "\n")
    b = oracle.compute_features(oracle.read_raw([bare]), fs)
    assert (b["DEVICE_ID_NB_CUSTOMERS_7DAY_WINDOW"] == 0).all()
    assert (b["CUSTOMER_ID_NEW_NETWORK_30DAY_WINDOW"] == 0).all()
    assert (b["CUSTOMER_ID_SECONDS_SINCE_FIRST_DEVICE_USE_30DAY_WINDOW"] == 2592000).all()
    assert b["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].tolist() == [1, 1, 2, 3, 3]


def test_device_features_match_literal_implementation_on_generated_data(tmp_path):
    """v3's link aggregations and optional entities, row by row, on generated data with devices: every scenario,
    rows without DEVICE_ID or IP, shared carrier networks and same-second rows."""
    df = generate.generate(days=16, customers=40, terminals=60, seed=5, same_second_rate=0.05, devices=True)
    path = tmp_path / "gen.csv"
    generate.write(df, path)
    raw = oracle.read_raw([path])
    assert set(df["TX_FRAUD_SCENARIO"].unique()) >= {0, 4, 5, 6}, df["TX_FRAUD_SCENARIO"].value_counts()
    assert raw["DEVICE_ID"].isna().any() and raw["IP"].isna().any() and raw["IP"].str.contains(":").any()
    fs = featureset.load(str(V3))
    got = oracle.compute_features(raw, fs)
    want = bruteforce.features_for_rows(raw, fs)
    t = pd.to_datetime(raw["TX_DATETIME"])
    assert pd.DataFrame({"c": raw["CUSTOMER_ID"], "t": t}).duplicated(["c", "t"]).sum() > 0, "no same-second rows generated"
    v3_only = [n for n in fs.names if n not in featureset.load("v2").names]
    assert all(got[n].nunique() > 1 for n in v3_only), "a device feature is constant on this data"
    for i, feats in want.items():
        for name, value in feats.items():
            assert got.at[i, name] == pytest.approx(value, rel=1e-12, abs=1e-12), (i, name, got.at[i, name], value)
