"""Synthetic transactions in the handbook's raw format, deterministic by seed.

Follows the handbook's simulator (Le Borgne et al., chapter 3.2): customers and terminals
on a 100x100 grid, each customer using the terminals within a radius, a Poisson number
of transactions a day around noon, normal amounts; then the three fraud scenarios:

1. any amount > 220 is a fraud;
2. compromised terminals: every transaction at the terminal in the next 28 days is a fraud;
3. compromised customers: in the next 14 days, 1/3 of the customer's transactions get
   their amount x5 and are frauds.

With devices (`--devices`, issue 20), every transaction also gets a DEVICE_ID and an IP, and
three more scenarios add fraudulent transactions that only device and network features can
see (the handbook's three are kept as they are, on the same legitimate transactions):

- devices and networks: each customer has one to three devices (a phone used most, a laptop,
  a tablet) and a home network (an IPv4 /24, or an IPv6 /48 for a quarter of them); a quarter
  of transactions come from one of a few mobile carriers' networks, shared by many customers
  (carrier-grade NAT); some customers replace their phone once in the period (a new device,
  legitimately), and some travel for a few days (hotel networks). 3% of transactions have no
  DEVICE_ID and 3% no IP (requests that lack them).
4. account takeover: a fraudster logs in as the customer from a new device and a network of
   its own, then makes two to six transactions of 2-5x the customer's mean amount within six
   hours, at terminals anywhere;
5. card testing: one device on one network tries 20 to 60 stolen cards (customers) with small
   amounts (0.50-3.00) within two hours, then spends 100-200 on a few of them;
6. fraud ring: three devices on two networks, shared by the cards the ring compromises
   (about one a day), each card used once to three times for 50-200 over a few days.

On purpose, some transactions of a customer share the exact timestamp (second) of the
customer's previous one, and same-second rows are written in an order that differs from
TRANSACTION_ID order (as in the handbook data): the file order is the arrival order.

    python -m fraudscore_training.generate --days 30 --customers 200 --terminals 400 --seed 1 --output x.csv
    python -m fraudscore_training.generate ... --devices --output with-devices.csv
    python -m fraudscore_training.generate ... --labeled-at --output labels-later.csv

With `--labeled-at` the file has a LABELED_AT column (when the label became known, as an export of the
labels topic's `labeled_at` gives it) with label lags chosen to test the backfill engines, not to be
realistic: none, earlier than or equal to the transaction, seconds to weeks later, exactly the feature sets'
window and delay lengths, exactly the time of a later transaction of the same terminal or customer (a label
arriving at the instant of a transaction), after every window; some with milliseconds or in ISO form with a
zone. Legitimate transactions get some values too (the backfill ignores them).
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
DEVICE_COLUMNS = ["DEVICE_ID", "IP"]
SCENARIOS = {
    1: "large amount",
    2: "compromised terminal",
    3: "compromised customer",
    4: "account takeover",
    5: "card testing",
    6: "fraud ring",
}


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
    devices: bool = False,
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

    columns = COLUMNS
    if devices:
        df = _with_devices(df, days, customers, terminals, seed, mean_amount)
        columns = COLUMNS + DEVICE_COLUMNS
    start = pd.Timestamp(start_date)
    df["TX_DATETIME"] = (start + pd.to_timedelta(df["TX_TIME_SECONDS"], unit="s")).dt.strftime("%Y-%m-%d %H:%M:%S")
    return df[columns]


def _with_devices(
    df: pd.DataFrame, days: int, customers: int, terminals: int, seed: int, mean_amount: np.ndarray
) -> pd.DataFrame:
    """Devices and networks for the legitimate transactions, then scenarios 4-6 as new rows (see the module doc)."""
    # A stream of its own: the transactions and the handbook's scenarios are those of the same seed without devices.
    rng = np.random.default_rng([seed, 20])
    n = len(df)
    cust = df["CUSTOMER_ID"].to_numpy()
    tday = df["TX_TIME_DAYS"].to_numpy()
    nb_devices = rng.integers(1, 4, customers)
    ipv6_home = rng.random(customers) < 0.25
    carriers = [f"100.64.{k}" for k in range(6)]

    def home_ip(c: int) -> str:
        if ipv6_home[c]:
            return f"2001:db8:{c:x}::{int(rng.integers(1, 0xFFFF)):x}"
        return f"10.{c // 256}.{c % 256}.{int(rng.integers(2, 255))}"

    # Churn: a new phone from a random day on (a fifth of customers); travel for 2-6 days (a tenth).
    new_phone_day = np.where(rng.random(customers) < 0.2, rng.integers(1, max(2, days), customers), days + 1)
    travel_from = np.where(rng.random(customers) < 0.1, rng.integers(0, max(1, days), customers), -100)
    travel_len = rng.integers(2, 7, customers)
    dev = np.empty(n, dtype=object)
    ip = np.empty(n, dtype=object)
    u = rng.random(n)
    which = rng.random(n)
    for i in range(n):
        c = int(cust[i])
        d = int(tday[i])
        k = 0 if nb_devices[c] == 1 or which[i] < 0.7 else 1 + int(which[i] * 10) % (nb_devices[c] - 1)
        phone = f"{c}-{k}" if k > 0 or d < new_phone_day[c] else f"{c}-0b"
        dev[i] = f"dev-{phone}"
        if travel_from[c] <= d < travel_from[c] + travel_len[c]:
            ip[i] = f"192.0.{(c * 7 + travel_from[c]) % 256}.{int(rng.integers(2, 255))}"
        elif u[i] < 0.25:
            ip[i] = f"{carriers[c % len(carriers)]}.{int(rng.integers(2, 255))}"
        else:
            ip[i] = home_ip(c)
    dev[rng.random(n) < 0.03] = None
    ip[rng.random(n) < 0.03] = None
    df = df.assign(DEVICE_ID=dev, IP=ip)

    rows: list[tuple[int, int, int, float, str, str, int]] = []  # seconds, customer, terminal, amount, device, ip, scenario
    # 4. Account takeover.
    for d in range(days):
        for v in rng.choice(customers, min(customers, int(rng.poisson(customers * 0.002))), replace=False):
            t0 = d * 86400 + int(rng.integers(0, 86400))
            device, net = f"ato-{d}-{v}", f"185.220.{int(rng.integers(0, 256))}"
            for _ in range(int(rng.integers(2, 7))):
                t = t0 + int(rng.integers(0, 6 * 3600))
                amount = round(float(mean_amount[v] * rng.uniform(2, 5)), 2)
                rows.append((t, int(v), int(rng.integers(terminals)), amount, device, f"{net}.{int(rng.integers(2, 255))}", 4))
    # 5. Card testing.
    for d in range(days):
        for e in range(int(rng.poisson(0.2))):
            t0 = d * 86400 + int(rng.integers(0, 86400))
            device, ipaddr = f"ct-{d}-{e}", f"2001:db8:f{d % 16:x}{e:x}::{int(rng.integers(1, 0xFFFF)):x}"
            merchant = int(rng.integers(terminals))
            cards = rng.choice(customers, min(customers, int(rng.integers(20, 61))), replace=False)
            for c in cards:
                rows.append((t0 + int(rng.integers(0, 7200)), int(c), merchant, round(float(rng.uniform(0.5, 3)), 2), device, ipaddr, 5))
            for c in cards[: int(rng.integers(1, 4))]:
                t = t0 + 7200 + int(rng.integers(0, 3600))
                rows.append((t, int(c), int(rng.integers(terminals)), round(float(rng.uniform(100, 200)), 2), device, ipaddr, 5))
    # 6. Fraud ring.
    ring_devices = [f"ring-{k}" for k in range(3)]
    ring_nets = ["198.51.100", "203.0.113"]
    for d in range(days):
        for c in rng.choice(customers, min(customers, int(rng.poisson(1.0))), replace=False):
            for _ in range(int(rng.integers(1, 4))):
                t = (d + int(rng.integers(0, 3))) * 86400 + int(rng.integers(0, 86400))
                if t >= days * 86400:
                    continue
                rows.append(
                    (
                        t,
                        int(c),
                        int(rng.integers(terminals)),
                        round(float(rng.uniform(50, 200)), 2),
                        ring_devices[int(rng.integers(3))],
                        f"{ring_nets[int(rng.integers(2))]}.{int(rng.integers(2, 255))}",
                        6,
                    )
                )
    if not rows:
        return df
    extra = pd.DataFrame(
        rows, columns=["TX_TIME_SECONDS", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "DEVICE_ID", "IP", "TX_FRAUD_SCENARIO"]
    )
    extra["TRANSACTION_ID"] = np.arange(len(df), len(df) + len(extra))
    extra["TX_TIME_DAYS"] = extra["TX_TIME_SECONDS"] // 86400
    extra["TX_FRAUD"] = 1
    # Arrival order: by time; at equal times the legitimate transactions first.
    df = df.drop(columns=["_arrival", "_idkey"])
    out = pd.concat([df, extra[df.columns]], ignore_index=True)
    return out.sort_values("TX_TIME_SECONDS", kind="stable").reset_index(drop=True)


def with_labeled_at(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """`df` with a LABELED_AT column of mixed label lags (see the module doc); deterministic by seed."""
    rng = np.random.default_rng(seed + 1_000_003)
    t = (pd.to_datetime(df["TX_DATETIME"]).astype("int64") // 10**6).to_numpy()
    n = len(df)
    kind = rng.integers(0, 10, n)
    lag = rng.integers(1, 2 * 86_400, n) * 1000  # kind 3: seconds to two days
    lag = np.where(kind == 1, -3_600_000, lag)  # earlier than the transaction: goes with it
    lag = np.where(kind == 2, 0, lag)  # at the transaction: goes with it
    lag = np.where(kind == 4, rng.integers(1, 10 * 86_400_000, n), lag)  # up to ten days, in ms
    days = np.array([1, 2, 3, 7, 8, 14, 30, 37])  # window and delay lengths, and their sums
    lag = np.where(kind == 5, days[rng.integers(0, len(days), n)] * 86_400_000, lag)
    lag = np.where(kind == 6, rng.integers(10 * 86_400, 45 * 86_400, n) * 1000, lag)  # often after every window
    at = t + lag
    # Kinds 7-9: the time of a later transaction of the same terminal (7, 8) or customer (9).
    for key, kinds in (("TERMINAL_ID", (7, 8)), ("CUSTOMER_ID", (9,))):
        pos = np.arange(n)
        order = pd.DataFrame({"k": df[key].to_numpy(), "t": t, "i": pos}).sort_values(["k", "t", "i"], kind="stable")
        ks, ts, idx = order["k"].to_numpy(), order["t"].to_numpy(), order["i"].to_numpy()
        ahead = rng.integers(1, 20, n)
        j = np.minimum(np.arange(n) + ahead, n - 1)
        same = ks[j] == ks
        pick = np.isin(kind[idx], kinds) & same & (ts[j] > ts)
        at[idx[pick]] = ts[j[pick]]
    text = pd.to_datetime(at, unit="ms").strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3].to_numpy(dtype=object)
    whole = at % 1000 == 0
    text[whole] = [x[:-4] for x in text[whole]]
    iso = rng.random(n) < 0.1
    text[iso] = [x.replace(" ", "T") + "Z" for x in text[iso]]
    fraud = df["TX_FRAUD"].to_numpy() == 1
    text[(kind == 0) | (~fraud & (rng.random(n) < 0.7))] = ""
    out = df.copy()
    out["LABELED_AT"] = text
    return out


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
    ap.add_argument("--devices", action="store_true", help="DEVICE_ID and IP columns, and scenarios 4-6 (issue 20)")
    ap.add_argument("--labeled-at", action="store_true", help="a LABELED_AT column of mixed label lags (for tests)")
    ap.add_argument("--output", required=True, help="csv (csv.gz if it ends in .gz)")
    args = ap.parse_args(argv)
    df = generate(args.days, args.customers, args.terminals, args.seed, args.start_date, devices=args.devices)
    if args.labeled_at:
        df = with_labeled_at(df, args.seed)
    write(df, args.output)
    print(
        f"generate: {len(df)} transactions, {int(df.TX_FRAUD.sum())} frauds "
        f"({df.TX_FRAUD_SCENARIO.value_counts().sort_index().to_dict()}) -> {args.output}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
