"""Live model performance, offline (issue 18): reproduces what the service reports.

The service joins each label with the decisions every model version (active, canary, shadow) made on its
transaction, counts the outcome per version, and reports AUC, average precision, precision and recall at the
version's review and decline thresholds, and champion against challenger with DeLong's test. This module
recomputes the same numbers from an export of decisions and labels, so an ML engineer can check the service:

- decisions: one record per (transaction, version): ``transaction_id``, ``model_version``, ``role``
  (active, canary, shadow), ``score``, ``decision`` (approve, review, decline), ``decided_at`` (ISO-8601) --
  the ``decision`` and ``shadow score`` audit log lines carry them (``time`` is the decision time);
- labels: the ``labels`` topic's events in the order they were applied (the last label of a transaction wins,
  a redelivery changes nothing), with ``labeled_at`` when given.

A scored transaction with no label ``maturity_days`` after its decision counts as legitimate (matured), as
the service does.

    python -m fraudscore_training.performance served --decisions d.jsonl --labels l.jsonl [--now ISO]
    python -m fraudscore_training.performance served --audit-log --decisions service.log --labels l.jsonl
    python -m fraudscore_training.performance metrics --input scores.json   # {"y": [...], "scores": {"v": [...]}}
    python -m fraudscore_training.performance delong --input pairs.json     # {"y": [...], "a": [...], "b": [...]}
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def rank_metrics(y: Iterable[int], scores: Iterable[float]) -> dict[str, float | None]:
    """scikit-learn's AUC and average precision; None where undefined (one class only)."""
    y = np.asarray(list(y), dtype=int)
    s = np.asarray(list(scores), dtype=float)
    if y.sum() == 0:
        return {"auc": None, "average_precision": None}
    ap = float(average_precision_score(y, s))
    auc = float(roc_auc_score(y, s)) if y.sum() < len(y) else None
    return {"auc": auc, "average_precision": ap}


def delong_reference(y: Iterable[int], a: Iterable[float], b: Iterable[float]) -> dict[str, float]:
    """DeLong, DeLong & Clarke-Pearson (1988), straight from the paper: the kernel psi(X, Y) over every
    fraud/non-fraud pair (O(m n), a reference for the service's fast midrank version). Returns both AUCs,
    the difference b - a, its variance and the two-sided p-value (1 when the variance is 0 and so is the
    difference)."""
    y = np.asarray(list(y), dtype=bool)
    scores = [np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)]
    m, n = int(y.sum()), int((~y).sum())
    v10, v01, aucs = [], [], []
    for s in scores:
        x, z = s[y][:, None], s[~y][None, :]
        psi = (x > z) + 0.5 * (x == z)  # m x n
        aucs.append(float(psi.mean()))
        v10.append(psi.mean(axis=1))  # per fraud
        v01.append(psi.mean(axis=0))  # per non-fraud
    s10 = np.cov(np.vstack(v10))
    s01 = np.cov(np.vstack(v01))
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = aucs[1] - aucs[0]
    if var <= 0:
        p = 1.0 if diff == 0 else 0.0
    else:
        p = math.erfc(abs(diff) / math.sqrt(var) / math.sqrt(2))
    return {"auc_a": aucs[0], "auc_b": aucs[1], "difference": diff, "variance": var, "p_value": p}


def delong_unpaired_reference(
    y_a: Iterable[int], a: Iterable[float], y_b: Iterable[int], b: Iterable[float]
) -> dict[str, float]:
    """Two independent samples (a canary's customers against the active version's): the two AUCs' DeLong
    variances add up."""

    def one(y, s):
        y = np.asarray(list(y), dtype=bool)
        s = np.asarray(list(s), dtype=float)
        x, z = s[y][:, None], s[~y][None, :]
        psi = (x > z) + 0.5 * (x == z)
        m, n = psi.shape
        return float(psi.mean()), float(np.var(psi.mean(axis=1), ddof=1) / m + np.var(psi.mean(axis=0), ddof=1) / n)

    auc_a, var_a = one(y_a, a)
    auc_b, var_b = one(y_b, b)
    var = var_a + var_b
    diff = auc_b - auc_a
    p = math.erfc(abs(diff) / math.sqrt(var) / math.sqrt(2)) if var > 0 else (1.0 if diff == 0 else 0.0)
    return {"auc_a": auc_a, "auc_b": auc_b, "difference": diff, "variance": var, "p_value": p}


