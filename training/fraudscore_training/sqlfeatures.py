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
  d = 0 sees the earlier-arrived transactions' labels but not the current one's.
- Labels by arrival time (`labeled_at=True`, column `_a`: LABELED_AT in epoch ms, NULL when none): a fraud
  whose `_a` is later than its `_t` is applied by the backfill when the replay reaches `_a`, before the
  transactions of that instant (src/usecases/backfill.ts); one with `_a` <= `_t` or none goes with its
  transaction as above. Such a late fraud k counts in the fraud count of a window (n, d) of transaction j
  iff t_k is in (t_j - n - d, t_j - d] and a_k <= t_j, i.e. iff t_j is in [max(a_k, t_k + d), t_k + n + d):
  an interval of j's time. A window frame cannot express that (the condition is on two columns), and a range
  join of transactions with labels grows with frauds x transactions per entity (a compromised terminal's
  every transaction is a fraud), so each late fraud becomes two events, +1 at the interval's start and -1 at
  its end (none when the interval is empty: a label that arrives after the window has passed), unioned with
  the transactions; a running sum of the events up to and including t_j (RANGE ... CURRENT ROW: every event
  of that instant, so a label arriving at t_j counts, as the backfill applies it first) is then the number
  of late frauds the window sees. The events carry no transaction (`_tt` NULL) and zero amount and label, so
  the other aggregates skip them, and they are dropped from the output. The interval never includes t_k
  itself (a_k > t_k), so same-instant arrival order does not matter for them.
- Amounts are summed as integer cents when every amount is a whole number of cents (exact, so the
  subtraction of peers is exact), else as DOUBLE (`amount_scale` = 1).
- Defaults as the engine: mean and fraud rate 0 over an empty window; amount ratio 1 when there is no
  earlier transaction in the window or their mean is 0; seconds since previous = the window's length in
  seconds when there is none in the window.

Input relation `source` must have: TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID (strings),
TX_AMOUNT (DOUBLE), TX_FRAUD (INTEGER 0/1), `_t` (BIGINT ms), `_u` (amount in units of 1/amount_scale:
BIGINT cents or DOUBLE), the `seq` columns, and with `labeled_at=True` also `_a` (BIGINT ms or NULL).
Output: TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD, every feature of the set
in definition order (TX_AMOUNT not repeated; counts BIGINT, flags INTEGER, the rest DOUBLE), then the `seq`
columns and `_t` for ordering/partitioning.
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
            raise ValueError(f"entity {name!r}: unsupported key {key.lower()!r} (customer_id or terminal_id)")
        keys[name] = key
    return keys


