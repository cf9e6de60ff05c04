"""Compare two training-set CSVs (e.g. the TypeScript backfill against the oracle).

    python -m fraudscore_training.compare backfill.csv oracle.csv [--rtol 1e-9] [--atol 1e-9] [--duckdb]

Rows are matched by TRANSACTION_ID; columns must be the same and in the same order. Numeric
columns are compared with |a - b| <= atol + rtol * |b|; TX_DATETIME as instants (UTC).
Exit code 0 when they agree, 1 otherwise (with the first differences). `--duckdb` does the same join in
DuckDB, out of core: for training sets larger than memory (TX_DATETIME compared as text there).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from .oracle import parse_datetime


def compare(a_path: str, b_path: str, rtol: float = 1e-9, atol: float = 1e-9, show: int = 10) -> list[str]:
    ids = {"TRANSACTION_ID": str, "CUSTOMER_ID": str, "TERMINAL_ID": str, "TX_DATETIME": str}
    a = pd.read_csv(a_path, dtype=ids)
    b = pd.read_csv(b_path, dtype=ids)
    problems: list[str] = []
    if list(a.columns) != list(b.columns):
        problems.append(f"columns differ:\n  {list(a.columns)}\n  {list(b.columns)}")
        common = [c for c in a.columns if c in b.columns]
    else:
        common = list(a.columns)
    if len(a) != len(b):
        problems.append(f"row counts differ: {len(a)} vs {len(b)}")
    if a["TRANSACTION_ID"].duplicated().any() or b["TRANSACTION_ID"].duplicated().any():
        problems.append("duplicate TRANSACTION_IDs")
        return problems
    a = a.set_index("TRANSACTION_ID")
    b = b.set_index("TRANSACTION_ID")
    only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
    if len(only_a) or len(only_b):
        problems.append(f"{len(only_a)} ids only in the first, {len(only_b)} only in the second")
    idx = a.index.intersection(b.index, sort=False)
    a, b = a.loc[idx], b.loc[idx]
    for col in common:
        if col == "TRANSACTION_ID":
            continue
        if col == "TX_DATETIME":
            bad = parse_datetime(a[col]).to_numpy() != parse_datetime(b[col]).to_numpy()
        elif col in ("CUSTOMER_ID", "TERMINAL_ID"):
            bad = (a[col] != b[col]).to_numpy()
        else:
            x, y = a[col].to_numpy(np.float64), b[col].to_numpy(np.float64)
            bad = ~(np.abs(x - y) <= atol + rtol * np.abs(y))
        n = int(bad.sum())
        if n:
            rows = np.flatnonzero(bad)[:show]
            sample = ", ".join(f"{idx[i]}: {a[col].iloc[i]!r} vs {b[col].iloc[i]!r}" for i in rows)
            problems.append(f"{col}: {n} rows differ (e.g. {sample})")
    return problems


def compare_duckdb(a_path: str, b_path: str, rtol: float = 1e-9, atol: float = 1e-9) -> list[str]:
    """`compare` as one DuckDB join (spills to disk): the counts of differing rows per column."""
    import duckdb

    con = duckdb.connect()
    rel = "read_csv('{}', header = true, all_varchar = true)"
    a_cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel.format(a_path)}").fetchall()]
    b_cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel.format(b_path)}").fetchall()]
    problems: list[str] = []
    if a_cols != b_cols:
        problems.append(f"columns differ:\n  {a_cols}\n  {b_cols}")
    common = [c for c in a_cols if c in b_cols and c != "TRANSACTION_ID"]
    checks = []
    for c in common:
        if c in ("TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID"):
            checks.append(f"count(*) FILTER (WHERE a.{c} IS DISTINCT FROM b.{c})")
        else:
            x, y = f"CAST(a.{c} AS DOUBLE)", f"CAST(b.{c} AS DOUBLE)"
            checks.append(f"count(*) FILTER (WHERE NOT (abs({x} - {y}) <= {atol!r} + {rtol!r} * abs({y})))")
    n_a, n_b, matched, *bad = con.execute(
        f"SELECT (SELECT count(*) FROM {rel.format(a_path)}), (SELECT count(*) FROM {rel.format(b_path)}), "
        f"count(*), {', '.join(checks)} FROM {rel.format(a_path)} a JOIN {rel.format(b_path)} b USING (TRANSACTION_ID)"
    ).fetchone()
    if n_a != n_b:
        problems.append(f"row counts differ: {n_a} vs {n_b}")
    if matched != n_a or matched != n_b:
        problems.append(f"{matched} rows matched by TRANSACTION_ID of {n_a} and {n_b} (ids missing or duplicated)")
    problems += [f"{c}: {n} rows differ" for c, n in zip(common, bad) if n]
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fraudscore_training.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rtol", type=float, default=1e-9)
    ap.add_argument("--atol", type=float, default=1e-9)
    ap.add_argument("--duckdb", action="store_true", help="join in DuckDB (out of core), for large files")
    args = ap.parse_args(argv)
    problems = (compare_duckdb if args.duckdb else compare)(args.a, args.b, args.rtol, args.atol)
    if problems:
        print("DIFFERENT:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"same: {args.a} and {args.b} agree (rtol {args.rtol:g}, atol {args.atol:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
