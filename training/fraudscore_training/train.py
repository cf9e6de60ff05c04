"""Train, export, evaluate and write a fraudscore model version.

    PYTHONPATH=training training/.venv/bin/python -m fraudscore_training.train \
        --features training/.work/handbook_v2.csv --out models --name fraudscore --version 1 \
        --feature-set transaction_v2 --train-until 2018-08-01 --seed 7

Ensemble of three families on the feature set's inputs (float32, manifest `inputs` order):
LightGBM gradient-boosted trees, a logistic regression on standardised inputs (sklearn
Pipeline) and a small MLP on standardised inputs, combined by a logistic stack fitted on
the validation period (the last `--val-days` before `--train-until`; the members never see
it). Review/decline thresholds are chosen on the validation period. Members are exported
to ONNX and checked against the native models on the validation rows (max |diff| <= 1e-5,
or the run fails). Then the handbook protocol (single split and prequential, see
evaluate.py) when the data covers it, REPORT.md, a precision-recall plot, and
manifest.json written last by atomic rename.

`--smoke`: small models, no prequential; with data that does not cover the given dates the
split is derived from the data range (works on `generate` output in seconds).
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from . import evaluate as ev
from . import featureset as fsmod
from . import manifest as mf
from . import onnx_export

DAY = pd.Timedelta(days=1)
ONNX_TOLERANCE = 1e-5  # member probabilities, ONNX (float32) vs native
# The ensemble is not an ONNX output: the service combines the float32 member outputs. The logit
# of a float32 probability near 0 or 1 is coarse (1 - p has a 6e-8 step), so the combined score
# from ONNX outputs can differ from the all-float64 one by more; a loose sanity bound only.
ENSEMBLE_TOLERANCE = 1e-3
CLIP = 1e-6
QUALITY_BAR = {"auc_roc": 0.88, "average_precision": 0.70, "card_precision_at_100": 0.30}


# --------------------------------------------------------------------------- data


def load_features(path: str | Path, inputs: list[str]) -> pd.DataFrame:
    """Reads a backfill / oracle training set (CSV, or the SQL backfill's Parquet folder); adds `t` (UTC,
    naive) and `day`."""
    if Path(path).is_dir() or str(path).endswith(".parquet"):
        df = _read_parquet(path)
    else:
        df = pd.read_csv(path, dtype={"TRANSACTION_ID": str, "CUSTOMER_ID": str, "TERMINAL_ID": str, "TX_DATETIME": str})
    missing = [c for c in ["TX_DATETIME", "CUSTOMER_ID", "TX_FRAUD", *inputs] if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    from .oracle import parse_datetime

    df["t"] = parse_datetime(df["TX_DATETIME"])
    df["day"] = df["t"].dt.floor("D")
    df["TX_FRAUD"] = df["TX_FRAUD"].astype(np.int64)
    bad = ~np.isfinite(df[inputs].to_numpy(np.float64))
    if bad.any():
        cols = [inputs[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise ValueError(f"{path}: non-finite values in {cols}")
    return df


def _read_parquet(path: str | Path) -> pd.DataFrame:
    """A Parquet file or folder (`TX_DAY=…/` partitions, dropped), in time order (ties by TRANSACTION_ID)."""
    import duckdb

    p = str(path).replace("'", "''")
    pattern = f"{p}/**/*.parquet" if Path(path).is_dir() else p
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = true)")
    cols = [c for c in rel.columns if c != "TX_DAY"]
    return rel.select(", ".join(cols)).order("TX_DATETIME, TRANSACTION_ID").df()


@dataclass
class Plan:
    train_from: pd.Timestamp
    members_until: pd.Timestamp  # exclusive; validation starts here
    train_until: pd.Timestamp  # exclusive; validation ends here
    test_start: pd.Timestamp | None
    test_days: int
    delay_days: int
    derived: bool
    notes: list[str] = field(default_factory=list)


def plan_split(df: pd.DataFrame, train_until: str, train_from: str | None, val_days: int, warmup_days: int) -> Plan:
    first, last = df["day"].min(), df["day"].max()
    n_days = int((last - first) / DAY) + 1
    u = pd.Timestamp(train_until)
    tf = pd.Timestamp(train_from) if train_from else first + warmup_days * DAY
    fits = tf + (val_days + 7) * DAY <= u <= last + DAY
    if fits:
        delay, test_days = ev.DELAY_DAYS, ev.TEST_DAYS
        test_start = u + delay * DAY
        plan = Plan(tf, u - val_days * DAY, u, test_start, test_days, delay, False)
        if test_start + test_days * DAY > last + DAY:
            plan.test_start = None
            plan.notes.append("data does not cover the test week after the delay: no single-split evaluation")
        return plan
    # Derived from the data range (small / synthetic data).
    delay = 7 if n_days >= 28 else max(1, n_days // 4)
    test_days = min(7, max(1, n_days // 8))
    val = min(val_days, max(2, n_days // 10))
    warm = min(warmup_days, max(1, n_days // 5))
    end = last + DAY
    test_start = end - test_days * DAY
    u = test_start - delay * DAY
    tf = first + warm * DAY
    if u - val * DAY <= tf + DAY:
        raise ValueError(f"data range {first.date()}..{last.date()} ({n_days} days) is too short to train and evaluate")
    plan = Plan(tf, u - val * DAY, u, test_start, test_days, delay, True)
    plan.notes.append(
        f"--train-until {train_until} does not fit the data ({first.date()}..{last.date()}): split derived from the data range"
    )
    return plan


# --------------------------------------------------------------------------- models


@dataclass
class Config:
    seed: int = 7
    threads: int = 2
    smoke: bool = False
    lgbm: dict = field(
        default_factory=lambda: dict(
            n_estimators=400,
            learning_rate=0.03,
            num_leaves=31,
            min_child_samples=100,
            reg_lambda=1.0,
            colsample_bytree=0.8,
        )
    )
    mlp_hidden: tuple = (64, 32)
    mlp_max_iter: int = 40
    mlp_negative_rate: float = 0.25

    def smoke_version(self) -> "Config":
        c = Config(seed=self.seed, threads=self.threads, smoke=True)
        c.lgbm = dict(n_estimators=60, learning_rate=0.1, num_leaves=15, min_child_samples=20, reg_lambda=1.0, colsample_bytree=0.8)
        c.mlp_hidden = (16,)
        c.mlp_max_iter = 60
        c.mlp_negative_rate = 1.0
        return c


MEMBERS = [("lgbm", "lightgbm_gbdt"), ("logreg", "logistic_regression"), ("mlp", "mlp")]


def _make_member(name: str, cfg: Config):
    from lightgbm import LGBMClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "lgbm":
        return LGBMClassifier(
            objective="binary",
            random_state=cfg.seed,
            n_jobs=cfg.threads,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
            **cfg.lgbm,
        )
    if name == "logreg":
        return Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(C=1.0, max_iter=2000))])
    if name == "mlp":
        return Pipeline(
            [
                ("scale", StandardScaler()),
                (
                    "mlp",
                    MLPClassifier(
                        hidden_layer_sizes=cfg.mlp_hidden,
                        alpha=1e-4,
                        batch_size=1024,
                        learning_rate_init=1e-3,
                        max_iter=cfg.mlp_max_iter,
                        early_stopping=True,
                        validation_fraction=0.1,
                        n_iter_no_change=5,
                        random_state=cfg.seed,
                    ),
                ),
            ]
        )
    raise ValueError(name)


@dataclass
class Ensemble:
    models: dict
    intercept: float
    coefficients: list[float]
    fit_seconds: dict
    val_scores: np.ndarray | None = None  # out-of-sample ensemble scores on the validation rows
    refitted: bool = False

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.column_stack([self.models[n].predict_proba(X)[:, 1] for n, _ in MEMBERS])

    def combine(self, P: np.ndarray) -> np.ndarray:
        return mf.combine_with(
            {"kind": "logistic_stack", "intercept": self.intercept, "coefficients": self.coefficients, "clip": CLIP},
            [1.0] * len(MEMBERS),
            P,
        )


def _fit_members(X: np.ndarray, y: np.ndarray, rows: np.ndarray, cfg: Config, log, tag: str) -> tuple[dict, dict]:
    models, secs = {}, {}
    for name, _ in MEMBERS:
        t0 = time.time()
        m = _make_member(name, cfg)
        idx = np.flatnonzero(rows)
        if name == "mlp" and cfg.mlp_negative_rate < 1.0:
            # All frauds and a seeded sample of the rest (the stack recalibrates).
            rng = np.random.default_rng(cfg.seed)
            keep = (y[idx] == 1) | (rng.random(idx.size) < cfg.mlp_negative_rate)
            idx = idx[keep]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(X[idx], y[idx])
        models[name] = m
        secs[f"{tag}{name}"] = time.time() - t0
        log(f"  {tag}{name}: fitted on {idx.size} rows in {secs[f'{tag}{name}']:.1f}s")
    return models, secs


def fit_ensemble(
    X: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, cfg: Config, log=print, refit: bool = False
) -> Ensemble:
    """Members on `train`; logistic stack on their out-of-sample scores on `val`; then (refit) the
    members again on train + val with the same settings, keeping the stack (recency matters here)."""
    from sklearn.linear_model import LogisticRegression

    models, secs = _fit_members(X, y, train, cfg, log, "")
    ens = Ensemble(models, 0.0, [1.0] * len(MEMBERS), secs)
    Pv = ens.predict_members(X[val])
    stack = LogisticRegression(C=1.0, max_iter=1000).fit(mf.logit_clip(Pv, CLIP), y[val])
    ens.intercept = float(stack.intercept_[0])
    ens.coefficients = [float(c) for c in stack.coef_[0]]
    ens.val_scores = ens.combine(Pv)
    log(f"  stack: intercept {ens.intercept:.4f}, coefficients {[round(c, 4) for c in ens.coefficients]}")
    if refit:
        ens.models, more = _fit_members(X, y, train | val, cfg, log, "refit ")
        ens.fit_seconds.update(more)
        ens.refitted = True
    return ens


# --------------------------------------------------------------------------- manifest parts


def histogram(values: np.ndarray, n_bins: int = 20, extra_quantiles: tuple = ()) -> dict:
    """Quantile-based edges; counts[0] = rows < edges[0], counts[i] = rows in [edges[i-1], edges[i]), last = rows >= edges[-1]."""
    v = np.asarray(values, dtype=np.float64)
    qs = np.concatenate([np.linspace(0, 1, n_bins + 1)[1:-1], np.asarray(extra_quantiles, dtype=float)])
    edges = np.unique(np.quantile(v, np.sort(qs)))
    if edges.size < 2:
        e0 = float(edges[0]) if edges.size else 0.0
        edges = np.array([e0, e0 + 1.0])
    counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=edges.size + 1)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def choose_thresholds(score: np.ndarray, y: np.ndarray, days: float, review_rate: float, decline_precision: float) -> dict:
    s = np.sort(np.asarray(score))[::-1]
    order = np.argsort(-np.asarray(score), kind="stable")
    n = s.size
    k_review = max(1, int(math.ceil(review_rate * n)))
    review = float(s[k_review - 1])
    prec = np.cumsum(y[order]) / np.arange(1, n + 1)
    ok = np.flatnonzero(prec[: k_review] >= decline_precision)
    if ok.size:
        k_decline = int(ok.max()) + 1
        how = f"the lowest threshold with precision >= {decline_precision:.2f} on validation"
    else:
        k_decline = max(1, int(math.ceil(0.001 * n)))
        how = "top 0.1% of validation transactions (no threshold reached the precision target)"
    decline = max(float(s[k_decline - 1]), review)
    share_review = float((score >= review).mean())
    share_decline = float((score >= decline).mean())
    prec_review = float(y[score >= review].mean())
    prec_decline = float(y[score >= decline].mean())
    budget = (
        f"review: score >= review flags the top {100 * review_rate:.1f}% of validation transactions "
        f"(~{share_review * n / days:.0f}/day, the handbook's 100-cards-a-day investigation budget; precision {prec_review:.2f}); "
        f"decline: score >= decline, {how} ({100 * share_decline:.2f}% of transactions, precision {prec_decline:.2f})"
    )
    return {"review": review, "decline": decline, "alert_budget": budget}


def pick_golden(df_val: pd.DataFrame, score: np.ndarray, seed: int, n: int = 20) -> np.ndarray:
    """Row positions (in df_val) of ~n golden rows: frauds, the highest scores, and ordinary rows."""
    rng = np.random.default_rng(seed)
    y = df_val["TX_FRAUD"].to_numpy()
    fr = np.flatnonzero(y == 1)
    chosen: list[int] = list(rng.choice(fr, min(6, fr.size), replace=False)) if fr.size else []
    for i in np.argsort(-score, kind="stable"):
        if len(chosen) >= 10:
            break
        if i not in chosen:
            chosen.append(int(i))
    rest = np.setdiff1d(np.arange(len(df_val)), chosen)
    chosen += list(rng.choice(rest, min(n - len(chosen), rest.size), replace=False))
    return np.array(sorted(int(i) for i in chosen))


def _metrics_of(test: pd.DataFrame, s: np.ndarray) -> dict:
    r = ev.metrics(test, s)
    return r


def _cp_ceiling(test: pd.DataFrame) -> float:
    """CP@100 of a perfect scorer (the labels as scores): the most any model can reach on this test set."""
    y = test["TX_FRAUD"].to_numpy()
    return ev.card_precision_top_k(test["day"].to_numpy(), test["CUSTOMER_ID"].to_numpy(), y, y.astype(float), 100)[0]


def _short(r: dict) -> dict:
    return {k: r[k] for k in ev.METRIC_NAMES}


def hyperparameters(cfg: Config, args) -> dict:
    """Each member's settings as trained (and the stack's), for the model card."""
    return {
        "lgbm": {"objective": "binary", **cfg.lgbm, "seed": cfg.seed},
        "logreg": {"scaler": "StandardScaler", "C": 1.0, "max_iter": 2000},
        "mlp": {
            "scaler": "StandardScaler",
            "hidden_layer_sizes": list(cfg.mlp_hidden),
            "alpha": 1e-4,
            "batch_size": 1024,
            "learning_rate_init": 1e-3,
            "max_iter": cfg.mlp_max_iter,
            "early_stopping": True,
            "negative_sample_rate": cfg.mlp_negative_rate,
            "seed": cfg.seed,
        },
        "stack": {"kind": "logistic_stack", "C": 1.0, "clip": CLIP},
        **({"debug_shuffle_labels": True} if getattr(args, "debug_shuffle_labels", False) else {}),
    }


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m fraudscore_training.train", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--features", required=True, help="training set: csv (fraudscore backfill or the oracle) or the SQL backfill's Parquet folder"
    )
    ap.add_argument("--out", default="models", help="models root; writes <out>/<name>/<version>/")
    ap.add_argument("--name", default="fraudscore")
    ap.add_argument("--version", default="1")
    ap.add_argument("--feature-set", default="transaction_v2")
    ap.add_argument("--features-dir", default=None, help="folder of feature-set JSONs (default <repo>/features)")
    ap.add_argument("--train-until", default="2018-08-01", help="exclusive end of the data used (members + validation)")
    ap.add_argument("--train-from", default=None, help="first day of member training (default: data start + warm-up)")
    ap.add_argument("--val-days", type=int, default=7, help="validation period (combiner, thresholds) before --train-until")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--review-rate", type=float, default=0.01)
    ap.add_argument("--decline-precision", type=float, default=0.9)
    ap.add_argument("--smoke", action="store_true", help="small models, no prequential (CI smoke on generated data)")
    ap.add_argument("--no-prequential", action="store_true")
    ap.add_argument(
        "--refit",
        action="store_true",
        help="after fitting the stack, refit the members on members + validation periods (no gain on the July validation weeks; off)",
    )
    ap.add_argument("--features-command", default=None, help="the command that produced --features, for the report")
    ap.add_argument("--folder", default=None, help="write the version here instead of <out>/<name>/<version> (a staging folder)")
    ap.add_argument("--max-trees", type=int, default=None, help="LightGBM trees (default 400, 60 with --smoke)")
    ap.add_argument(
        "--debug-shuffle-labels",
        action="store_true",
        help="DEBUG: permute the labels of the training and validation rows (a deliberately useless model, to exercise the gate)",
    )
    ap.add_argument(
        "--generated-data",
        action="store_true",
        help="the data is generated, not the handbook's: no handbook baselines, quality bar or handbook notes in the report",
    )
    ap.add_argument("--description", default=None)
    args = ap.parse_args(argv)

    t_start = time.time()
    timings: dict[str, float] = {}

    def log(msg: str) -> None:
        print(f"[{time.time() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    if not mf.NAME_RE.match(args.name) or not mf.VERSION_RE.match(str(args.version)):
        ap.error("--name must match [a-z0-9_-]+ and --version be a positive integer")
    cfg = Config(seed=args.seed, threads=args.threads)
    if args.smoke:
        cfg = cfg.smoke_version()
    if args.max_trees is not None:
        if args.max_trees < 1:
            ap.error("--max-trees must be >= 1")
        cfg.lgbm = {**cfg.lgbm, "n_estimators": args.max_trees}

    fs = fsmod.load(args.feature_set, Path(args.features_dir) if args.features_dir else None)
    inputs = fs.names
    warmup = max(int(f.get("window_days", 0)) + int(f.get("delay_days", 0)) for f in fs.features)
    df = load_features(args.features, inputs)
    X32 = df[inputs].to_numpy(np.float32)
    X = X32.astype(np.float64)  # every model sees exactly the float32 values the service feeds
    y = df["TX_FRAUD"].to_numpy(np.int64)
    timings["load"] = time.time() - t_start
    log(f"loaded {len(df)} rows x {len(inputs)} inputs ({fs.id}) from {args.features}")

    plan = plan_split(df, args.train_until, args.train_from, args.val_days, warmup)
    for n in plan.notes:
        log(n)
    t = df["t"]
    train = ((t >= plan.train_from) & (t < plan.members_until)).to_numpy()
    val = ((t >= plan.members_until) & (t < plan.train_until)).to_numpy()
    if y[train].sum() == 0 or y[val].sum() == 0:
        raise SystemExit("no fraud in the training or the validation period")
    log(
        f"members: {plan.train_from.date()}..{(plan.members_until - DAY).date()} ({train.sum()} rows, {y[train].sum()} frauds); "
        f"validation: {plan.members_until.date()}..{(plan.train_until - DAY).date()} ({val.sum()} rows, {y[val].sum()} frauds)"
    )

    if args.debug_shuffle_labels:
        rows = np.flatnonzero(train | val)
        y = y.copy()
        y[rows] = np.random.default_rng(args.seed).permutation(y[rows])
        log("DEBUG --debug-shuffle-labels: training and validation labels permuted")

    # ---- fit
    t0 = time.time()
    refit = args.refit
    ens = fit_ensemble(X, y, train, val, cfg, log, refit=refit)
    timings["fit"] = time.time() - t0

    # ---- export + check
    t0 = time.time()
    onnx_models, sessions = {}, {}
    for name, _ in MEMBERS:
        onnx_models[name] = onnx_export.to_onnx(ens.models[name], len(inputs), f"{args.name}_{name}")
        sessions[name] = onnx_export.session(onnx_models[name])
    Xv32 = X32[val]
    P_native = ens.predict_members(X[val])
    P_onnx = np.column_stack([onnx_export.predict(sessions[n], Xv32) for n, _ in MEMBERS])
    diffs = {n: float(np.max(np.abs(P_native[:, j] - P_onnx[:, j]))) for j, (n, _) in enumerate(MEMBERS)}
    s_native, s_onnx = ens.combine(P_native), ens.combine(P_onnx)
    diffs["ensemble"] = float(np.max(np.abs(s_native - s_onnx)))
    log(f"ONNX vs native on {val.sum()} validation rows: max |diff| {diffs}")
    if max(v for k, v in diffs.items() if k != "ensemble") > ONNX_TOLERANCE or diffs["ensemble"] > ENSEMBLE_TOLERANCE:
        raise SystemExit(
            f"ONNX export check FAILED: max |diff| {diffs}: members must agree within {ONNX_TOLERANCE}, "
            f"the combined score within {ENSEMBLE_TOLERANCE}"
        )
    timings["export"] = time.time() - t0

    # ---- validation-period products
    # Thresholds, score reference and validation metrics use the out-of-sample validation scores
    # (members fitted before the validation period, the stack as shipped).
    val_df = df[val]
    s_val = ens.val_scores
    val_days = (plan.train_until - plan.members_until) / DAY
    thresholds = choose_thresholds(s_val, y[val], val_days, args.review_rate, args.decline_precision)
    from sklearn.metrics import average_precision_score, roc_auc_score

    evaluation: dict = {
        "protocol": "Le Borgne et al., Reproducible Machine Learning for Credit Card Fraud Detection, ch. 3-5 (see training/README.md)",
        "split": {
            "members_from": str(plan.train_from.date()),
            "members_to": str((plan.members_until - DAY).date()),
            "validation_from": str(plan.members_until.date()),
            "validation_to": str((plan.train_until - DAY).date()),
            "train_until_exclusive": str(plan.train_until.date()),
            "derived_from_data_range": plan.derived,
            "members_refitted_on_members_and_validation": refit,
            "notes": plan.notes,
        },
        "validation": {
            "from": str(plan.members_until.date()),
            "to": str((plan.train_until - DAY).date()),
            "rows": int(val.sum()),
            "frauds": int(y[val].sum()),
            "auc_roc": float(roc_auc_score(y[val], s_val)),
            "average_precision": float(average_precision_score(y[val], s_val)),
        },
        "onnx_check": {
            "rows": int(val.sum()),
            "tolerance": ONNX_TOLERANCE,
            "ensemble_tolerance": ENSEMBLE_TOLERANCE,
            "max_abs_diff": diffs,
        },
    }

    # ---- single split (the shipped model itself, scored through ONNX)
    curves = []
    t0 = time.time()
    if plan.test_start is not None:
        tmask = ev.test_mask(df, plan.test_start, plan.test_days, plan.delay_days)
        test = df[tmask]
        if test["TX_FRAUD"].sum() == 0:
            log("single split: no fraud in the test set; skipped")
        else:
            Pt = np.column_stack([onnx_export.predict(sessions[n], X32[tmask]) for n, _ in MEMBERS])
            st = ens.combine(Pt)
            r = _metrics_of(test, st)
            single = {
                **_short(r),
                "test_from": str(plan.test_start.date()),
                "test_to": str((plan.test_start + (plan.test_days - 1) * DAY).date()),
                "train_until": str(plan.train_until.date()),
                "derived": plan.derived,
                "rows": r["rows"],
                "frauds": r["frauds"],
                "card_precision_at_100_per_day": r["card_precision_at_100_per_day"],
                "card_precision_at_100_ceiling": _cp_ceiling(test),
                "members": {n: _short(_metrics_of(test, Pt[:, j])) for j, (n, _) in enumerate(MEMBERS)},
                "scored_with": "onnxruntime (the shipped files)",
            }
            if not plan.derived and not args.generated_data:
                single["baseline"] = ev.HANDBOOK_BASELINES["single_split"]
            evaluation["single_split"] = single
            log(f"single split {single['test_from']}..{single['test_to']}: " + ", ".join(f"{k} {single[k]:.4f}" for k in ev.METRIC_NAMES))
            curves = [("ensemble", test["TX_FRAUD"].to_numpy(), st)] + [
                (n, test["TX_FRAUD"].to_numpy(), Pt[:, j]) for j, (n, _) in enumerate(MEMBERS)
            ]
    timings["single_split"] = time.time() - t0

    # ---- prequential
    t0 = time.time()
    last_day = df["day"].max()
    do_preq = not (args.smoke or args.no_prequential or plan.derived)
    if do_preq and ev.PREQUENTIAL_TEST_STARTS[-1] + (ev.TEST_DAYS - 1) * DAY > last_day:
        evaluation["prequential"] = {"skipped": "data does not cover 2018-08-08..2018-09-04"}
        do_preq = False
    if do_preq:
        folds = []
        for ws in ev.PREQUENTIAL_TEST_STARTS:
            u = ws - ev.DELAY_DAYS * DAY
            vstart = u - args.val_days * DAY
            tmask = ev.test_mask(df, ws)
            test = df[tmask]
            if u == plan.train_until:
                e_f, how = ens, "the shipped model"
            else:
                log(f"prequential fold: test {ws.date()}, training before {u.date()}")
                tr_f = ((t >= plan.train_from) & (t < vstart)).to_numpy()
                va_f = ((t >= vstart) & (t < u)).to_numpy()
                e_f, how = fit_ensemble(X, y, tr_f, va_f, cfg, log, refit=refit), "trained natively for this fold"
            Pt = e_f.predict_members(X[tmask])
            r = _metrics_of(test, e_f.combine(Pt))
            folds.append(
                {
                    **_short(r),
                    "test_from": str(ws.date()),
                    "test_to": str((ws + (ev.TEST_DAYS - 1) * DAY).date()),
                    "train_until": str(u.date()),
                    "rows": r["rows"],
                    "frauds": r["frauds"],
                    "model": how,
                    "card_precision_at_100_ceiling": _cp_ceiling(test),
                    "members": {n: _short(_metrics_of(test, Pt[:, j])) for j, (n, _) in enumerate(MEMBERS)},
                }
            )
            log(f"  fold {ws.date()}: " + ", ".join(f"{k} {folds[-1][k]:.4f}" for k in ev.METRIC_NAMES))
        summary = ev.summarise_folds(folds)
        evaluation["prequential"] = {
            **{k: summary[k]["mean"] for k in ev.METRIC_NAMES},
            "std": {k: summary[k]["std"] for k in ev.METRIC_NAMES},
            "folds": folds,
            "baseline": ev.HANDBOOK_BASELINES["prequential"],
        }
        log("prequential: " + ", ".join(f"{k} {summary[k]['mean']:.4f} ± {summary[k]['std']:.4f}" for k in ev.METRIC_NAMES))
    timings["prequential"] = time.time() - t0

    if args.generated_data:
        evaluation["data"] = "generated"
    if "single_split" in evaluation and not plan.derived and not args.generated_data:
        ss = evaluation["single_split"]
        bar = {k: {"required": v, "value": ss[k], "pass": bool(ss[k] >= v)} for k, v in QUALITY_BAR.items()}
        pq = evaluation.get("prequential", {})
        if "folds" in pq:
            for k, v in ev.HANDBOOK_BASELINES["prequential"].items():
                bar[f"prequential_{k}"] = {"required_above": v, "value": pq[k], "pass": bool(pq[k] > v)}
        evaluation["quality_bar"] = bar

    # ---- reference, importance, golden
    ref_hist = {name: histogram(X32[val][:, j]) for j, name in enumerate(inputs)}
    score_hist = histogram(s_val, extra_quantiles=(0.99, 0.995, 0.999))
    Xtr = X[train | val] if refit else X[train]
    moments = {name: {"mean": float(Xtr[:, j].mean()), "std": float(Xtr[:, j].std())} for j, name in enumerate(inputs)}
    # (moments: on the rows the shipped members were fitted on)
    gain = ens.models["lgbm"].booster_.feature_importance(importance_type="gain").astype(np.float64)
    gain = gain / gain.sum() if gain.sum() > 0 else np.full(len(inputs), 1.0 / len(inputs))
    importance = {name: float(g) for name, g in zip(inputs, gain)}
    gold_idx = pick_golden(val_df, s_onnx, args.seed)
    golden = [
        {
            "inputs": [float(v) for v in val_df[inputs].to_numpy(np.float64)[i]],
            "members": [float(v) for v in P_onnx[i]],
            "score": float(s_onnx[i]),
            "label": int(val_df["TX_FRAUD"].to_numpy()[i]),
            "transaction_id": str(val_df["TRANSACTION_ID"].to_numpy()[i]),
        }
        for i in gold_idx
    ]

    # ---- write the version folder; manifest.json last
    t0 = time.time()
    folder = Path(args.folder) if args.folder else Path(args.out) / args.name / str(args.version)
    folder.mkdir(parents=True, exist_ok=True)
    old = folder / "manifest.json"
    if old.exists():
        old.unlink()  # the folder is incomplete until the new manifest lands
    members = []
    for j, (name, family) in enumerate(MEMBERS):
        fname = f"{name}.onnx"
        tmp = folder / f".{fname}.tmp-{os.getpid()}"
        tmp.write_bytes(onnx_models[name].SerializeToString())
        os.replace(tmp, folder / fname)
        members.append(
            {
                "name": name,
                "family": family,
                "file": fname,
                "sha256": mf.sha256_file(folder / fname),
                "input_name": onnx_export.INPUT_NAME,
                "output_name": onnx_export.OUTPUT_NAME,
                "output_index": onnx_export.OUTPUT_INDEX,
                "weight": 1.0,
            }
        )
    timings["total"] = time.time() - t_start
    evaluation["timings_seconds"] = {k: round(v, 1) for k, v in timings.items()}

    shown = list(argv)
    if "--features-command" in shown:  # provenance only; does not change the model
        i = shown.index("--features-command")
        del shown[i : i + 2]
    shown = [a for a in shown if not a.startswith("--features-command=")]
    command = "PYTHONPATH=training training/.venv/bin/python -m fraudscore_training.train " + shlex.join(shown)
    created = os.environ.get("SOURCE_DATE_EPOCH")
    created_at = (
        datetime.fromtimestamp(int(created), timezone.utc) if created else datetime.now(timezone.utc)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = {
        "schema_version": 1,
        "name": args.name,
        "version": str(args.version),
        "created_at": created_at,
        "description": args.description
        or (
            f"{args.name} v{args.version}: LightGBM + logistic regression + MLP on {fs.id}, logistic stack fitted on the "
            f"validation week; trained on transactions before {plan.train_until.date()}."
        ),
        "feature_set": {"name": fs.name, "version": fs.version},
        "inputs": inputs,
        "members": members,
        "combiner": {"kind": "logistic_stack", "intercept": ens.intercept, "coefficients": ens.coefficients, "clip": CLIP},
        "thresholds": thresholds,
        "importance": importance,
        "reference": {"rows": int(val.sum()), "features": ref_hist, "score": score_hist, "moments": moments},
        "evaluation": evaluation,
        "training": {
            "data_from": str(plan.train_from.date()),
            "data_to": str((plan.train_until - DAY).date()),
            "rows": int(train.sum() + val.sum()),
            "frauds": int(y[train].sum() + y[val].sum()),
            "seed": args.seed,
            "command": command,
            "hyperparameters": hyperparameters(cfg, args),
        },
        "golden": golden,
    }
    plot_name = None
    if curves:
        plot_name = "precision_recall.png"
        ss = evaluation["single_split"]
        ev.pr_plot(folder / plot_name, curves, f"{args.name} v{args.version}: test {ss['test_from']}..{ss['test_to']}")
    report = ev.report_markdown(manifest, command, plot_name, args.features_command)
    (folder / "REPORT.md").write_text(report)
    mf.write_atomic(folder, manifest)
    errors = mf.verify(folder)
    if errors:
        raise SystemExit("written model folder does not verify:\n  " + "\n  ".join(errors))
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    log(f"wrote {folder} ({size / 1e6:.2f} MB) in {time.time() - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
