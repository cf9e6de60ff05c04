"""Feature-set definitions compiled to one SQL query of window functions (DuckDB and Spark SQL).

The query reproduces the TypeScript engine as `fraudscore backfill` runs it (src/domain/features/engine.ts,
src/usecases/backfill.ts), row for row:

- Arrival order is a sort key given by the caller (`seq`: one or more columns, e.g. file index then row);
  event time `_t` is epoch milliseconds (BIGINT, UTC).
- A window of n days with delay d covers (t - (n + d), t - d]. With d = 0 it holds the transaction itself
  and the entity's transactions that arrived before it, never one with the same time that arrived after:
  a RANGE frame over `_t` minus the later-arrived peers (same entity, same `_t`, later `seq`).
- Labels: each transaction's TX_FRAUD becomes visible with the transaction itself (the backfill applies a
  label right after its transaction), so a delayed window sees every label in its range and a window with
  d = 0 sees the earlier-arrived transactions' labels but not the current one's. Labels do not carry an
  arrival time (`labeled_at`) in the engine or in the handbook files; the delay is the only label lag.
- Amounts are summed as integer cents when every amount is a whole number of cents (exact, so the
  subtraction of peers is exact), else as DOUBLE (`amount_scale` = 1).
- Defaults as the engine: mean and fraud rate 0 over an empty window; amount ratio 1 when there is no
  earlier transaction in the window or their mean is 0; seconds since previous = the window's length in
  seconds when there is none in the window.

Input relation `source` must have: TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID (strings),
TX_AMOUNT (DOUBLE), TX_FRAUD (INTEGER 0/1), `_t` (BIGINT ms), `_u` (amount in units of 1/amount_scale:
BIGINT cents or DOUBLE) and the `seq` columns. Output: TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID,
TERMINAL_ID, TX_AMOUNT, TX_FRAUD, every feature of the set in definition order (TX_AMOUNT not repeated;
counts BIGINT, flags INTEGER, the rest DOUBLE), then the `seq` columns and `_t` for ordering/partitioning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from .featureset import FeatureSet

DAY_MS = 86_400_000
PREFIX = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"]
AGGREGATIONS = {"count", "mean_amount", "fraud_rate", "amount_ratio_to_prior_mean", "seconds_since_previous"}


@dataclass(frozen=True)
class _Spec:
    """One (entity, window, delay) frame; `name` prefixes its helper columns."""

    entity: str
    key: str
    span_ms: float
    delay_ms: float
    name: str


def _dbl(x: str) -> str:
    return f"CAST({x} AS DOUBLE)"


def _lit(x: float) -> str:
    """A DOUBLE literal both dialects read as DOUBLE (a bare 1.5 is DECIMAL in Spark)."""
    return f"CAST({float(x)!r} AS DOUBLE)"


def entity_keys(fs: FeatureSet) -> dict[str, str]:
    """entity name -> key column (CUSTOMER_ID / TERMINAL_ID): the set's `entities`, else `<entity>_id`."""
    keys = {}
    used = {f["entity"] for f in fs.features if f["kind"] == "window"}
    for name in sorted(used | set(fs.entities or {})):
        key = str((fs.entities or {}).get(name, f"{name}_id")).upper()
        if key not in ("CUSTOMER_ID", "TERMINAL_ID"):
            raise ValueError(f"entity {name!r}: unsupported key {e['key']!r}")
        keys[name] = key
    return keys


