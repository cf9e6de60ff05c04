"""A literal, row-by-row implementation of the feature semantics, to check the oracle.

Quadratic per entity; for small data or a sample of rows only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY = 86400


def features_for_rows(raw: pd.DataFrame, fs, rows: list[int] | None = None) -> dict[int, dict[str, float]]:
    t = (pd.to_datetime(raw["TX_DATETIME"], format="%Y-%m-%d %H:%M:%S").astype("int64") // 10**9).to_numpy()
    amount = raw["TX_AMOUNT"].to_numpy(float)
    fraud = raw["TX_FRAUD"].to_numpy(int)
    ent = {"customer": raw["CUSTOMER_ID"].astype(str).to_numpy(), "terminal": raw["TERMINAL_ID"].astype(str).to_numpy()}
    idx_by = {k: pd.Series(np.arange(len(raw))).groupby(v).apply(list).to_dict() for k, v in ent.items()}
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
            peers = idx_by[f["entity"]][ent[f["entity"]][i]]
            if d == 0:
                win = [j for j in peers if ti - n < t[j] <= ti and arrived_before_or_self(j)]
            else:
                win = [j for j in peers if ti - n - d < t[j] <= ti - d]
            agg = f["aggregation"]
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
            else:
                raise ValueError(agg)
        out[i] = r
    return out
