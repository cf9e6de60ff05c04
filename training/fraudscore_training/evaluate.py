"""The handbook's assessment protocol (Le Borgne et al., chapters 3-5).

Metrics: AUC ROC, Average Precision and Card Precision@100 (per day, each card's max score
and max label; precision among the day's top 100 cards; cards found compromised -- a fraud
among a day's top 100 -- are removed from the later days, as the handbook's
`card_precision_top_k`; mean over days).

Test set (the handbook's `get_train_test_set`): for a test week starting at S, its days
S..S+6 minus, on each test day D, the cards with a known fraud: a fraud in the handbook's
training week [S-14d, S-7d) or in the delay days up to D-8.

- Single split: test week 2018-08-08..2018-08-14, model trained on data before 2018-08-01.
- Prequential: four test weeks starting 2018-08-08, 08-15, 08-22, 08-29; each model trained
  only on data before its test week start minus 7 days; mean and (sample) std over the folds.

CLI (scores a shipped model's ONNX members on the single-split test set):
    python -m fraudscore_training.evaluate --features <backfill csv> --model models/fraudscore/1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

DAY = pd.Timedelta(days=1)
SINGLE_SPLIT_TEST_START = pd.Timestamp("2018-08-08")
PREQUENTIAL_TEST_STARTS = [pd.Timestamp(d) for d in ("2018-08-08", "2018-08-15", "2018-08-22", "2018-08-29")]
TEST_DAYS = 7
DELAY_DAYS = 7
HANDBOOK_TRAIN_DAYS = 7

HANDBOOK_BASELINES = {
    "single_split": {"auc_roc": 0.871, "average_precision": 0.658, "card_precision_at_100": 0.291},
    "prequential": {"auc_roc": 0.879, "average_precision": 0.687, "card_precision_at_100": 0.305},
}
METRIC_NAMES = {"auc_roc": "AUC ROC", "average_precision": "Average Precision", "card_precision_at_100": "Card Precision@100"}


def card_precision_top_k(
    day: np.ndarray, card: np.ndarray, label: np.ndarray, score: np.ndarray, k: int = 100, remove_detected: bool = True
) -> tuple[float, list[float]]:
    """Mean over days of the share of true compromised cards among the day's top-k cards."""
    df = pd.DataFrame({"day": day, "card": card, "label": label, "score": score})
    detected: set = set()
    per_day: list[float] = []
    for d in sorted(df["day"].unique()):
        g = df[df["day"] == d]
        if detected:
            g = g[~g["card"].isin(detected)]
        cards = g.groupby("card").agg(score=("score", "max"), label=("label", "max"))
        # Ties broken by card id, so the result does not depend on row order.
        cards = cards.reset_index().sort_values(["score", "card"], ascending=[False, True], kind="stable").head(k)
        found = cards.loc[cards["label"] == 1, "card"].tolist()
        per_day.append(len(found) / k)
        if remove_detected:
            detected.update(found)
    return (float(np.mean(per_day)) if per_day else float("nan")), per_day


def test_mask(df: pd.DataFrame, test_start: pd.Timestamp, test_days: int = TEST_DAYS, delay_days: int = DELAY_DAYS,
              known_from_days: int = HANDBOOK_TRAIN_DAYS) -> np.ndarray:
    """Rows of the handbook test set: test days minus the cards with a fraud known by each day.

    `df` needs `day` (datetime64, midnight), CUSTOMER_ID and TX_FRAUD.
    """
    day = df["day"]
    known_start = test_start - (delay_days + known_from_days) * DAY
    fraud_days = df.loc[df["TX_FRAUD"] == 1, ["day", "CUSTOMER_ID"]]
    mask = np.zeros(len(df), dtype=bool)
    for k in range(test_days):
        d = test_start + k * DAY
        # Frauds known on day d: from the handbook's training week up to d - delay - 1 day.
        known_until = d - (delay_days + 1) * DAY
        known = set(fraud_days.loc[(fraud_days["day"] >= known_start) & (fraud_days["day"] <= known_until), "CUSTOMER_ID"])
        mask |= ((day == d) & ~df["CUSTOMER_ID"].isin(known)).to_numpy()
    return mask


def metrics(test: pd.DataFrame, score: np.ndarray) -> dict:
    y = test["TX_FRAUD"].to_numpy()
    cp, per_day = card_precision_top_k(test["day"].to_numpy(), test["CUSTOMER_ID"].to_numpy(), y, score, 100)
    return {
        "auc_roc": float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan"),
        "average_precision": float(average_precision_score(y, score)) if y.sum() > 0 else float("nan"),
        "card_precision_at_100": cp,
        "card_precision_at_100_per_day": [round(x, 4) for x in per_day],
        "rows": int(len(y)),
        "frauds": int(y.sum()),
    }


