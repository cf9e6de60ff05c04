"""Reference (oracle) implementation of the feature sets, in pandas.

Independent of the TypeScript engine: it reads raw handbook-format CSVs and computes
every feature of a feature-set JSON from its `kind` / `aggregation` / `window_days` /
`delay_days`, with pandas time-based rolling windows per entity (the handbook's way).

Semantics (all times UTC, continuous time):
- Arrival order is file order (files in the order given). Rows are stably sorted by
  TX_DATETIME, so same-timestamp rows keep their file order; the output keeps the
  input order.
- A window of n days with delay d for a transaction at t covers (t-(n+d), t-d].
  With d = 0 it contains the transaction itself and the entity's earlier-arrived
  transactions, never a later-arrived one with the same timestamp (pandas' variable
  rolling window ends at the current row). With d > 0 it is computed, as in the
  handbook, as window(n+d) - window(d): both contain the current row and the same
  same-timestamp rows, which cancel.
- Entities keyed by an optional field (DEVICE_ID, IP, and the network derived from IP:
  IPv4 /24, IPv6 /48) leave out the rows without it; those rows take the documented defaults
  of the entity's features: 0 for counts, distinct counts, means, rates and new-with flags,
  1 for amount ratios, the window's span for seconds. A file without DEVICE_ID / IP columns
  is a file where every row lacks them.
- count_distinct of another entity `of` over (t-(n+d), t-d]: distinct ids of `of` among the
  entity's rows there (for d = 0, rows arrived up to and including this one), counted by
  two pointers per entity; rows without an `of` id count for none.
- seconds_since_first_with / new_with of `of` (d = 0): per (entity, of id) pair, the pair's
  earliest earlier-arrived row in (t-n, t]: seconds since it (the span when none, or when
  the row has no `of` id) and 1 when there is none (0 when the row has no `of` id).
- Amount sums are exact decimal sums when every amount is a whole number of cents
  (the handbook's amounts are): they are summed as integer cents.

CLI:
    python -m fraudscore_training.oracle --input a.csv.gz b.csv.gz --output out.csv \
        [--feature-set v1|v2|transaction_v2|path.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from . import featureset as fsmod

PREFIX_COLUMNS = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"]
OPTIONAL_COLUMNS = ["DEVICE_ID", "IP"]
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DAY = pd.Timedelta(days=1)


def read_raw(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Reads raw transactions (csv or csv.gz), concatenated in the order given."""
    frames = []
    for p in paths:
        frames.append(
            pd.read_csv(
                p,
                dtype={"TRANSACTION_ID": str, "TX_DATETIME": str, "CUSTOMER_ID": str, "TERMINAL_ID": str},
                usecols=lambda c: c in {"TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"}
                | set(OPTIONAL_COLUMNS),
            )
        )
    if not frames:
        raise ValueError("no input files")
    df = pd.concat(frames, ignore_index=True)
    missing = [c for c in PREFIX_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"input lacks columns {missing}")
    df["TX_AMOUNT"] = df["TX_AMOUNT"].astype(np.float64)
    df["TX_FRAUD"] = df["TX_FRAUD"].astype(np.int64)
    for c in OPTIONAL_COLUMNS:
        if c not in df.columns:
            df[c] = None
        df[c] = df[c].astype(object).where(df[c].notna() & (df[c].astype(str) != ""), None)
    return df[PREFIX_COLUMNS + OPTIONAL_COLUMNS]


def parse_datetime(s: pd.Series) -> pd.Series:
    """`YYYY-MM-DD HH:MM:SS` (UTC, no zone) -> naive datetime64 in UTC; other ISO forms accepted."""
    try:
        return pd.to_datetime(s, format=DATETIME_FORMAT)
    except (ValueError, TypeError):
        return pd.to_datetime(s, format="ISO8601", utc=True).dt.tz_localize(None)


