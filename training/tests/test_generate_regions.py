import duckdb
import pandas as pd

from fraudscore_training import generate, generate_regions


def test_regions_merge_in_time_order_with_disjoint_ids(tmp_path):
    days, customers, terminals, k, seed = 20, 301, 502, 3, 7
    out = tmp_path / "w.parquet"
    n = generate_regions.write_regions(out, days, customers, terminals, k, seed=seed)
    df = duckdb.sql(f"SELECT * FROM read_parquet('{out}')").df()  # file order: the arrival order
    assert n == len(df) and list(df.columns) == generate.COLUMNS
    assert df["TX_TIME_SECONDS"].is_monotonic_increasing
    assert df["TRANSACTION_ID"].tolist() == list(range(n))
    t = pd.to_datetime(df["TX_DATETIME"])
    assert (t - pd.Timestamp("2018-04-01")).dt.total_seconds().astype(int).equals(df["TX_TIME_SECONDS"].astype(int))
    assert (df["TX_TIME_DAYS"] == df["TX_TIME_SECONDS"] // 86400).all()

    cs, ts = generate_regions.split(customers, k), generate_regions.split(terminals, k)
    assert sum(cs) == customers and sum(ts) == terminals
    c_off = t_off = 0
    for r in range(k):
        mine = df[(df.CUSTOMER_ID >= c_off) & (df.CUSTOMER_ID < c_off + cs[r])].reset_index(drop=True)
        assert mine["TERMINAL_ID"].between(t_off, t_off + ts[r] - 1).all()  # a region's own terminals only
        want = generate.generate(days, cs[r], ts[r], seed=seed + r)
        mine = mine.assign(CUSTOMER_ID=mine.CUSTOMER_ID - c_off, TERMINAL_ID=mine.TERMINAL_ID - t_off)
        cols = [c for c in generate.COLUMNS if c != "TRANSACTION_ID"]
        pd.testing.assert_frame_equal(mine[cols], want[cols], check_dtype=False)  # same rows, same order
        c_off, t_off = c_off + cs[r], t_off + ts[r]
    assert df.CUSTOMER_ID.max() < customers and df.TERMINAL_ID.max() < terminals
    region = pd.cut(df.CUSTOMER_ID, [-1, *pd.Series(cs).cumsum() - 1], labels=False)
    tie = df.TX_TIME_SECONDS.diff() == 0
    assert tie.any() and (region.diff()[tie] >= 0).all()  # same second: by region, then the region's order


def test_csv_output_has_the_handbook_format(tmp_path):
    out = tmp_path / "w.csv"
    generate_regions.main(["--days", "5", "--customers", "40", "--terminals", "60", "--regions", "2", "--output", str(out)])
    df = pd.read_csv(out, dtype={"TX_AMOUNT": str})
    assert list(df.columns) == generate.COLUMNS
    assert df["TX_AMOUNT"].str.match(r"^\d+\.\d\d$").all()
    assert pd.to_datetime(df["TX_DATETIME"]).is_monotonic_increasing
    assert df["TRANSACTION_ID"].tolist() == list(range(len(df)))
