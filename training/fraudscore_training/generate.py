"""Synthetic transactions in the handbook's raw format, deterministic by seed.

Follows the handbook's simulator (Le Borgne et al., chapter 3.2): customers and terminals
on a 100x100 grid, each customer using the terminals within a radius, a Poisson number
of transactions a day around noon, normal amounts; then the three fraud scenarios:

1. any amount > 220 is a fraud;
2. compromised terminals: every transaction at the terminal in the next 28 days is a fraud;
3. compromised customers: in the next 14 days, 1/3 of the customer's transactions get
   their amount x5 and are frauds.

On purpose, some transactions of a customer share the exact timestamp (second) of the
customer's previous one, and same-second rows are written in an order that differs from
TRANSACTION_ID order (as in the handbook data): the file order is the arrival order.

    python -m fraudscore_training.generate --days 30 --customers 200 --terminals 400 --seed 1 --output x.csv
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
]


def generate(
    days: int = 30,
    customers: int = 200,
    terminals: int = 400,
    seed: int = 1,
    start_date: str = "2018-04-01",
    nb_terminals_in_reach: float = 20.0,
    terminal_compromise_rate: float | None = None,
    customer_compromise_rate: float | None = None,
    same_second_rate: float = 0.01,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Profiles.
    cx, cy = rng.uniform(0, 100, customers), rng.uniform(0, 100, customers)
    mean_amount = rng.uniform(5, 100, customers)
    std_amount = mean_amount / 2
    mean_nb_tx = rng.uniform(0, 4, customers)
    tx_, ty_ = rng.uniform(0, 100, terminals), rng.uniform(0, 100, terminals)
    radius = math.sqrt(nb_terminals_in_reach * 100 * 100 / (math.pi * terminals))

    cust_l, time_l, term_l, amt_l = [], [], [], []
    for c in range(customers):
        d2 = (tx_ - cx[c]) ** 2 + (ty_ - cy[c]) ** 2
        reach = np.flatnonzero(d2 < radius * radius)
        if reach.size == 0:
            reach = np.array([int(np.argmin(d2))])
        nb = rng.poisson(mean_nb_tx[c], days)
        total = int(nb.sum())
        if total == 0:
            continue
        day = np.repeat(np.arange(days), nb)
        sec = np.rint(rng.normal(86400 / 2, 20000, total)).astype(np.int64)
        keep = (sec > 0) & (sec < 86400)
        day, sec = day[keep], sec[keep]
        n = day.size
        if n == 0:
            continue
        t = day * 86400 + sec
        t.sort()
        # Same-second collisions with the customer's previous transaction, on purpose.
        collide = np.flatnonzero(rng.random(n) < same_second_rate)
        for i in collide:
            if i > 0:
                t[i] = t[i - 1]
        amount = rng.normal(mean_amount[c], std_amount[c], n)
        neg = amount < 0
        amount[neg] = rng.uniform(0, mean_amount[c] * 2, int(neg.sum()))
        cust_l.append(np.full(n, c))
        time_l.append(t)
        term_l.append(rng.choice(reach, n))
        amt_l.append(np.round(amount, 2))

    df = pd.DataFrame(
        {
            "CUSTOMER_ID": np.concatenate(cust_l),
            "TX_TIME_SECONDS": np.concatenate(time_l),
            "TERMINAL_ID": np.concatenate(term_l),
            "TX_AMOUNT": np.concatenate(amt_l),
        }
    )
    # Arrival order: by time, ties in a random order. IDs: by time, ties in another random order,
    # so that some same-second rows are not in TRANSACTION_ID order (as in the handbook data).
    df["_arrival"] = rng.random(len(df))
    df["_idkey"] = rng.random(len(df))
    df = df.sort_values(["TX_TIME_SECONDS", "_idkey"], kind="stable").reset_index(drop=True)
    df["TRANSACTION_ID"] = np.arange(len(df))
    df = df.sort_values(["TX_TIME_SECONDS", "_arrival"], kind="stable").reset_index(drop=True)
    df["TX_TIME_DAYS"] = df["TX_TIME_SECONDS"] // 86400
    df["TX_FRAUD"] = 0
    df["TX_FRAUD_SCENARIO"] = 0

    # Scenario 1: large amounts.
    s1 = df["TX_AMOUNT"] > 220
    df.loc[s1, ["TX_FRAUD", "TX_FRAUD_SCENARIO"]] = [1, 1]
    # Scenario 2: compromised terminals for 28 days.
    rate2 = terminal_compromise_rate if terminal_compromise_rate is not None else terminals * 0.001
    tday = df["TX_TIME_DAYS"].to_numpy()
    for d in range(days):
        k = min(terminals, int(rng.poisson(rate2)))
        if k == 0:
            continue
        comp = rng.choice(terminals, k, replace=False)
        m = (tday >= d) & (tday < d + 28) & df["TERMINAL_ID"].isin(comp).to_numpy()
        df.loc[m, ["TX_FRAUD", "TX_FRAUD_SCENARIO"]] = [1, 2]
    # Scenario 3: compromised customers for 14 days, 1/3 of their transactions x5.
    rate3 = customer_compromise_rate if customer_compromise_rate is not None else customers * 0.003
    for d in range(days):
        k = min(customers, int(rng.poisson(rate3)))
        if k == 0:
            continue
        comp = rng.choice(customers, k, replace=False)
        idx = np.flatnonzero((tday >= d) & (tday < d + 14) & df["CUSTOMER_ID"].isin(comp).to_numpy())
        if idx.size == 0:
            continue
        pick = rng.choice(idx, idx.size // 3, replace=False)
        df.loc[pick, "TX_AMOUNT"] = np.round(df.loc[pick, "TX_AMOUNT"] * 5, 2)
        df.loc[pick, ["TX_FRAUD", "TX_FRAUD_SCENARIO"]] = [1, 3]

    start = pd.Timestamp(start_date)
    df["TX_DATETIME"] = (start + pd.to_timedelta(df["TX_TIME_SECONDS"], unit="s")).dt.strftime("%Y-%m-%d %H:%M:%S")
    return df[COLUMNS]


def write(df: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = df.copy()
    out["TX_AMOUNT"] = out["TX_AMOUNT"].map("{:.2f}".format)
    out.to_csv(path, index=False, compression="gzip" if path.suffix == ".gz" else None, lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fraudscore_training.generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--terminals", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start-date", default="2018-04-01")
    ap.add_argument("--output", required=True, help="csv (csv.gz if it ends in .gz)")
    args = ap.parse_args(argv)
    df = generate(args.days, args.customers, args.terminals, args.seed, args.start_date)
    write(df, args.output)
    print(
        f"generate: {len(df)} transactions, {int(df.TX_FRAUD.sum())} frauds "
        f"({df.TX_FRAUD_SCENARIO.value_counts().sort_index().to_dict()}) -> {args.output}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