def compile_query(fs: FeatureSet, source: str, seq: list[str], amount_scale: float, labeled_at: bool = False) -> str:
    """The SELECT over relation `source` that computes every feature of `fs` (see the module doc); with
    `labeled_at`, frauds whose `_a` is later than their `_t` count from `_a` on (labels by arrival time)."""
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

    # Frames whose fraud count is read, and so need the late labels' events.
    late_specs = [
        s
        for k, s in specs.items()
        if labeled_at
        and any(
            f["kind"] == "window"
            and f["aggregation"] == "fraud_rate"
            and (f["entity"], float(f["window_days"]), float(f.get("delay_days", 0))) == k
            for f in fs.features
        )
    ]
    # Over the union with label events, transactions are the rows with a `_tt` (their `_t`), and `_fi` is the
    # label that goes with the transaction (0 for a late one: its events count it instead).
    count_tx, fraud_now, tx_time = ("count(_tt)", "_fi", "_tt") if labeled_at else ("count(*)", "TX_FRAUD", "_t")

    order_seq = ", ".join(seq)
    helpers: list[str] = []
    peer_entities = sorted({s.entity for s in specs.values() if s.delay_ms == 0})
    for e in peer_entities:
        # Same entity, same instant: the ones that arrived after this row are not in its windows yet.
        later = f"OVER (PARTITION BY {keys[e]}, _t ORDER BY {order_seq} ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
        earlier = f"OVER (PARTITION BY {keys[e]}, _t ORDER BY {order_seq} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
        helpers += [
            f"{count_tx} {later} AS _p_{e}_n",
            f"coalesce(sum(_u) {later}, 0) AS _p_{e}_u",
            f"coalesce(sum({fraud_now}) {later}, 0) AS _p_{e}_f",
            f"{count_tx} {earlier} AS _p_{e}_before",
        ]
    for s in specs.values():
        # Integer times: t' > t - d - n  <=>  t - t' <= ceil(d + n) - 1;  t' <= t - d  <=>  t - t' >= ceil(d).
        lo = math.ceil(s.delay_ms + s.span_ms) - 1
        hi = "CURRENT ROW" if s.delay_ms == 0 else f"{math.ceil(s.delay_ms)} PRECEDING"
        over = f"OVER (PARTITION BY {s.key} ORDER BY _t RANGE BETWEEN {lo} PRECEDING AND {hi})"
        helpers += [
            f"{count_tx} {over} AS {s.name}_n",
            f"coalesce(sum(_u) {over}, 0) AS {s.name}_u",
            f"coalesce(sum({fraud_now}) {over}, 0) AS {s.name}_f",
        ]
        if s in late_specs:
            running = f"OVER (PARTITION BY {s.key} ORDER BY _t RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
            helpers.append(f"coalesce(sum({s.name}_w) {running}, 0) AS {s.name}_l")
        if s.delay_ms == 0 and lo >= 1:
            helpers.append(
                f"max({tx_time}) OVER (PARTITION BY {s.key} ORDER BY _t RANGE BETWEEN {lo} PRECEDING AND 1 PRECEDING) AS {s.name}_prev"
            )

    def stats(s: _Spec) -> tuple[str, str, str]:
        """(count, amount units, frauds) the engine sees for this frame."""
        late = f" + {s.name}_l" if s in late_specs else ""
        if s.delay_ms > 0:
            return f"{s.name}_n", f"{s.name}_u", f"({s.name}_f{late})"
        e = s.entity
        return (
            f"({s.name}_n - _p_{e}_n)",
            f"({s.name}_u - _p_{e}_u)",
            f"({s.name}_f - _p_{e}_f - {fraud_now}{late})",
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
    if not labeled_at:
        return f"SELECT\n  {outer}\nFROM (\n  SELECT\n    {inner}\n  FROM {source}\n) AS _windows"
    return (
        f"SELECT\n  {outer}\nFROM (\n  SELECT\n    {inner}\n  FROM {_with_label_events(source, seq, late_specs)}\n"
        ") AS _windows\nWHERE _tt IS NOT NULL"
    )


def _with_label_events(source: str, seq: list[str], late_specs: list[_Spec]) -> str:
    """`source`'s transactions (`_tt` = `_t`, `_fi` = the label that goes with them) and, per frame of
    `late_specs`, the events of the late labels: weight `<frame>_w` +1 at max(a, t + d), -1 at t + n + d
    (integer ms, as the frames: t' <= t - d <=> t - t' >= ceil(d); t' > t - n - d <=> t < t' + ceil(n + d))."""
    keep = PREFIX + ["_u"] + seq
    no_weights = [f"CAST(NULL AS BIGINT) AS {s.name}_w" for s in late_specs]
    parts = [
        "SELECT "
        + ", ".join(
            keep + ["_t", "_t AS _tt", "CASE WHEN _a > _t THEN 0 ELSE TX_FRAUD END AS _fi"] + no_weights
        )
        + f" FROM {source}"
    ]
    late = f"(SELECT {', '.join(PREFIX + seq)}, _t AS _tk, _a FROM {source} WHERE TX_FRAUD = 1 AND _a > _t)"
    for s in late_specs:
        start = f"greatest(_a, _tk + {math.ceil(s.delay_ms)})"
        end = f"_tk + {math.ceil(s.delay_ms + s.span_ms)}"
        for at, weight in ((start, 1), (end, -1)):
            cols = [c if c != "_u" else "0 AS _u" for c in keep]
            cols += [f"{at} AS _t", "CAST(NULL AS BIGINT) AS _tt", "0 AS _fi"]
            cols += [f"CAST({weight} AS BIGINT) AS {x.name}_w" if x is s else w for x, w in zip(late_specs, no_weights)]
            parts.append(f"SELECT {', '.join(cols)} FROM {late} AS _late WHERE {start} < {end}")
    return "(\n    " + "\n    UNION ALL ".join(parts) + "\n  ) AS _events"


def output_columns(fs: FeatureSet) -> list[str]:
    """The training-set columns, as `fraudscore backfill` writes them."""
    return PREFIX + [n for n in fs.names if n != "TX_AMOUNT"]