def compile_query(fs: FeatureSet, source: str, seq: list[str], amount_scale: float) -> str:
    """The SELECT over relation `source` that computes every feature of `fs` (see the module doc)."""
    keys = entity_keys(fs)
    specs: dict[tuple[str, float, float], _Spec] = {}
    for f in fs.features:
        if f["kind"] != "window":
            continue
        if f["aggregation"] not in AGGREGATIONS:
            raise ValueError(f"{f['name']}: unsupported aggregation {f['aggregation']!r}")
        if f["entity"] not in keys:
            raise ValueError(f"{f['name']}: unknown entity {f['entity']!r}")
        delay = float(f.get("delay_days", 0))
        if delay > 0 and f["aggregation"] not in ("count", "fraud_rate"):
            raise ValueError(f"{f['name']}: {f['aggregation']} needs the current transaction, so delay_days must be 0")
        k = (f["entity"], float(f["window_days"]), delay)
        if k not in specs:
            specs[k] = _Spec(f["entity"], keys[f["entity"]], k[1] * DAY_MS, delay * DAY_MS, f"_w{len(specs)}")

    order_seq = ", ".join(seq)
    helpers: list[str] = []
    peer_entities = sorted({s.entity for s in specs.values() if s.delay_ms == 0})
    for e in peer_entities:
        # Same entity, same instant: the ones that arrived after this row are not in its windows yet.
        later = f"OVER (PARTITION BY {keys[e]}, _t ORDER BY {order_seq} ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
        earlier = f"OVER (PARTITION BY {keys[e]}, _t ORDER BY {order_seq} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
        helpers += [
            f"count(*) {later} AS _p_{e}_n",
            f"coalesce(sum(_u) {later}, 0) AS _p_{e}_u",
            f"coalesce(sum(TX_FRAUD) {later}, 0) AS _p_{e}_f",
            f"count(*) {earlier} AS _p_{e}_before",
        ]
    for s in specs.values():
        # Integer times: t' > t - d - n  <=>  t - t' <= ceil(d + n) - 1;  t' <= t - d  <=>  t - t' >= ceil(d).
        lo = math.ceil(s.delay_ms + s.span_ms) - 1
        hi = "CURRENT ROW" if s.delay_ms == 0 else f"{math.ceil(s.delay_ms)} PRECEDING"
        over = f"OVER (PARTITION BY {s.key} ORDER BY _t RANGE BETWEEN {lo} PRECEDING AND {hi})"
        helpers += [
            f"count(*) {over} AS {s.name}_n",
            f"coalesce(sum(_u) {over}, 0) AS {s.name}_u",
            f"coalesce(sum(TX_FRAUD) {over}, 0) AS {s.name}_f",
        ]
        if s.delay_ms == 0 and lo >= 1:
            helpers.append(
                f"max(_t) OVER (PARTITION BY {s.key} ORDER BY _t RANGE BETWEEN {lo} PRECEDING AND 1 PRECEDING) AS {s.name}_prev"
            )

    def stats(s: _Spec) -> tuple[str, str, str]:
        """(count, amount units, frauds) the engine sees for this frame."""
        if s.delay_ms > 0:
            return f"{s.name}_n", f"{s.name}_u", f"{s.name}_f"
        e = s.entity
        return (
            f"({s.name}_n - _p_{e}_n)",
            f"({s.name}_u - _p_{e}_u)",
            f"({s.name}_f - _p_{e}_f - TX_FRAUD)",
        )

    scale = _lit(amount_scale)
    cols = [c for c in PREFIX]
    for f in fs.features:
        name, kind = f["name"], f["kind"]
        if name == "TX_AMOUNT":
            continue
        if kind == "request":
            if f.get("field") != "amount":
                raise ValueError(f"{name}: unsupported request field {f.get('field')!r}")
            expr = "TX_AMOUNT"
        elif kind == "calendar":
            if f["calendar"] == "weekend":
                weekday = f"(((CAST(floor(_t / {_lit(DAY_MS)}) AS BIGINT) + 4) % 7 + 7) % 7)"
                expr = f"CAST(CASE WHEN {weekday} IN (0, 6) THEN 1 ELSE 0 END AS INTEGER)"
            elif f["calendar"] == "night":
                hour = f"CAST(floor((((_t % {DAY_MS}) + {DAY_MS}) % {DAY_MS}) / {_lit(3_600_000)}) AS BIGINT)"
                end = int(f.get("night_end_hour", 6))
                expr = f"CAST(CASE WHEN {hour} <= {end} THEN 1 ELSE 0 END AS INTEGER)"
            else:
                raise ValueError(f"{name}: unsupported calendar {f['calendar']!r}")
        elif kind == "window":
            s = specs[(f["entity"], float(f["window_days"]), float(f.get("delay_days", 0)))]
            n, u, fr = stats(s)
            agg = f["aggregation"]
            if agg == "count":
                expr = f"CAST({n} AS BIGINT)"
            elif agg == "mean_amount":
                expr = f"CASE WHEN {n} = 0 THEN {_lit(0)} ELSE {_dbl(u)} / {scale} / {_dbl(n)} END"
            elif agg == "fraud_rate":
                expr = f"CASE WHEN {n} = 0 THEN {_lit(0)} ELSE {_dbl(fr)} / {_dbl(n)} END"
            elif agg == "amount_ratio_to_prior_mean":
                prior_n, prior_u = f"({n} - 1)", f"({u} - _u)"
                expr = (
                    f"CASE WHEN {prior_n} = 0 OR {prior_u} = 0 THEN {_lit(1)} "
                    f"ELSE TX_AMOUNT / ({_dbl(prior_u)} / {scale} / {_dbl(prior_n)}) END"
                )
            else:  # seconds_since_previous
                span_s = _lit(s.span_ms / 1000)
                prev = f"CASE WHEN _p_{s.entity}_before > 0 THEN _t ELSE {s.name}_prev END"
                if not any(h.endswith(f"AS {s.name}_prev") for h in helpers):
                    prev = f"CASE WHEN _p_{s.entity}_before > 0 THEN _t END"
                expr = f"CASE WHEN ({prev}) IS NULL THEN {span_s} ELSE {_dbl(f'_t - ({prev})')} / {_lit(1000)} END"
        else:
            raise ValueError(f"{name}: unsupported kind {kind!r}")
        cols.append(f"{expr} AS {name}")

    inner = ",\n    ".join(["*"] + helpers)
    outer = ",\n  ".join(cols + seq + ["_t"])
    return f"SELECT\n  {outer}\nFROM (\n  SELECT\n    {inner}\n  FROM {source}\n) AS _windows"


def output_columns(fs: FeatureSet) -> list[str]:
    """The training-set columns, as `fraudscore backfill` writes them."""
    return PREFIX + [n for n in fs.names if n != "TX_AMOUNT"]
