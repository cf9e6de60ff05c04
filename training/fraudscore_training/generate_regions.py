"""A large generated world in bounded memory: K independent regions, merged by time with DuckDB.

`generate()` holds the whole data set in pandas (about 6.8 GB peak for 50,000 customers / 100,000
terminals / 183 days, 17.7 M rows), so a world 50 × the handbook's (~88 M rows) does not fit in 24 GiB.
Here the world is K regions; region r is `generate(days, customers/K, terminals/K, seed + r)` on its own
100 x 100 grid, with its customer and terminal ids shifted so that they are disjoint across regions. The
reach radius follows the terminal density, so a region of the handbook's size keeps the handbook's ~20
terminals in reach of a customer, its fraud rates and its per-entity statistics: a region is a
statistically identical smaller world, and no customer uses another region's terminals.

Each region is written to a temporary Parquet file (one region in pandas at a time), then DuckDB (with
`memory_limit`, spilling to the temporary folder) merges them into ONE file in arrival order: by
TX_TIME_SECONDS, ties by region, then by the region's own row order (its arrival order), with
TRANSACTION_ID renumbered 0..n-1 in that order. Same columns as `generate.write`: TX_TIME_DAYS and
TX_DATETIME come from the region (same start date, so they agree with TX_TIME_SECONDS).

Memory: one region in pandas (about 1/K of the whole-world generator's data), then DuckDB's `memory_limit`
for the merge plus DuckDB's own overhead (measured: 2.6 GB peak for 10 regions of the handbook's size, 2.75 GB
for 50, with the default 2GB). Disk: the regions' Parquet files (~35 MB a region of the handbook's size) and
the merge's spill, in a temporary folder next to the output.

    python -m fraudscore_training.generate_regions --days 183 --customers 250000 --terminals 500000 \
        --regions 50 --seed 21 --output x50.parquet        # or .csv / .csv.gz (amounts with two decimals)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

from .generate import COLUMNS, generate


def split(total: int, k: int) -> list[int]:
    """`total` in `k` near-equal parts (the first `total % k` one larger)."""
    return [total // k + (1 if r < total % k else 0) for r in range(k)]


def write_regions(
    output: str | Path,
    days: int,
    customers: int,
    terminals: int,
    regions: int,
    seed: int = 1,
    start_date: str = "2018-04-01",
    memory_limit: str = "2GB",
    log=None,
) -> int:
    """Writes the K-region world to `output` (.parquet, or .csv / .csv.gz); returns its number of rows."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    cs, ts = split(customers, regions), split(terminals, regions)
    if min(cs) < 1 or min(ts) < 1:
        raise ValueError(f"{regions} regions need at least {regions} customers and terminals")
    with tempfile.TemporaryDirectory(prefix="regions-", dir=output.parent) as tmp:
        con = duckdb.connect()  # writes the regions too (pandas' Parquet writer needs pyarrow, not installed)
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{tmp}/spill'")
        con.execute("SET preserve_insertion_order = true")
        c_off = t_off = 0
        for r in range(regions):
            t0 = time.monotonic()
            df = generate(days, cs[r], ts[r], seed=seed + r, start_date=start_date)
            df["CUSTOMER_ID"] += c_off
            df["TERMINAL_ID"] += t_off
            df["_REGION"] = np.int32(r)
            df["_ROW"] = np.arange(len(df), dtype=np.int64)
            region = df.drop(columns="TRANSACTION_ID")  # noqa: F841 (read by DuckDB by name)
            con.execute(f"COPY region TO '{tmp}/region-{r:05d}.parquet' (FORMAT parquet)")
            if log:
                log(f"region {r + 1}/{regions}: {len(df)} rows in {time.monotonic() - t0:.1f} s")
            c_off, t_off = c_off + cs[r], t_off + ts[r]
            del df, region
        amount = "TX_AMOUNT" if output.suffix == ".parquet" else "printf('%.2f', TX_AMOUNT) AS TX_AMOUNT"
        cols = ", ".join(amount if c == "TX_AMOUNT" else c for c in COLUMNS)
        fmt = "FORMAT parquet" if output.suffix == ".parquet" else "FORMAT csv, HEADER true"
        t0 = time.monotonic()
        con.execute(
            f"COPY (SELECT {cols} FROM ("
            "SELECT *, row_number() OVER (ORDER BY TX_TIME_SECONDS, _REGION, _ROW) - 1 AS TRANSACTION_ID "
            f"FROM read_parquet('{tmp}/region-*.parquet')) ORDER BY TRANSACTION_ID) TO '{output}' ({fmt})"
        )
        n = con.execute(f"SELECT count(*) FROM read_parquet('{tmp}/region-*.parquet')").fetchone()[0]
        con.close()
        if log:
            log(f"merged {n} rows in {time.monotonic() - t0:.1f} s -> {output}")
    return int(n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fraudscore_training.generate_regions", description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--terminals", type=int, default=400)
    ap.add_argument("--regions", type=int, required=True, help="K: regions of customers/K and terminals/K each")
    ap.add_argument("--seed", type=int, default=1, help="region r uses seed + r")
    ap.add_argument("--start-date", default="2018-04-01")
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB's memory_limit for the merge")
    ap.add_argument("--output", required=True, help="parquet, csv or csv.gz, by suffix")
    args = ap.parse_args(argv)
    n = write_regions(
        args.output, args.days, args.customers, args.terminals, args.regions, args.seed, args.start_date,
        args.memory_limit, log=lambda m: print(f"generate_regions: {m}", file=sys.stderr, flush=True),
    )
    print(f"generate_regions: {n} transactions in {args.regions} regions -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
