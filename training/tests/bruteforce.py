"""A literal, row-by-row implementation of the feature semantics, to check the oracle.

Quadratic per entity; for small data or a sample of rows only. Covers every kind of v1-v3: request,
calendar, the per-entity windows (count, mean amount, fraud rate, amount ratio, seconds since previous) and
v3's links between two entities (count_distinct, seconds_since_first_with, new_with) on the optional device,
ip and network (ip_prefix) entities, with the documented defaults for rows that lack the field.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudscore_training import featureset as fsmod

DAY = 86400


def _present(v) -> bool:
    return v is not None and v == v and str(v) != ""


def _entity_values(raw: pd.DataFrame, key: str) -> np.ndarray:
    """The entity id of each row (None when the row lacks the field), keyed as the feature set says."""
    if key == "ip_prefix":
        ips = raw["IP"] if "IP" in raw.columns else pd.Series([None] * len(raw))
        return np.array([fsmod.ip_prefix(str(v)) if _present(v) else None for v in ips], dtype=object)
    col = key.upper()
    vals = raw[col] if col in raw.columns else pd.Series([None] * len(raw))
    return np.array([str(v) if _present(v) else None for v in vals], dtype=object)


def features_for_rows(raw: pd.DataFrame, fs, rows: list[int] | None = None) -> dict[int, dict[str, float]]:
    t = (pd.to_datetime(raw["TX_DATETIME"], format="%Y-%m-%d %H:%M:%S").astype("int64") // 10**9).to_numpy()
    amount = raw["TX_AMOUNT"].to_numpy(float)
    fraud = raw["TX_FRAUD"].to_numpy(int)
    keys = fs.entities or {}
    names = {"customer", "terminal"} | {f["entity"] for f in fs.features if "entity" in f} | {f["of"] for f in fs.features if f.get("of")}
    ent = {e: _entity_values(raw, keys.get(e, e + "_id")) for e in names}
    idx_by: dict[str, dict[str, list[int]]] = {}
    for e, v in ent.items():
        groups: dict[str, list[int]] = {}
        for j, k in enumerate(v):
            if k is not None:
                groups.setdefault(k, []).append(j)
        idx_by[e] = groups
    rows = range(len(raw)) if rows is None else rows
    out = {}
    for i in rows:
        ti = t[i]
        dt = pd.Timestamp(ti, unit="s")
        r: dict[str, float] = {}

        def arrived_before_or_self(j: int) -> bool:
            return t[j] < ti or (t[j] == ti and j <= i)

        for f in fs.features:
            name, kind = f["name"], f["kind"]
            if kind == "request":
                r[name] = amount[i]
                continue
            if kind == "calendar":
                if f["calendar"] == "weekend":
                    r[name] = 1 if dt.dayofweek >= 5 else 0
                else:
                    r[name] = 1 if dt.hour <= f["night_end_hour"] else 0
                continue
            n, d = f["window_days"] * DAY, f.get("delay_days", 0) * DAY
            agg = f["aggregation"]
            key = ent[f["entity"]][i]
            if key is None:
                # The row lacks the entity's field: the documented default.
                r[name] = {"amount_ratio_to_prior_mean": 1.0, "seconds_since_previous": float(n), "seconds_since_first_with": float(n)}.get(agg, 0)
                continue
            peers = idx_by[f["entity"]][key]
            if d == 0:
                win = [j for j in peers if ti - n < t[j] <= ti and arrived_before_or_self(j)]
            else:
                win = [j for j in peers if ti - n - d < t[j] <= ti - d]
            if agg == "count":
                r[name] = len(win)
            elif agg == "mean_amount":
                r[name] = float(np.mean(amount[win])) if win else 0.0
            elif agg == "fraud_rate":
                r[name] = float(np.mean(fraud[win])) if win else 0.0
            elif agg == "amount_ratio_to_prior_mean":
                prior = [j for j in win if j != i]
                m = float(np.mean(amount[prior])) if prior else 0.0
                r[name] = amount[i] / m if prior and m > 0 else 1.0
            elif agg == "seconds_since_previous":
                prior = [j for j in win if j != i]
                if prior:
                    # previous = the latest-arrived earlier one
                    last = max(prior, key=lambda j: (t[j], j))
                    r[name] = float(ti - t[last])
                else:
                    r[name] = float(n)
            elif agg == "count_distinct":
                other = ent[f["of"]]
                r[name] = len({other[j] for j in win if other[j] is not None})
            elif agg in ("seconds_since_first_with", "new_with"):
                other = ent[f["of"]]
                mine = other[i]
                # The (entity, of) pair's earlier-arrived rows in (t - n, t], this one excluded.
                same = [j for j in win if j != i and mine is not None and other[j] == mine]
                if agg == "new_with":
                    r[name] = 0 if mine is None else (0 if same else 1)
                else:
                    r[name] = float(ti - min(t[j] for j in same)) if same else float(n)
            else:
                raise ValueError(agg)
        out[i] = r
    return out