def summarise_folds(folds: list[dict]) -> dict:
    out = {}
    for m in METRIC_NAMES:
        vals = np.array([f[m] for f in folds], dtype=float)
        out[m] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
    return out


def pr_plot(path: Path, curves: list[tuple[str, np.ndarray, np.ndarray]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=80)
    for label, y, s in curves:
        p, r, _ = precision_recall_curve(y, s)
        ax.plot(r, p, lw=1.2, label=f"{label} (AP {average_precision_score(y, s):.3f})")
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"


def report_markdown(manifest: dict, command: str, plot_name: str | None, features_command: str | None = None) -> str:
    ev = manifest["evaluation"]
    tr = manifest["training"]
    sp = ev.get("split", {})
    lines = [
        f"# {manifest['name']} v{manifest['version']}",
        "",
        f"Feature set `{manifest['feature_set']['name']}_v{manifest['feature_set']['version']}` "
        f"({len(manifest['inputs'])} inputs). Members: "
        + ", ".join(f"`{m['name']}` ({m['family']}, `{m['file']}`)" for m in manifest["members"])
        + f"; combiner `{manifest['combiner']['kind']}` fitted on the validation period.",
        "",
        f"Members trained on {sp.get('members_from')} .. {sp.get('members_to')}; combiner and thresholds fitted on their "
        f"out-of-sample scores on the validation period {sp.get('validation_from')} .. {sp.get('validation_to')}"
        + ("; then the members refitted on both periods with the same settings" if sp.get("members_refitted_on_members_and_validation") else "")
        + f" ({tr['rows']} rows, {tr['frauds']} frauds in all; seed {tr['seed']}).",
        "",
        "Reproduce (from the repository root):",
        "",
        "```",
    ]
    if features_command:
        lines.append(features_command)
    lines += [command, "```", ""]
    lines += [
        "## Protocol",
        "",
        "Handbook protocol (Le Borgne et al., ch. 3-5): a 7-day label delay between the training data and the test week; "
        "on each test day the cards with a fraud known by then (from the handbook's training week, the 7 days before the "
        "delay, up to the day minus 8) are dropped; Card Precision@100: per day, each card's max score and max label, the "
        "share of compromised cards among the top 100, cards found compromised on earlier test days removed; mean over days.",
        "",
    ]
    bar = ev.get("quality_bar", {})
    ss = ev.get("single_split")
    if ss:
        base = ss.get("baseline")
        mem = ss.get("members", {})
        lines += [
            f"## Single split: test {ss['test_from']} .. {ss['test_to']}, trained on data before {ss['train_until']}"
            + (" (split derived from the data range)" if ss.get("derived") else ""),
            "",
            "| metric | ensemble | handbook baseline | quality bar | " + " | ".join(mem.keys()) + " |",
            "|---|---|---|---|" + "---|" * len(mem),
        ]
        for m, label in METRIC_NAMES.items():
            b = bar.get(m)
            barcell = f"≥ {b['required']:.2f} {'✓' if b['pass'] else '✗'}" if b else "n/a"
            cells = " | ".join(_fmt(v[m]) for v in mem.values())
            lines.append(f"| {label} | **{_fmt(ss[m])}** | {_fmt(base[m]) if base else 'n/a'} | {barcell} | {cells} |")
        lines += [
            "",
            f"Test set: {ss['rows']} transactions, {ss['frauds']} frauds; scored with {ss.get('scored_with', 'the model')}. "
            f"CP@100 per day: {', '.join(f'{x:.2f}' for x in ss['card_precision_at_100_per_day'])}; a perfect scorer would reach "
            f"{ss.get('card_precision_at_100_ceiling', float('nan')):.3f}.",
            "",
        ]
    pq = ev.get("prequential")
    if pq and "folds" in pq:
        base = pq["baseline"]
        lines += [
            "## Prequential: four test weeks, 2018-08-08 .. 2018-09-04",
            "",
            "Each fold's model is trained only on data before its test week start minus 7 days (same hyper-parameters and "
            "seed; the first fold is the shipped model). Mean ± sample standard deviation over the folds.",
            "",
            "| metric | ensemble | handbook baseline | " + " | ".join(f"week of {f['test_from']}" for f in pq["folds"]) + " |",
            "|---|---|---|" + "---|" * len(pq["folds"]),
        ]
        for m, label in METRIC_NAMES.items():
            folds = " | ".join(_fmt(f[m]) for f in pq["folds"])
            mark = " ✓" if pq[m] > base[m] else " ✗"
            lines.append(f"| {label} | **{pq[m]:.3f} ± {pq['std'][m]:.3f}**{mark} | {base[m]:.3f} | {folds} |")
        lines.append(
            "| CP@100 of a perfect scorer | | | "
            + " | ".join(_fmt(f.get("card_precision_at_100_ceiling", float("nan"))) for f in pq["folds"])
            + " |"
        )
        lines += ["", "Members, prequential mean:", ""]
        names = list(pq["folds"][0]["members"].keys())
        lines += ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for m, label in METRIC_NAMES.items():
            cells = " | ".join(f"{np.mean([f['members'][n][m] for f in pq['folds']]):.3f}" for n in names)
            lines.append(f"| {label} | {cells} |")
        lines.append("")
    elif pq:
        lines += [f"Prequential: skipped ({pq.get('skipped')}).", ""]
    val = ev.get("validation")
    if val:
        th = manifest["thresholds"]
        lines += [
            f"## Validation period {val['from']} .. {val['to']}",
            "",
            f"{val['rows']} transactions, {val['frauds']} frauds; out-of-sample ensemble AUC {_fmt(val['auc_roc'])}, AP {_fmt(val['average_precision'])}. "
            f"Thresholds: review {th['review']:.6g}, decline {th['decline']:.6g} — {th['alert_budget']}.",
            "",
            f"ONNX vs native max |diff| on these rows: "
            + ", ".join(f"{k} {v:.2g}" for k, v in ev["onnx_check"]["max_abs_diff"].items())
            + f" (members must agree within {ev['onnx_check']['tolerance']:g}; the combined score, computed from the float32 "
            f"member outputs, within {ev['onnx_check'].get('ensemble_tolerance', 1e-3):g}).",
            "",
        ]
    if plot_name:
        lines += [f"![precision-recall curves on the single-split test set]({plot_name})", ""]
    if ev.get("data") == "generated":
        lines += [
            "## Notes",
            "",
            "- Generated data (`generate`), not the handbook's: the handbook's baselines and quality bar do not apply.",
            "",
        ]
    elif not (ss or {}).get("derived", True):
        lines += [
            "## Notes",
            "",
            "- Hyper-parameters and the member set (LightGBM settings, the MLP size) were compared handbook-style on four "
            "earlier validation weeks (test weeks 2018-07-04 .. 07-25, same protocol). The test weeks were also looked at "
            "during development, so these numbers are not a fully blind estimate. A variant that refits the members on the "
            "validation week too (`--refit`) was level on the validation weeks and left out for simplicity; on the single "
            "split it gave AUC 0.888, AP 0.720, CP@100 0.299.",
            "- About a fifth of the test frauds are scenario-2 frauds (compromised terminal) in the first 7 days of the "
            "compromise: the terminal features only see labels 7 days late, so nothing in the features separates them "
            "from legitimate transactions. They cap AUC ROC near 0.89 and CP@100 well below the perfect-scorer ceiling; "
            "differences of ±0.005 AUC or ±0.003 CP@100 (two cards a week) between runs of similar models are noise.",
            "",
        ]
    tm = ev.get("timings_seconds")
    if tm:
        lines += ["Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in tm.items()), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def _score_model(model_dir: Path, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from .manifest import combine, run_members

    man = json.loads((model_dir / "manifest.json").read_text())
    P = run_members(model_dir, man, X)
    return combine(man, P), P


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fraudscore_training.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", required=True, help="backfill / oracle csv")
    ap.add_argument("--model", required=True, help="models/<name>/<version> folder")
    ap.add_argument("--test-start", default=str(SINGLE_SPLIT_TEST_START.date()))
    args = ap.parse_args(argv)
    from .train import load_features

    man = json.loads((Path(args.model) / "manifest.json").read_text())
    df = load_features(args.features, man["inputs"])
    mask = test_mask(df, pd.Timestamp(args.test_start))
    test = df[mask]
    score, P = _score_model(Path(args.model), test[man["inputs"]].to_numpy(np.float32))
    res = {"ensemble": metrics(test, score)}
    for j, m in enumerate(man["members"]):
        res[m["name"]] = metrics(test, P[:, j])
    for k, v in res.items():
        v.pop("card_precision_at_100_per_day", None)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
