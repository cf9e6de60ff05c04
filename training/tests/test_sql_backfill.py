"""The feature sets compiled to SQL, on DuckDB and on Spark (local[2]): known answers, the oracle on
generated data, a literal implementation of the engine on the corners (test/fixtures/features-edge), and
the outputs (CSV in arrival order, Parquet by day). Parity with the Node backfill itself is checked in
test/integration/sql-parity.test.ts."""

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import bruteforce
from fraudscore_training import featureset, generate, oracle, sql_duckdb, sql_spark, sqlbackfill, sqlfeatures, train
from fraudscore_training import manifest as mf
from test_oracle import EXPECTED, NAMES, ROWS, _write

EDGE = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "features-edge" / "edge_v1.json"
IDS = {"TRANSACTION_ID": str, "CUSTOMER_ID": str, "TERMINAL_ID": str, "TX_DATETIME": str}


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=IDS)


def _assert_close(got: pd.DataFrame, want: pd.DataFrame, names) -> None:
    assert list(got["TRANSACTION_ID"]) == list(want["TRANSACTION_ID"]), "rows not in arrival order"
    for name in names:
        x, y = got[name].to_numpy(np.float64), want[name].to_numpy(np.float64)
        bad = np.flatnonzero(~(np.abs(x - y) <= 1e-9 * np.maximum(1.0, np.abs(y))))
        assert len(bad) == 0, f"{name}: {len(bad)} rows differ, e.g. row {bad[0]}: {x[bad[0]]} vs {y[bad[0]]}"


def _engine_literal(raw: pd.DataFrame, fs) -> pd.DataFrame:
    """bruteforce.py with the backfill's one difference from the oracle: a window that ends at the
    transaction does not see the transaction's own label yet (it is applied after the features)."""
    want = bruteforce.features_for_rows(raw, fs)
    t = pd.to_datetime(raw["TX_DATETIME"]).astype("int64").to_numpy() // 10**9
    cust = raw["CUSTOMER_ID"].astype(str).to_numpy()
    term = raw["TERMINAL_ID"].astype(str).to_numpy()
    for f in fs.features:
        if f["kind"] == "window" and f["aggregation"] == "fraud_rate" and f["delay_days"] == 0:
            ent = cust if f["entity"] == "customer" else term
            span = f["window_days"] * 86400
            for i, r in want.items():
                n = int(np.sum((ent[: i + 1] == ent[i]) & (t[: i + 1] > t[i] - span)))
                r[f["name"]] = (r[f["name"]] * n - raw["TX_FRAUD"].iloc[i]) / n
    return pd.DataFrame.from_dict(want, orient="index")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "gen.csv"
    generate.write(generate.generate(days=45, customers=80, terminals=150, seed=11, same_second_rate=0.05), path)
    return path


@pytest.fixture(scope="module")
def edge_data(tmp_path_factory) -> Path:
    df = generate.generate(days=12, customers=40, terminals=60, seed=3, same_second_rate=0.2)
    df.loc[df.index % 5 == 0, "TX_AMOUNT"] = 0.0  # zero amounts: a prior mean of 0 gives ratio 1
    path = tmp_path_factory.mktemp("edge") / "edge.csv"
    generate.write(df, path)
    return path