def served_metrics(
    decisions: Iterable[Mapping],
    labels: Iterable[Mapping],
    now: datetime,
    maturity_days: float = 60,
) -> dict[str, dict]:
    """Per model version, what GET /admin/models/:name/performance reports in ``versions``."""
    last: dict[str, bool] = {}
    for lab in labels:
        last[lab["transaction_id"]] = bool(lab["is_fraud"])
    due = now - timedelta(days=maturity_days)
    per: dict[str, dict[str, list]] = {}
    for d in decisions:
        v = per.setdefault(str(d["model_version"]), {"y": [], "s": [], "d": [], "explicit": []})
        tx = d["transaction_id"]
        if tx in last:
            fraud, explicit = last[tx], True
        elif _time(d["decided_at"]) <= due:
            fraud, explicit = False, False
        else:
            continue
        v["y"].append(int(fraud))
        v["s"].append(float(d["score"]))
        v["d"].append(d["decision"])
        v["explicit"].append(explicit)
    out = {}
    for version, v in sorted(per.items(), key=lambda kv: int(kv[0])):
        y = np.asarray(v["y"], dtype=int)
        dec = np.asarray(v["d"])
        frauds = int(y.sum())
        flagged = np.isin(dec, ["review", "decline"])
        declined = dec == "decline"

        def ratio(a: int, b: int) -> float | None:
            return a / b if b else None

        out[version] = {
            "labelled": len(y),
            "frauds": frauds,
            "explicit": int(sum(v["explicit"])),
            "matured": int(len(y) - sum(v["explicit"])),
            **rank_metrics(y, v["s"]),
            "precision_at_review": ratio(int(y[flagged].sum()), int(flagged.sum())),
            "recall_at_review": ratio(int(y[flagged].sum()), frauds),
            "precision_at_decline": ratio(int(y[declined].sum()), int(declined.sum())),
            "recall_at_decline": ratio(int(y[declined].sum()), frauds),
        }
    return out


def decisions_from_audit_log(lines: Iterable[Mapping]) -> list[dict]:
    """The decision records of the service's audit log (pino JSON lines): ``audit: decision`` lines for the
    version that answered (fallback answers, ``model_version: none``, are not a version's), ``audit: shadow``
    lines for the shadow; ``time`` (epoch ms) is the decision time."""
    out = []
    for line in lines:
        kind = line.get("audit")
        if kind not in ("decision", "shadow") or line.get("model_version") in (None, "none"):
            continue
        at = datetime.fromtimestamp(line["time"] / 1000, tz=timezone.utc).isoformat()
        out.append(
            {
                "transaction_id": line["transaction_id"],
                "model_version": str(line["model_version"]),
                "role": "shadow" if kind == "shadow" else "active",
                "score": line["score"],
                "decision": line["decision"],
                "decided_at": at,
            }
        )
    return out


def _jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fraudscore_training.performance", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    served = sub.add_parser("served", help="per-version metrics from exported decisions and labels")
    served.add_argument("--decisions", required=True, help="decision records, or the audit log with --audit-log")
    served.add_argument("--audit-log", action="store_true", help="--decisions is the service's JSON log")
    served.add_argument("--labels", required=True)
    served.add_argument("--now", default=None, help="ISO-8601; default: the current time")
    served.add_argument("--maturity-days", type=float, default=60)
    metrics = sub.add_parser("metrics", help="scikit-learn AUC and AP of each named score vector")
    metrics.add_argument("--input", required=True)
    delong = sub.add_parser("delong", help="DeLong's paired test, the O(m n) reference")
    delong.add_argument("--input", required=True)
    a = p.parse_args(argv)
    if a.cmd == "served":
        now = _time(a.now) if a.now else datetime.now(timezone.utc)
        decisions = _jsonl(a.decisions)
        if a.audit_log:
            decisions = decisions_from_audit_log(decisions)
        result = served_metrics(decisions, _jsonl(a.labels), now, a.maturity_days)
    else:
        with open(a.input, encoding="utf-8") as f:
            data = json.load(f)
        if a.cmd == "metrics":
            result = {k: rank_metrics(data["y"], s) for k, s in data["scores"].items()}
        else:
            result = delong_reference(data["y"], data["a"], data["b"])
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
