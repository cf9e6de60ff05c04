"""The compiled feature query on DuckDB: handbook CSV(.gz) or Parquet in, training set out.

Inputs are loaded into one table in the order given, so DuckDB's row id is the arrival order (the
loader preserves insertion order); the query of `sqlfeatures` then runs under a memory limit, spilling
to `temp_dir` beyond it. An optional LABELED_AT column is read as when each label arrived (see
sqlfeatures). Outputs: a CSV (`.csv` or `.csv.gz`; rows in arrival order, as `fraudscore backfill` writes
them) and/or a Parquet folder partitioned by day (`TX_DAY=YYYY-MM-DD/`, UTC).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from . import sqlfeatures
from .featureset import FeatureSet


def _reader(path: str) -> str:
    p = str(path).replace("'", "''")
    if p.endswith(".parquet") or Path(p).is_dir():
        return f"read_parquet('{p}')"
    return f"read_csv('{p}', header = true, all_varchar = true)"


def connect(memory_limit: str | None = None, threads: int | None = None, temp_dir: str | None = None):
    """A DuckDB connection with UTC session time and insertion order kept (row id = arrival order)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if temp_dir:
        con.execute(f"SET temp_directory = '{temp_dir}'")
    return con


def load(con, inputs: list[str]) -> tuple[float, bool]:
    """Loads `inputs` into table `src` in order; returns (the amount scale: 100 for whole cents, else 1,
    whether some fraud label arrives after its transaction: LABELED_AT, read into `_a` as epoch ms).

    Raises ValueError on a missing column, an unparseable time or LABELED_AT, or a negative/non-numeric
    amount (the Node reader refuses those rows too)."""
    con.execute(
        "CREATE OR REPLACE TABLE src (TRANSACTION_ID VARCHAR, TX_DATETIME VARCHAR, CUSTOMER_ID VARCHAR, "
        "TERMINAL_ID VARCHAR, TX_AMOUNT DOUBLE, TX_FRAUD INTEGER, _t BIGINT, LABELED_AT VARCHAR, _a BIGINT)"
    )
    for path in inputs:
        rel = _reader(path)
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
        missing = [c for c in sqlfeatures.PREFIX[:5] if c not in cols]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        fraud = "CASE WHEN CAST(TX_FRAUD AS VARCHAR) = '1' THEN 1 ELSE 0 END" if "TX_FRAUD" in cols else "0"
        labeled = "NULLIF(CAST(LABELED_AT AS VARCHAR), '')" if "LABELED_AT" in cols else "CAST(NULL AS VARCHAR)"
        con.execute(
            "INSERT INTO src SELECT CAST(TRANSACTION_ID AS VARCHAR), CAST(TX_DATETIME AS VARCHAR), "
            "CAST(CUSTOMER_ID AS VARCHAR), CAST(TERMINAL_ID AS VARCHAR), TRY_CAST(TX_AMOUNT AS DOUBLE), "
            f"{fraud}, epoch_ms(TRY_CAST(CAST(TX_DATETIME AS VARCHAR) AS TIMESTAMPTZ)), {labeled}, "
            f"epoch_ms(TRY_CAST({labeled} AS TIMESTAMPTZ)) FROM {rel}"
        )
    bad = con.execute(
        "SELECT count(*), any_value(TRANSACTION_ID) FROM src "
        "WHERE _t IS NULL OR TX_AMOUNT IS NULL OR isnan(TX_AMOUNT) OR TX_AMOUNT < 0 "
        "OR (LABELED_AT IS NOT NULL AND _a IS NULL)"
    ).fetchone()
    if bad[0]:
        raise ValueError(f"{bad[0]} bad row(s) (time, amount or LABELED_AT), e.g. transaction {bad[1]}")
    n, cents, late = con.execute(
        "SELECT count(*), coalesce(bool_and(abs(TX_AMOUNT * 100 - round(TX_AMOUNT * 100)) < 1e-6), true), "
        "count(*) FILTER (WHERE TX_FRAUD = 1 AND _a > _t) FROM src"
    ).fetchone()
    if n == 0:
        raise ValueError(f"no transactions in {', '.join(map(str, inputs))}")
    return (100.0 if cents else 1.0), late > 0


def run(
    inputs: list[str],
    fs: FeatureSet,
    csv_out: str | None = None,
    parquet_out: str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    temp_dir: str | None = None,
) -> int:
    """Computes the training set of `fs` over `inputs`; writes the outputs asked for; returns the row count."""
    if not csv_out and not parquet_out:
        raise ValueError("nothing to write: give a CSV and/or a Parquet output")
    con = connect(memory_limit, threads, temp_dir)
    scale, labeled_later = load(con, inputs)
    units = "CAST(round(TX_AMOUNT * 100) AS BIGINT)" if scale == 100.0 else "TX_AMOUNT"
    source = f"(SELECT *, rowid AS _seq, {units} AS _u FROM src)"
    # Only a history with labels that arrive after their transaction pays for the label events.
    query = sqlfeatures.compile_query(fs, source, ["_seq"], scale, labeled_at=labeled_later)
    cols = ", ".join(sqlfeatures.output_columns(fs))
    relation = f"({query})"
    if csv_out and parquet_out:
        con.execute(f"CREATE TEMP TABLE feats AS {query}")
        relation = "feats"
    rows = con.execute("SELECT count(*) FROM src").fetchone()[0]
    if csv_out:
        out = Path(csv_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        gz = ", COMPRESSION gzip" if out.suffix == ".gz" else ""
        con.execute(f"COPY (SELECT {cols} FROM {relation} ORDER BY _seq) TO '{tmp}' (HEADER, DELIMITER ','{gz})")
        tmp.replace(out)
    if parquet_out:
        con.execute(
            f"COPY (SELECT {cols}, strftime(epoch_ms(_t), '%Y-%m-%d') AS TX_DAY FROM {relation} ORDER BY _seq) "
            f"TO '{parquet_out}' (FORMAT parquet, PARTITION_BY (TX_DAY), OVERWRITE_OR_IGNORE true)"
        )
    con.close()
    return int(rows)