def _labels_literal(raw: pd.DataFrame, fs) -> pd.DataFrame:
    """The fraud rates of `fs` as the backfill computes them when labels carry LABELED_AT, row by row: a fraud
    counts for transaction i if it is in i's window and its label had arrived: at its LABELED_AT when that is
    later than the transaction (a label arriving at i's instant counts), else with its transaction (so only
    for transactions that arrived after it)."""
    t = pd.to_datetime(raw["TX_DATETIME"], utc=True).astype("int64").to_numpy() // 10**6
    a = pd.to_datetime(raw["LABELED_AT"], utc=True, format="mixed")
    a = np.where(a.isna(), -1, a.astype("int64") // 10**6) if a.notna().any() else np.full(len(raw), -1)
    fraud = raw["TX_FRAUD"].to_numpy() == 1
    late = fraud & (a > t)
    pos = np.arange(len(raw))
    ent = {"customer": raw["CUSTOMER_ID"].astype(str).to_numpy(), "terminal": raw["TERMINAL_ID"].astype(str).to_numpy()}
    out = {}
    for f in fs.features:
        if f["kind"] != "window" or f["aggregation"] != "fraud_rate":
            continue
        n, d = f["window_days"] * 86_400_000, f["delay_days"] * 86_400_000
        e = ent[f["entity"]]
        col = np.zeros(len(raw))
        for i in range(len(raw)):
            win = (e == e[i]) & (t > t[i] - n - d) & (t <= t[i] - d) & (pos <= i)
            seen = np.where(late, a <= t[i], pos < i)
            col[i] = (win & fraud & seen).sum() / win.sum() if win.any() else 0.0
        out[f["name"]] = col
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def labeled_data(tmp_path_factory) -> Path:
    df = generate.generate(days=25, customers=80, terminals=100, seed=4, same_second_rate=0.2)
    path = tmp_path_factory.mktemp("labeled") / "labeled.csv"
    generate.write(generate.with_labeled_at(df, seed=4), path)
    return path


@pytest.mark.parametrize("spec", ["v2", str(EDGE)])
def test_duckdb_applies_labels_when_they_arrive(labeled_data, tmp_path, spec):
    fs = featureset.load(spec)
    raw = pd.read_csv(labeled_data, dtype=dict(IDS, LABELED_AT=str))
    labeled = pd.to_datetime(raw["LABELED_AT"], utc=True, format="mixed")
    late = (raw["TX_FRAUD"] == 1) & (labeled > pd.to_datetime(raw["TX_DATETIME"], utc=True))
    assert late.sum() > 20
    out, without = tmp_path / "labeled.csv", tmp_path / "without.csv"
    sql_duckdb.run([str(labeled_data)], fs, csv_out=str(out))
    got = _read(out)
    want = _labels_literal(raw, fs)
    _assert_close(got, raw[["TRANSACTION_ID"]].join(want), list(want.columns))
    # Without the column every label goes with its transaction: the fraud rates differ, nothing else does.
    raw.drop(columns=["LABELED_AT"]).to_csv(tmp_path / "nolabels.csv", index=False)
    sql_duckdb.run([str(tmp_path / "nolabels.csv")], fs, csv_out=str(without))
    base = _read(without)
    _assert_close(got, base, [c for c in sqlfeatures.output_columns(fs)[4:] if c not in want.columns])
    assert any((got[c] != base[c]).any() for c in want.columns)


def _bad_labeled_at(tmp_path) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD,LABELED_AT\n"
        "0,2018-04-02 10:00:00,1,10,10.00,1,2018-04-03 10:00:00\n"
        "1,2018-04-02 11:00:00,1,10,10.00,1,next week\n"
    )
    return path


def test_duckdb_refuses_a_labeled_at_that_does_not_parse(tmp_path):
    with pytest.raises(ValueError, match="LABELED_AT"):
        sql_duckdb.run([str(_bad_labeled_at(tmp_path))], featureset.load("v2"), csv_out=str(tmp_path / "o.csv"))


@pytest.fixture(scope="module")
def spark():
    s = sql_spark.session("local[2]", shuffle_partitions=2)
    yield s
    sql_spark.stop()


def test_compiler_refuses_what_the_engine_refuses():
    fs = featureset.load("v2")
    bad = featureset.FeatureSet("x", 1, [dict(fs.features[4], delay_days=1)], fs.path, fs.entities)  # mean, delayed
    with pytest.raises(ValueError, match="delay_days must be 0"):
        sqlfeatures.compile_query(bad, "src", ["_seq"], 100.0)