class _Windows:
    """Per-entity rolling sums over (t - days, t] in arrival order, cached by (entity, days)."""

    def __init__(self, w: pd.DataFrame):
        self.w = w
        self.cache: dict[tuple[str, int], pd.DataFrame] = {}

    def sums(self, entity_col: str, days: int) -> pd.DataFrame:
        key = (entity_col, days)
        if key not in self.cache:
            w = self.w
            g = w.groupby(entity_col, sort=False)[["_t", "_one", "_amount", "_fraud"]]
            r = g.rolling(pd.Timedelta(days=days), on="_t", closed="right").sum()
            # Result index is (entity, row): back to row order.
            r = r.reset_index(level=0, drop=True)[["_one", "_amount", "_fraud"]].reindex(w.index)
            self.cache[key] = r
        return self.cache[key]

    def window(self, entity_col: str, days: int, delay: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(count, amount sum, fraud sum) over (t-(days+delay), t-delay]."""
        a = self.sums(entity_col, days + delay)
        cnt, amt, frd = a["_one"].to_numpy(), a["_amount"].to_numpy(), a["_fraud"].to_numpy()
        if delay:
            b = self.sums(entity_col, delay)
            cnt, amt, frd = cnt - b["_one"].to_numpy(), amt - b["_amount"].to_numpy(), frd - b["_fraud"].to_numpy()
        return np.rint(cnt).astype(np.int64), amt, np.rint(frd).astype(np.int64)


LINK_AGGREGATIONS = {"count_distinct", "seconds_since_first_with", "new_with"}
NS = 1_000_000_000


def _groups(codes: np.ndarray):
    """Row indices of each code >= 0, in row (time, arrival) order."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    for rows in np.split(order, bounds):
        if rows.size and codes[rows[0]] >= 0:
            yield rows


def _distinct(ent: np.ndarray, other: np.ndarray, tns: np.ndarray, days: int, delay: int) -> np.ndarray:
    """Distinct `other` ids (>= 0) among the entity's rows in (t-(days+delay), t-delay], by two pointers."""
    out = np.zeros(len(ent), dtype=np.int64)
    span, lag = days * 86400 * NS, delay * 86400 * NS
    for rows in _groups(ent):
        t = tns[rows].tolist()
        o = other[rows].tolist()
        counts: dict[int, int] = {}
        lo = hi = 0
        for k in range(len(rows)):
            if delay == 0:
                stop = k + 1
            else:
                stop = hi
                while stop < len(rows) and t[stop] <= t[k] - lag:
                    stop += 1
            for j in range(hi, stop):
                if o[j] >= 0:
                    counts[o[j]] = counts.get(o[j], 0) + 1
            hi = stop
            while lo < hi and t[lo] <= t[k] - lag - span:
                if o[lo] >= 0:
                    counts[o[lo]] -= 1
                    if counts[o[lo]] == 0:
                        del counts[o[lo]]
                lo += 1
            out[rows[k]] = len(counts)
    return out


def _first_with(ent: np.ndarray, other: np.ndarray, tns: np.ndarray, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, seconds since the (entity, other) pair's earliest earlier row in (t-days, t] (span if none) and
    whether there is none (1) - 0 and the span for rows without either id."""
    n = len(ent)
    cap = float(days * 86400)
    seconds = np.full(n, cap)
    new = np.zeros(n, dtype=np.int64)
    span = days * 86400 * NS
    valid = (ent >= 0) & (other >= 0)
    pair = np.where(valid, ent.astype(np.int64) * (int(other.max(initial=0)) + 1) + other, -1)
    for rows in _groups(pair):
        t = tns[rows].tolist()
        lo = 0
        for k in range(len(rows)):
            while lo < k and t[lo] <= t[k] - span:
                lo += 1
            if lo < k:
                seconds[rows[k]] = (t[k] - t[lo]) / NS
            else:
                new[rows[k]] = 1
    return seconds, new


def compute_features(raw: pd.DataFrame, fs: fsmod.FeatureSet) -> pd.DataFrame:
    """Returns PREFIX_COLUMNS + every feature of `fs` (TX_AMOUNT not repeated), in input row order."""
    n = len(raw)
    t = parse_datetime(raw["TX_DATETIME"])
    w = pd.DataFrame(
        {
            "_t": t.to_numpy(),
            "_one": np.ones(n, dtype=np.float64),
            "_fraud": raw["TX_FRAUD"].to_numpy(np.float64),
        }
    )
    amount = raw["TX_AMOUNT"].to_numpy(np.float64)
    cents = np.rint(amount * 100.0)
    exact_cents = bool(np.all(np.abs(amount * 100.0 - cents) < 1e-6))
    # Integer cents keep every rolling sum exact; otherwise plain float sums.
    w["_amount"] = cents if exact_cents else amount
    scale = 100.0 if exact_cents else 1.0

    entity_cols: dict[str, str] = {}
    ent_defs = {}
    for f in fs.features:
        if f.get("kind") == "window":
            ent_defs[f["entity"]] = None
            if f.get("of"):
                ent_defs[f["of"]] = None
    keys = fs.entities or {}
    for ent in ent_defs:
        key = keys.get(ent, ent + "_id")
        if key == "ip_prefix":
            ips = raw["IP"] if "IP" in raw.columns else pd.Series([None] * n)
            values = ips.map(lambda v: None if v is None or v != v else fsmod.ip_prefix(str(v)))
        else:
            col = key.upper()
            if col not in raw.columns:
                raise ValueError(f"entity {ent!r}: no column {col}")
            values = raw[col]
        # Rows without the field get code -1: outside every group, given their defaults below.
        codes, _ = pd.factorize(values, sort=False, use_na_sentinel=True)
        w["_e_" + ent] = codes
        entity_cols[ent] = "_e_" + ent

    # Stable sort by time: same-timestamp rows keep arrival (file) order.
    if not w["_t"].is_monotonic_increasing:
        order = np.argsort(w["_t"].to_numpy(), kind="stable")
        w = w.iloc[order].reset_index(drop=True)
        amount_sorted = amount[order]
    else:
        order = None
        amount_sorted = amount
    windows = _Windows(w)

    out: dict[str, np.ndarray] = {}
    for f in fs.features:
        name, kind = f["name"], f["kind"]
        if kind == "request":
            if f.get("field") != "amount":
                raise ValueError(f"{name}: unsupported request field {f.get('field')!r}")
            out[name] = amount_sorted
        elif kind == "calendar":
            ts = w["_t"].dt
            if f["calendar"] == "weekend":
                out[name] = (ts.dayofweek >= 5).to_numpy().astype(np.int64)
            elif f["calendar"] == "night":
                out[name] = (ts.hour <= int(f.get("night_end_hour", 6))).to_numpy().astype(np.int64)
            else:
                raise ValueError(f"{name}: unsupported calendar {f['calendar']!r}")
        elif kind == "window" and f["aggregation"] in LINK_AGGREGATIONS:
            days, delay = int(f["window_days"]), int(f.get("delay_days", 0))
            ent = w[entity_cols[f["entity"]]].to_numpy()
            other = w[entity_cols[f["of"]]].to_numpy()
            tns = w["_t"].to_numpy().astype("datetime64[ns]").astype(np.int64)
            if f["aggregation"] == "count_distinct":
                out[name] = _distinct(ent, other, tns, days, delay)
            else:
                if delay:
                    raise ValueError(f"{name}: {f['aggregation']} with a delay is not defined")
                seconds, new = _first_with(ent, other, tns, days)
                out[name] = seconds if f["aggregation"] == "seconds_since_first_with" else new
        elif kind == "window":
            ecol = entity_cols[f["entity"]]
            days, delay = int(f["window_days"]), int(f.get("delay_days", 0))
            agg = f["aggregation"]
            cnt, amt, frd = windows.window(ecol, days, delay)
            amt = amt / scale
            if exact_cents:
                amt = np.round(amt, 2)
            with np.errstate(divide="ignore", invalid="ignore"):
                if agg == "count":
                    out[name] = cnt
                elif agg == "mean_amount":
                    out[name] = np.where(cnt > 0, amt / np.maximum(cnt, 1), 0.0)
                elif agg == "fraud_rate":
                    out[name] = np.where(cnt > 0, frd / np.maximum(cnt, 1), 0.0)
                elif agg == "amount_ratio_to_prior_mean":
                    if delay:
                        raise ValueError(f"{name}: amount ratio with a delay is not defined")
                    prior_cnt = cnt - 1
                    prior_sum = amt - amount_sorted
                    if exact_cents:
                        prior_sum = np.round(prior_sum, 2)
                    prior_mean = prior_sum / np.maximum(prior_cnt, 1)
                    ratio = amount_sorted / prior_mean
                    # 1 when there is no earlier transaction in the window (and, by this
                    # oracle's convention, when the earlier ones all had amount 0).
                    out[name] = np.where((prior_cnt > 0) & (prior_mean > 0), ratio, 1.0)
                elif agg == "seconds_since_previous":
                    if delay:
                        raise ValueError(f"{name}: seconds since previous with a delay is not defined")
                    limit = float(days * 86400)
                    prev = w.groupby(ecol, sort=False)["_t"].shift(1)
                    dt = (w["_t"] - prev).dt.total_seconds().to_numpy()
                    out[name] = np.where(np.isnan(dt) | (dt >= limit), limit, dt)
                else:
                    raise ValueError(f"{name}: unsupported aggregation {agg!r}")
            # Rows without the entity's field: the documented defaults.
            absent = w[ecol].to_numpy() < 0
            if absent.any():
                default = {"amount_ratio_to_prior_mean": 1.0, "seconds_since_previous": float(days * 86400)}.get(agg, 0)
                out[name] = np.where(absent, default, out[name])
        else:
            raise ValueError(f"{name}: unsupported kind {kind!r}")

    if order is not None:
        inverse = np.empty_like(order)
        inverse[order] = np.arange(n)
        out = {k: v[inverse] for k, v in out.items()}

    result = raw[PREFIX_COLUMNS].copy()
    for f in fs.features:
        if f["name"] == "TX_AMOUNT":
            continue
        result[f["name"]] = out[f["name"]]
    return result


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Floats are written with round-trip precision (shortest repr), ints as ints."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.to_csv(tmp, index=False, compression="gzip" if path.suffix == ".gz" else None, lineterminator="\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fraudscore_training.oracle", description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", nargs="+", required=True, help="raw handbook-format csv / csv.gz files, in arrival order")
    ap.add_argument("--output", required=True, help="training-set csv (csv.gz if it ends in .gz)")
    ap.add_argument("--feature-set", default="v1", help="v1 | v2 | transaction_v2 | path to a feature-set JSON")
    ap.add_argument("--features-dir", default=None, help="folder of feature-set JSONs (default: <repo>/features)")
    args = ap.parse_args(argv)
    t0 = time.time()
    fs = fsmod.load(args.feature_set, Path(args.features_dir) if args.features_dir else None)
    raw = read_raw(args.input)
    feats = compute_features(raw, fs)
    write_csv(feats, args.output)
    print(
        f"oracle: {fs.id}: {len(feats)} rows, {len(feats.columns)} columns -> {args.output} ({time.time() - t0:.1f}s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
