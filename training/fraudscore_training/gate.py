"""Evaluation gate and model card of a retrained version (issue #19, items 2 and 3).

    python -m fraudscore_training.gate --features <training set csv> --candidate <version folder> \
        [--champion <version folder> --champion-features <csv>] --test-from 2018-08-08 --test-days 7 \
        [--rule 'average_precision>=-0.01' --rule 'auc_roc>=-0.005'] [--resamples 1000 --seed 7 --confidence 0.95] \
        [--context context.json]

Scores the candidate and the champion (both through their ONNX files, as the service would) on the same
handbook test set (evaluate.test_mask: the test days minus, on each day, the cards with a fraud known by then)
and compares them with a **paired bootstrap over cards**: each resample draws the test set's cards with
replacement (a card drawn k times counts k times, in every metric), scores both models on the same resample and
keeps the differences candidate - champion of AUC ROC, Average Precision and Card Precision@100. The interval
of each difference is the percentile interval at --confidence (two-sided; 0.95 -> 2.5 % and 97.5 %).

A rule `metric>=x` passes when the LOWER bound of the interval of the difference is >= x ("not worse by more
than -x at that confidence"); `metric.point>=x` checks the point estimate instead. The verdict is `eligible`
when every rule passes, else `rejected`. With no champion (the first version) nothing is compared and the
verdict is `eligible` with that reason.

The card (the manifest's `card`, and MODEL_CARD.md) gathers the data and code provenance given in --context
(written by `fraudscore retrain`), the training periods, the members and their hyper-parameters, the metrics and
the comparison, and the verdict; the manifest is rewritten atomically and the folder re-verified.

    python -m fraudscore_training.gate seed models/fraudscore/1 --context context.json
gives an already shipped version (trained before cards existed) a card from its manifest, `trigger: seed`,
verdict `eligible` (reason: seed version, no gate was run).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from . import evaluate as ev
from . import manifest as mf

CARD_SCHEMA_VERSION = 1
METRICS = ["auc_roc", "average_precision", "card_precision_at_100"]
DEFAULT_RULES = ["average_precision>=-0.01", "auc_roc>=-0.005"]
RULE_RE = re.compile(r"^\s*(auc_roc|average_precision|card_precision_at_100)(\.point|\.lower)?\s*>=\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- rules


def parse_rule(text: str) -> dict:
    m = RULE_RE.match(text)
    if not m:
        raise ValueError(
            f"gate rule {text!r}: expected '<metric>>=<number>' or '<metric>.point>=<number>' with metric one of {METRICS}"
        )
    return {
        "metric": m.group(1),
        "statistic": "point" if m.group(2) == ".point" else "ci_lower",
        "min": float(m.group(3)),
        "text": text.strip(),
    }


# --------------------------------------------------------------------------- paired bootstrap


class PairedBootstrap:
    """Both models' scores on one test set, prepared so that a resample of cards costs a few vectorised passes.

    AUC and AP are computed from per-row weights (a card's multiplicity in the resample) over the rows sorted
    once by score, ties grouped (the same definitions as sklearn's roc_auc_score and average_precision_score
    with sample weights); CP@100 from the card-day table (each card's max score and max label per day), cards
    sorted by score then card id, as evaluate.card_precision_top_k, a card drawn k times taking k of the 100
    places and cards found compromised removed from later days.
    """

    def __init__(self, test: pd.DataFrame, scores: list[np.ndarray], k: int = 100):
        self.k = k
        cards, self.card_of_row = np.unique(test["CUSTOMER_ID"].astype(str).to_numpy(), return_inverse=True)
        self.n_cards = cards.size
        self.y = test["TX_FRAUD"].to_numpy(np.int64)
        self.rows = []
        for s in scores:
            order = np.argsort(-s, kind="stable")
            ss = s[order]
            starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
            self.rows.append((order, starts))
        day = test["day"].to_numpy()
        self.days = []
        for d in np.unique(day):
            sel = day == d
            cd = pd.DataFrame({"card": self.card_of_row[sel], "y": self.y[sel]})
            per_model = []
            for s in scores:
                g = cd.assign(s=s[sel]).groupby("card").agg(s=("s", "max"), y=("y", "max")).reset_index()
                o = np.lexsort((g["card"].to_numpy(), -g["s"].to_numpy()))
                per_model.append((g["card"].to_numpy()[o], g["y"].to_numpy()[o]))
            self.days.append(per_model)

    def _auc_ap(self, j: int, w: np.ndarray) -> tuple[float, float]:
        order, starts = self.rows[j]
        ws, ys = w[order], self.y[order]
        pos = np.add.reduceat(ws * ys, starts)
        neg = np.add.reduceat(ws * (1 - ys), starts)
        P, N = pos.sum(), neg.sum()
        if P <= 0 or N <= 0:
            return float("nan"), float("nan")
        neg_above = np.cumsum(neg) - neg
        auc = float((pos * (N - neg_above - 0.5 * neg)).sum() / (P * N))
        tp, fp = np.cumsum(pos), np.cumsum(neg)
        keep = (tp + fp) > 0
        prec = np.where(keep, tp / np.where(keep, tp + fp, 1), 0.0)
        rec = tp / P
        ap = float(np.sum(np.diff(np.r_[0.0, rec]) * prec))
        return auc, ap

    def _cp(self, j: int, mult: np.ndarray) -> float:
        detected = np.zeros(self.n_cards, dtype=bool)
        per_day = []
        for per_model in self.days:
            card, y = per_model[j]
            m = mult[card] * ~detected[card]
            before = np.cumsum(m) - m
            take = np.minimum(m, np.maximum(0, self.k - before))
            per_day.append(float((take * y).sum()) / self.k)
            detected[card[(take > 0) & (y == 1)]] = True
        return float(np.mean(per_day)) if per_day else float("nan")

    def metrics(self, j: int, mult: np.ndarray) -> np.ndarray:
        auc, ap = self._auc_ap(j, mult[self.card_of_row].astype(np.float64))
        return np.array([auc, ap, self._cp(j, mult)])

    def run(self, resamples: int, seed: int) -> np.ndarray:
        """[resamples, models, 3] metrics on card resamples."""
        rng = np.random.default_rng(seed)
        out = np.empty((resamples, len(self.rows), 3))
        for b in range(resamples):
            mult = np.bincount(rng.integers(0, self.n_cards, self.n_cards), minlength=self.n_cards)
            for j in range(len(self.rows)):
                out[b, j] = self.metrics(j, mult)
        return out


def compare(test: pd.DataFrame, s_cand: np.ndarray, s_champ: np.ndarray, resamples: int, seed: int, confidence: float, log=print) -> dict:
    point_cand = ev.metrics(test, s_cand)
    point_champ = ev.metrics(test, s_champ)
    t0 = time.time()
    boot = PairedBootstrap(test, [s_cand, s_champ])
    # The fast path reproduces the protocol's own numbers on the full test set (every card once).
    ones = np.ones(boot.n_cards, dtype=np.int64)
    for j, p in enumerate((point_cand, point_champ)):
        fast = boot.metrics(j, ones)
        for i, m in enumerate(METRICS):
            if not np.isclose(fast[i], p[m], rtol=0, atol=1e-9):
                raise AssertionError(f"bootstrap metric {m} {fast[i]} != protocol {p[m]}")
    res = boot.run(resamples, seed)
    log(f"paired bootstrap: {resamples} card resamples in {time.time() - t0:.1f}s")
    d = res[:, 0, :] - res[:, 1, :]
    lo_q, hi_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    deltas = {}
    for i, m in enumerate(METRICS):
        col = d[:, i][np.isfinite(d[:, i])]
        deltas[m] = {
            "champion": point_champ[m],
            "candidate": point_cand[m],
            "delta": point_cand[m] - point_champ[m],
            "ci_lower": float(np.quantile(col, lo_q)) if col.size else None,
            "ci_upper": float(np.quantile(col, hi_q)) if col.size else None,
            "bootstrap_std": float(col.std(ddof=1)) if col.size > 1 else None,
        }
    return {
        "method": "paired bootstrap over cards (CUSTOMER_ID): both models on each resample; percentile interval of candidate - champion",
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "cards": int(boot.n_cards),
        "metrics": deltas,
        "candidate": {m: point_cand[m] for m in METRICS},
        "champion": {m: point_champ[m] for m in METRICS},
        "card_precision_at_100_per_day": {
            "candidate": point_cand["card_precision_at_100_per_day"],
            "champion": point_champ["card_precision_at_100_per_day"],
        },
    }


def decide(rules: list[dict], comparison: dict | None) -> dict:
    if comparison is None:
        return {
            "verdict": "eligible",
            "rules": [{**r, "value": None, "pass": None} for r in rules],
            "reasons": ["no champion: the first version of this model, nothing to compare with"],
        }
    out, reasons = [], []
    for r in rules:
        d = comparison["metrics"][r["metric"]]
        v = d["ci_lower"] if r["statistic"] == "ci_lower" else d["delta"]
        ok = v is not None and np.isfinite(v) and v >= r["min"]
        out.append({**r, "value": v, "pass": bool(ok)})
        what = f"lower {comparison['confidence']:.0%} bound of Δ{r['metric']}" if r["statistic"] == "ci_lower" else f"Δ{r['metric']}"
        reasons.append(f"{'pass' if ok else 'FAIL'}: {what} = {v:+.4f} (needs >= {r['min']:+g})" if v is not None else f"FAIL: {what} undefined")
    return {"verdict": "eligible" if all(r["pass"] for r in out) else "rejected", "rules": out, "reasons": reasons}


# --------------------------------------------------------------------------- card


def _members(man: dict) -> list[dict]:
    hp = man.get("training", {}).get("hyperparameters", {})
    return [{"name": m["name"], "family": m["family"], "file": m["file"], "hyperparameters": hp.get(m["name"])} for m in man["members"]]


def build_card(man: dict, context: dict, evaluation: dict | None, comparison: dict | None, gate: dict, champion: dict | None) -> dict:
    sp = man.get("evaluation", {}).get("split", {})
    tr = man["training"]
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "created_at": now_iso(),
        "trigger": context.get("trigger", {"kind": "manual"}),
        "code": context.get("code", {}),
        "data": context.get("data", {}),
        "training": {
            "from": tr["data_from"],
            "to": tr["data_to"],
            "rows": tr["rows"],
            "frauds": tr["frauds"],
            "members_from": sp.get("members_from"),
            "members_to": sp.get("members_to"),
            "validation_from": sp.get("validation_from"),
            "validation_to": sp.get("validation_to"),
            "seed": tr["seed"],
            "command": tr.get("command"),
            **({"options": context["trainer_options"]} if context.get("trainer_options") else {}),
        },
        "evaluation": evaluation,
        "feature_set": {"name": man["feature_set"]["name"], "version": man["feature_set"]["version"], "inputs": man["inputs"]},
        "members": _members(man),
        "combiner": {k: v for k, v in man["combiner"].items()},
        "metrics": comparison["candidate"] if comparison else (evaluation or {}).get("metrics"),
        "champion": champion,
        "comparison": comparison,
        "gate": {**gate, "decided_at": now_iso()},
        **({"timings_seconds": context["timings_seconds"]} if context.get("timings_seconds") else {}),
    }


def _f(x, sign=False) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:+.4f}" if sign else f"{x:.4f}"


def card_markdown(man: dict, card: dict) -> str:
    g = card["gate"]
    tr, data, code, trig = card["training"], card.get("data", {}), card.get("code", {}), card.get("trigger", {})
    L = [
        f"# Model card: {man['name']} v{man['version']}",
        "",
        f"**Gate verdict: `{g['verdict']}`**" + (f" against {card['champion']['name']} v{card['champion']['version']}" if card.get("champion") else ""),
        "",
        *[f"- {r}" for r in g.get("reasons", [])],
        "",
        "## Provenance",
        "",
        f"- Trigger: {trig.get('kind', 'n/a')}" + (f" by {trig['by']}" if trig.get("by") else "") + (f" — {trig['note']}" if trig.get("note") else ""),
        f"- Code commit: `{code.get('commit', 'unknown')}`" + (" (working tree had uncommitted changes)" if code.get("dirty") else ""),
        f"- Data fingerprint: `{(data.get('fingerprint') or {}).get('sha256', 'n/a')}` (sha256 over the input files' sha256, in order)",
    ]
    for f in (data.get("fingerprint") or {}).get("inputs", []):
        L.append(f"  - `{f['path']}` {f['bytes']} bytes, sha256 `{f['sha256']}`")
    if data.get("history_from"):
        L.append(
            f"- History: {data['history_from']} .. {data['history_to']}, {data.get('rows', 'n/a')} transactions, {data.get('frauds', 'n/a')} frauds; "
            f"features by the service's engine (`{data.get('engine', 'node')}` backfill); labels {data.get('labels', 'n/a')}"
        )
    L += [
        f"- Created: {card['created_at']}",
        "",
        "## Training",
        "",
        f"- Members trained on {tr.get('members_from')} .. {tr.get('members_to')}; combiner and thresholds on the validation period "
        f"{tr.get('validation_from')} .. {tr.get('validation_to')}; {tr['rows']} rows, {tr['frauds']} frauds in all; seed {tr['seed']}.",
        f"- Feature set `{card['feature_set']['name']}_v{card['feature_set']['version']}`: " + ", ".join(f"`{x}`" for x in card["feature_set"]["inputs"]),
        f"- Combiner: `{card['combiner']['kind']}`",
        "",
        "| member | family | hyper-parameters |",
        "|---|---|---|",
    ]
    for m in card["members"]:
        hp = m.get("hyperparameters")
        L.append(f"| `{m['name']}` | {m['family']} | {', '.join(f'{k}={v}' for k, v in hp.items()) if hp else 'n/a'} |")
    if tr.get("command"):
        L += ["", "```", tr["command"], "```"]
    e = card.get("evaluation")
    c = card.get("comparison")
    L += ["", "## Evaluation", ""]
    if e:
        L.append(
            f"Test period {e['from']} .. {e['to']} ({e['rows']} transactions, {e['frauds']} frauds) — {e.get('protocol', 'handbook protocol')}."
        )
        L.append("")
    if c:
        L += [
            f"Comparison with the champion ({card['champion']['name']} v{card['champion']['version']}), {c['method']}; "
            f"{c['resamples']} resamples, seed {c['seed']}, {c['confidence']:.0%} intervals, {c['cards']} cards.",
            "",
            "| metric | champion | candidate | Δ | CI of Δ |",
            "|---|---|---|---|---|",
        ]
        for m, label in ev.METRIC_NAMES.items():
            d = c["metrics"][m]
            L.append(f"| {label} | {_f(d['champion'])} | {_f(d['candidate'])} | {_f(d['delta'], True)} | [{_f(d['ci_lower'], True)}, {_f(d['ci_upper'], True)}] |")
        L.append("")
    elif card.get("metrics"):
        L += ["| metric | value |", "|---|---|"] + [f"| {label} | {_f(card['metrics'].get(m))} |" for m, label in ev.METRIC_NAMES.items()] + [""]
    L += ["## Gate", "", "| rule | statistic | value | pass |", "|---|---|---|---|"]
    for r in g["rules"]:
        L.append(f"| `{r['text']}` | {r['statistic']} | {_f(r['value'], True)} | {'—' if r['pass'] is None else ('✓' if r['pass'] else '✗')} |")
    L += [
        "",
        "A rejected version stays in the folder for inspection; the admin API refuses to activate or canary it "
        "(409 `gate_rejected`) unless asked with `?override=true&reason=...`, which is logged as an audit event.",
        "",
    ]
    tm = card.get("timings_seconds")
    if tm:
        L += ["Timings (s): " + ", ".join(f"{k} {v}" for k, v in tm.items()), ""]
    return "\n".join(L)


def write_card(folder: Path, man: dict, card: dict) -> None:
    man = {**man, "card": card}
    (folder / "MODEL_CARD.md").write_text(card_markdown(man, card))
    mf.write_atomic(folder, man)
    errors = mf.verify(folder)
    if errors:
        raise SystemExit("model folder does not verify after writing the card:\n  " + "\n  ".join(errors))


# --------------------------------------------------------------------------- CLI


def _scores(folder: Path, man: dict, df: pd.DataFrame) -> np.ndarray:
    P = mf.run_members(folder, man, df[man["inputs"]].to_numpy(np.float32))
    return mf.combine(man, P)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["seed"]:
        return seed_main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m fraudscore_training.gate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", required=True, help="training set csv of the candidate's feature set")
    ap.add_argument("--candidate", required=True, help="the candidate's version folder")
    ap.add_argument("--champion", default=None, help="the champion's version folder (none: first version)")
    ap.add_argument("--champion-features", default=None, help="training set csv of the champion's feature set (default --features)")
    ap.add_argument("--test-from", required=True, help="first day of the test period (YYYY-MM-DD)")
    ap.add_argument("--test-days", type=int, default=ev.TEST_DAYS)
    ap.add_argument("--delay-days", type=int, default=ev.DELAY_DAYS, help="label delay for the known-compromised cards")
    ap.add_argument("--rule", action="append", default=None, help=f"gate rule (repeatable; default {DEFAULT_RULES})")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--context", default=None, help="JSON: trigger, code, data, trainer_options, timings_seconds")
    args = ap.parse_args(argv)
    t_start = time.time()

    def log(msg: str) -> None:
        print(f"[gate {time.time() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    rules = [parse_rule(r) for r in (args.rule or DEFAULT_RULES)]
    if not (0 < args.confidence < 1) or args.resamples < 10:
        ap.error("--confidence must be in (0, 1) and --resamples >= 10")
    context = json.loads(Path(args.context).read_text()) if args.context else {}
    cand_dir = Path(args.candidate)
    man = json.loads((cand_dir / "manifest.json").read_text())
    from .train import load_features

    df = load_features(args.features, man["inputs"])
    start = pd.Timestamp(args.test_from)
    mask = ev.test_mask(df, start, args.test_days, args.delay_days)
    test = df[mask]
    if test["TX_FRAUD"].sum() == 0 or test["TX_FRAUD"].sum() == len(test):
        raise SystemExit(f"the test period {start.date()} + {args.test_days} days has no fraud (or only frauds): nothing to evaluate")
    evaluation = {
        "from": str(start.date()),
        "to": str((start + (args.test_days - 1) * ev.DAY).date()),
        "rows": int(len(test)),
        "frauds": int(test["TX_FRAUD"].sum()),
        "protocol": f"handbook (evaluate.py): {args.delay_days}-day label delay, cards with a known fraud removed per day, AUC ROC, AP, CP@100; scored through the ONNX files",
    }
    log(f"test {evaluation['from']}..{evaluation['to']}: {evaluation['rows']} rows, {evaluation['frauds']} frauds")
    s_cand = _scores(cand_dir, man, test)
    comparison, champion = None, None
    if args.champion:
        ch_dir = Path(args.champion)
        ch_man = json.loads((ch_dir / "manifest.json").read_text())
        ch_df = df
        if args.champion_features and args.champion_features != args.features:
            ch_df = load_features(args.champion_features, ch_man["inputs"])
            if not (ch_df["TRANSACTION_ID"].to_numpy() == df["TRANSACTION_ID"].to_numpy()).all():
                raise SystemExit("the champion's training set does not have the candidate's rows in the same order")
        s_champ = _scores(ch_dir, ch_man, ch_df[mask])
        champion = {
            "name": ch_man["name"],
            "version": ch_man["version"],
            "trained_until": ch_man["training"]["data_to"],
            "gate_verdict": (ch_man.get("card") or {}).get("gate", {}).get("verdict"),
            "source": context.get("champion_source"),
        }
        comparison = compare(test, s_cand, s_champ, args.resamples, args.seed, args.confidence, log)
        for m in METRICS:
            d = comparison["metrics"][m]
            log(f"  {m}: champion {_f(d['champion'])}, candidate {_f(d['candidate'])}, Δ {_f(d['delta'], True)} [{_f(d['ci_lower'], True)}, {_f(d['ci_upper'], True)}]")
    else:
        evaluation["metrics"] = {m: v for m, v in ev.metrics(test, s_cand).items() if m in METRICS}
    gate = decide(rules, comparison)
    gate["confidence"] = args.confidence
    ctx_t = dict(context.get("timings_seconds") or {})
    ctx_t["gate"] = round(time.time() - t_start, 1)
    context["timings_seconds"] = ctx_t
    card = build_card(man, context, evaluation, comparison, gate, champion)
    write_card(cand_dir, man, card)
    log(f"verdict {gate['verdict']}: " + "; ".join(gate["reasons"]))
    print(json.dumps({"verdict": gate["verdict"], "reasons": gate["reasons"], "comparison": comparison and comparison["metrics"], "evaluation": evaluation}))
    return 0


def seed_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m fraudscore_training.gate seed")
    ap.add_argument("folder")
    ap.add_argument("--context", default=None, help="JSON: code, data (provenance of the original training run)")
    ap.add_argument("--hyperparameters", default=None, help="JSON: per member, the settings the version was trained with")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    man = json.loads((folder / "manifest.json").read_text())
    if args.hyperparameters and "hyperparameters" not in man["training"]:
        man["training"]["hyperparameters"] = json.loads(Path(args.hyperparameters).read_text())
    context = json.loads(Path(args.context).read_text()) if args.context else {}
    context.setdefault("trigger", {"kind": "seed", "note": "shipped before model cards; card written from its manifest, no gate was run"})
    ss = man.get("evaluation", {}).get("single_split")
    evaluation = None
    if ss:
        evaluation = {
            "from": ss["test_from"],
            "to": ss["test_to"],
            "rows": ss["rows"],
            "frauds": ss["frauds"],
            "protocol": "handbook single split (evaluate.py), from the manifest's evaluation",
            "metrics": {m: ss[m] for m in METRICS},
        }
    gate = {
        "verdict": "eligible",
        "rules": [],
        "reasons": ["seed version: shipped before the evaluation gate existed; eligible by decision, no comparison was run"],
    }
    card = build_card(man, context, evaluation, None, gate, None)
    write_card(folder, man, card)
    print(f"card written: {folder}/MODEL_CARD.md (trigger seed, verdict eligible)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