def test_duckdb_known_answers_with_ties_across_files(tmp_path):
    a, b = _write(tmp_path / "a.csv", ROWS[:2]), _write(tmp_path / "b.csv", ROWS[2:])  # rows 1 and 2 tie
    out = tmp_path / "out.csv"
    sql_duckdb.run([str(a), str(b)], featureset.load("v2"), csv_out=str(out))
    got = _read(out)
    assert list(got.columns) == sqlfeatures.output_columns(featureset.load("v2"))
    for row, exp in EXPECTED.items():
        for key, value in exp.items():
            assert got.at[row, NAMES[key]] == pytest.approx(value, rel=1e-15, abs=0), (row, NAMES[key])


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_duckdb_equals_the_oracle_on_generated_data(generated, tmp_path, version):
    fs = featureset.load(version)
    out = tmp_path / "duck.csv.gz"
    assert sqlbackfill.main(["--engine", "duckdb", "-i", str(generated), "-o", str(out), "--feature-set", version]) == 0
    want = oracle.compute_features(oracle.read_raw([generated]), fs)
    got = _read(out)
    assert (got["TX_FRAUD"] > 0).sum() > 50
    _assert_close(got, want.astype({"TRANSACTION_ID": str}), sqlfeatures.output_columns(fs)[4:])


def test_duckdb_matches_the_engine_literally_on_the_corners(edge_data, tmp_path):
    fs = featureset.load(str(EDGE))
    out = tmp_path / "edge.csv"
    sql_duckdb.run([str(edge_data)], fs, csv_out=str(out))
    raw = oracle.read_raw([edge_data])
    _assert_close(_read(out), raw[["TRANSACTION_ID"]].join(_engine_literal(raw, fs)), [n for n in fs.names])


def test_duckdb_sums_floats_when_amounts_are_not_whole_cents(generated, tmp_path):
    df = pd.read_csv(generated, dtype=IDS)
    df["TX_AMOUNT"] = df["TX_AMOUNT"] + 0.0005
    path = tmp_path / "mills.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    fs = featureset.load("v2")
    sql_duckdb.run([str(path)], fs, csv_out=str(out))
    _assert_close(_read(out), oracle.compute_features(oracle.read_raw([path]), fs), fs.names[1:])


def test_duckdb_parquet_is_partitioned_by_day_and_holds_the_csv_rows(generated, tmp_path):
    fs = featureset.load("v2")
    csv, pq = tmp_path / "f.csv", tmp_path / "pq"
    rows = sql_duckdb.run([str(generated)], fs, csv_out=str(csv), parquet_out=str(pq))
    days = sorted(p.name for p in pq.iterdir())
    assert len(days) == 45 and days[0] == "TX_DAY=2018-04-01"
    back = duckdb.sql(f"SELECT * EXCLUDE (TX_DAY) FROM read_parquet('{pq}/*/*.parquet') ORDER BY TRANSACTION_ID::BIGINT").df()
    want = _read(csv).sort_values("TRANSACTION_ID", key=lambda s: s.astype(int)).reset_index(drop=True)
    assert len(back) == rows == len(want)
    _assert_close(back, want, sqlfeatures.output_columns(fs)[4:])


def test_duckdb_refuses_bad_rows(tmp_path):
    path = _write(tmp_path / "bad.csv", [("0", "2018-04-02 25:00:00", "1", "10", "10.00", "0")])
    with pytest.raises(ValueError, match="bad row"):
        sql_duckdb.run([str(path)], featureset.load("v1"), csv_out=str(tmp_path / "o.csv"))
    assert sqlbackfill.main(["-i", str(path), "-o", str(tmp_path / "o.csv")]) == 1


def test_spark_equals_duckdb_on_generated_data_and_the_corners(spark, generated, edge_data, tmp_path):
    # 64 KiB splits: the file is read as several blocks by parallel tasks; arrival order must hold across them.
    spark.conf.set("spark.sql.files.maxPartitionBytes", "64k")
    assert spark.read.csv(str(generated)).rdd.getNumPartitions() > 4
    for data, spec in ((generated, "v2"), (edge_data, str(EDGE))):
        fs = featureset.load(spec)
        duck, sp, pq = tmp_path / "duck.csv", tmp_path / "spark.csv", tmp_path / "pq"
        sql_duckdb.run([str(data)], fs, csv_out=str(duck))
        rows = sql_spark.run([str(data)], fs, csv_out=str(sp), parquet_out=str(pq))
        assert rows == len(_read(duck))
        _assert_close(_read(sp), _read(duck), sqlfeatures.output_columns(fs)[4:])
    assert len([p for p in pq.iterdir() if p.name.startswith("TX_DAY=")]) == 12
    spark.conf.unset("spark.sql.files.maxPartitionBytes")


def test_spark_known_answers_with_ties_across_files(spark, tmp_path):
    a, b = _write(tmp_path / "a.csv", ROWS[:2]), _write(tmp_path / "b.csv", ROWS[2:])
    out = tmp_path / "out.csv.gz"
    sql_spark.run([str(a), str(b)], featureset.load("v2"), csv_out=str(out))
    got = _read(out)
    for row, exp in EXPECTED.items():
        for key, value in exp.items():
            assert got.at[row, NAMES[key]] == pytest.approx(value, rel=1e-15, abs=0), (row, NAMES[key])


def test_spark_applies_labels_when_they_arrive_and_refuses_a_bad_labeled_at(spark, labeled_data, tmp_path):
    fs = featureset.load(str(EDGE))
    duck, sp = tmp_path / "duck.csv", tmp_path / "spark.csv"
    sql_duckdb.run([str(labeled_data)], fs, csv_out=str(duck))  # held to the literal above
    sql_spark.run([str(labeled_data)], fs, csv_out=str(sp))
    _assert_close(_read(sp), _read(duck), sqlfeatures.output_columns(fs)[4:])
    with pytest.raises(ValueError, match="LABELED_AT"):
        sql_spark.run([str(_bad_labeled_at(tmp_path))], fs, csv_out=str(tmp_path / "o.csv"))


def test_spark_memory_sizes_are_given_to_the_jvm_in_its_own_notation():
    assert [sql_spark.jvm_size(s) for s in ("2GB", "512 MiB", "4g", "1t")] == ["2g", "512m", "4g", "1t"]
    with pytest.raises(ValueError, match="expected e.g. 4GB"):
        sql_spark.jvm_size("lots")


def test_the_trainer_takes_the_duckdb_parquet_end_to_end(tmp_path):
    raw = tmp_path / "raw.csv"
    generate.write(generate.generate(days=30, customers=200, terminals=400, seed=1), raw)
    pq = tmp_path / "features"
    assert sqlbackfill.main(["--engine", "duckdb", "-i", str(raw), "--parquet", str(pq), "--feature-set", "v2"]) == 0
    args = ["--features", str(pq), "--out", str(tmp_path / "models"), "--name", "sql", "--version", "1"]
    args += ["--feature-set", "transaction_v2", "--train-until", "2018-08-01", "--seed", "7", "--smoke"]
    assert train.main(args) == 0
    folder = tmp_path / "models" / "sql" / "1"
    assert mf.verify(folder) == []
    assert json.loads((folder / "manifest.json").read_text())["feature_set"] == {"name": "transaction", "version": 2}


def test_the_out_of_core_compare_flags_what_the_pandas_one_does(generated, tmp_path):
    from fraudscore_training import compare

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    sql_duckdb.run([str(generated)], featureset.load("v2"), csv_out=str(a))
    df = _read(a).iloc[::-1]  # row order does not matter
    df.to_csv(b, index=False)
    assert compare.compare_duckdb(str(b), str(a)) == []
    df.loc[df.index[3], "CUSTOMER_ID_AMOUNT_RATIO_7DAY_WINDOW"] += 1e-6
    df.to_csv(b, index=False)
    assert compare.compare_duckdb(str(b), str(a)) == ["CUSTOMER_ID_AMOUNT_RATIO_7DAY_WINDOW: 1 rows differ"]
    assert compare.compare(str(b), str(a))[0].startswith("CUSTOMER_ID_AMOUNT_RATIO_7DAY_WINDOW: 1 rows differ")
