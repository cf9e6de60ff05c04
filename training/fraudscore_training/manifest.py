"""Model manifest: combiner maths, a Python mirror of the service's zod schema
(`src/domain/models/manifest.ts`), atomic writing, and verification of a model folder.

    python -m fraudscore_training.manifest verify models/fraudscore/1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

NAME_RE = re.compile(r"^[a-z0-9_-]+$")
FILE_RE = re.compile(r"^[A-Za-z0-9_.-]+\.onnx$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
VERSION_RE = re.compile(r"^[1-9][0-9]*$")
# zod's z.iso.datetime({ offset: true }): date, time with optional fraction, then Z or +hh:mm.
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")


# --------------------------------------------------------------------------- combiner


def logit_clip(p: np.ndarray, clip: float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), clip, 1.0 - clip)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def combine_with(combiner: dict, weights: list[float], P: np.ndarray) -> np.ndarray:
    """Ensemble score from member probabilities P [N, members] (float64 maths)."""
    P = np.asarray(P, dtype=np.float64)
    if combiner["kind"] == "weighted_mean":
        w = np.asarray(weights, dtype=np.float64)
        return P @ w / w.sum()
    if combiner["kind"] == "logistic_stack":
        clip = float(combiner.get("clip", 1e-6))
        z = float(combiner["intercept"]) + logit_clip(P, clip) @ np.asarray(combiner["coefficients"], dtype=np.float64)
        return sigmoid(z)
    raise ValueError(f"unknown combiner {combiner['kind']!r}")


def combine(manifest: dict, P: np.ndarray) -> np.ndarray:
    return combine_with(manifest["combiner"], [m["weight"] for m in manifest["members"]], P)


# --------------------------------------------------------------------------- schema


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _histogram_errors(h: Any, path: str) -> list[str]:
    e = []
    if not isinstance(h, dict):
        return [f"{path}: not an object"]
    edges, counts = h.get("edges"), h.get("counts")
    if not isinstance(edges, list) or len(edges) < 2 or not all(_finite(x) for x in edges):
        e.append(f"{path}.edges: need >= 2 finite numbers")
    elif any(edges[i] <= edges[i - 1] for i in range(1, len(edges))):
        e.append(f"{path}.edges: must be strictly increasing")
    if not isinstance(counts, list) or not all(_finite(x) and x >= 0 for x in counts):
        e.append(f"{path}.counts: need numbers >= 0")
    elif isinstance(edges, list) and len(counts) != len(edges) + 1:
        e.append(f"{path}.counts: must have edges.length + 1 entries")
    return e


def validate(m: Any) -> list[str]:
    """Mirror of ManifestSchema (zod); returns the list of errors (empty when valid)."""
    e: list[str] = []
    if not isinstance(m, dict):
        return ["manifest: not an object"]

    def need(key, ok, msg):
        if key not in m or not ok(m[key]):
            e.append(f"{key}: {msg}")

    need("schema_version", lambda v: v == 1 and not isinstance(v, bool), "must be 1")
    need("name", lambda v: isinstance(v, str) and NAME_RE.match(v), "must match ^[a-z0-9_-]+$")
    need("version", lambda v: isinstance(v, str) and VERSION_RE.match(v), "must be a positive integer string")
    need("created_at", lambda v: isinstance(v, str) and DATETIME_RE.match(v), "must be an ISO datetime with offset")
    if "description" in m and not isinstance(m["description"], str):
        e.append("description: must be a string")
    need(
        "feature_set",
        lambda v: isinstance(v, dict)
        and isinstance(v.get("name"), str)
        and v["name"]
        and isinstance(v.get("version"), int)
        and not isinstance(v.get("version"), bool)
        and v["version"] >= 1,
        "needs name and integer version >= 1",
    )
    need("inputs", lambda v: isinstance(v, list) and len(v) >= 1 and all(isinstance(x, str) and x for x in v), "non-empty list of names")
    inputs = m.get("inputs") if isinstance(m.get("inputs"), list) else []
    if len(set(inputs)) != len(inputs):
        e.append("inputs: input names must be unique")
    members = m.get("members")
    if not isinstance(members, list) or not members:
        e.append("members: need at least one")
        members = []
    for i, mb in enumerate(members):
        p = f"members[{i}]"
        if not isinstance(mb, dict):
            e.append(f"{p}: not an object")
            continue
        if not (isinstance(mb.get("name"), str) and NAME_RE.match(mb["name"])):
            e.append(f"{p}.name: must match ^[a-z0-9_-]+$")
        if not (isinstance(mb.get("family"), str) and mb["family"]):
            e.append(f"{p}.family: required")
        if not (isinstance(mb.get("file"), str) and FILE_RE.match(mb["file"])):
            e.append(f"{p}.file: must be a file name ending in .onnx")
        if not (isinstance(mb.get("sha256"), str) and SHA_RE.match(mb["sha256"])):
            e.append(f"{p}.sha256: must be lowercase hex sha256")
        for k in ("input_name", "output_name"):
            if not (isinstance(mb.get(k), str) and mb[k]):
                e.append(f"{p}.{k}: required")
        oi = mb.get("output_index", "missing")
        if not (oi is None or (isinstance(oi, int) and not isinstance(oi, bool) and oi >= 0)):
            e.append(f"{p}.output_index: int >= 0 or null")
        if not (_finite(mb.get("weight")) and mb["weight"] >= 0):
            e.append(f"{p}.weight: number >= 0")
    if len({mb.get("file") for mb in members if isinstance(mb, dict)}) != len(members):
        e.append("members: member files must be distinct")
    c = m.get("combiner")
    if not isinstance(c, dict) or c.get("kind") not in ("weighted_mean", "logistic_stack"):
        e.append("combiner: kind must be weighted_mean or logistic_stack")
    elif c["kind"] == "logistic_stack":
        if not _finite(c.get("intercept")):
            e.append("combiner.intercept: finite number")
        co = c.get("coefficients")
        if not isinstance(co, list) or not co or not all(_finite(x) for x in co):
            e.append("combiner.coefficients: non-empty finite numbers")
        elif len(co) != len(members):
            e.append("combiner.coefficients: one coefficient per member")
        if "clip" in c and not (_finite(c["clip"]) and 0 < c["clip"] < 0.5):
            e.append("combiner.clip: in (0, 0.5)")
    t = m.get("thresholds")
    if not isinstance(t, dict):
        e.append("thresholds: required")
    else:
        for k in ("review", "decline"):
            if not (_finite(t.get(k)) and 0 <= t[k] <= 1):
                e.append(f"thresholds.{k}: in [0, 1]")
        if not (isinstance(t.get("alert_budget"), str) and t["alert_budget"]):
            e.append("thresholds.alert_budget: required")
        if _finite(t.get("review")) and _finite(t.get("decline")) and t["review"] > t["decline"]:
            e.append("thresholds: review threshold must not exceed decline threshold")
    imp = m.get("importance")
    if not isinstance(imp, dict) or not all(isinstance(k, str) and _finite(v) and v >= 0 for k, v in imp.items()):
        e.append("importance: record of numbers >= 0")
    ref = m.get("reference")
    if not isinstance(ref, dict):
        e.append("reference: required")
    else:
        if not (isinstance(ref.get("rows"), int) and ref["rows"] >= 1):
            e.append("reference.rows: int >= 1")
        feats = ref.get("features") if isinstance(ref.get("features"), dict) else {}
        if not isinstance(ref.get("features"), dict):
            e.append("reference.features: required")
        for k, h in feats.items():
            e += _histogram_errors(h, f"reference.features.{k}")
        e += _histogram_errors(ref.get("score"), "reference.score")
        mom = ref.get("moments")
        if not isinstance(mom, dict):
            e.append("reference.moments: required")
        else:
            for k, v in mom.items():
                if not (isinstance(v, dict) and _finite(v.get("mean")) and _finite(v.get("std")) and v["std"] >= 0):
                    e.append(f"reference.moments.{k}: mean finite, std >= 0")
        for name in inputs:
            if name not in feats:
                e.append(f"reference.features.{name}: missing reference histogram")
    if not isinstance(m.get("evaluation"), dict):
        e.append("evaluation: record required")
    tr = m.get("training")
    if not isinstance(tr, dict):
        e.append("training: required")
    else:
        for k in ("data_from", "data_to"):
            if not isinstance(tr.get(k), str):
                e.append(f"training.{k}: string")
        for k in ("rows", "frauds"):
            if not (isinstance(tr.get(k), int) and not isinstance(tr.get(k), bool) and tr[k] >= 0):
                e.append(f"training.{k}: int >= 0")
        if not (isinstance(tr.get("seed"), int) and not isinstance(tr.get("seed"), bool)):
            e.append("training.seed: int")
        if "command" in tr and not isinstance(tr["command"], str):
            e.append("training.command: string")
        if "hyperparameters" in tr and not isinstance(tr["hyperparameters"], dict):
            e.append("training.hyperparameters: object")
    card = m.get("card")
    if card is not None:
        e += card_errors(card)
    golden = m.get("golden")
    if not isinstance(golden, list) or not golden:
        e.append("golden: a manifest needs golden examples to verify a load")
        golden = []
    for i, g in enumerate(golden):
        if not isinstance(g, dict):
            e.append(f"golden[{i}]: not an object")
            continue
        gi, gm = g.get("inputs"), g.get("members")
        if not isinstance(gi, list) or not all(_finite(x) for x in gi) or len(gi) != len(inputs):
            e.append(f"golden[{i}].inputs: expected {len(inputs)} finite inputs")
        if not isinstance(gm, list) or not all(_finite(x) for x in gm) or len(gm) != len(members):
            e.append(f"golden[{i}].members: expected {len(members)} finite member scores")
        if not _finite(g.get("score")):
            e.append(f"golden[{i}].score: finite number")
    return e


def card_errors(card: Any) -> list[str]:
    """Mirror of CardSchema (src/domain/models/card.ts): the parts the service and the promotion policy read."""
    if not isinstance(card, dict):
        return ["card: not an object"]
    e = []
    if card.get("schema_version") != 1:
        e.append("card.schema_version: must be 1")
    if not (isinstance(card.get("created_at"), str) and DATETIME_RE.match(card["created_at"])):
        e.append("card.created_at: must be an ISO datetime with offset")
    trig = card.get("trigger")
    if not (isinstance(trig, dict) and isinstance(trig.get("kind"), str) and trig["kind"]):
        e.append("card.trigger.kind: required")
    g = card.get("gate")
    if not isinstance(g, dict) or g.get("verdict") not in ("eligible", "rejected"):
        e.append("card.gate.verdict: eligible or rejected")
    elif not isinstance(g.get("reasons"), list) or not isinstance(g.get("rules"), list):
        e.append("card.gate: needs rules and reasons lists")
    return e


# --------------------------------------------------------------------------- io


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _json_default(o):
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, datetime):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def dumps(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, default=_json_default, allow_nan=False) + "\n"


def write_atomic(folder: Path, manifest: dict, filename: str = "manifest.json") -> Path:
    """Validates, then writes to a temp name in the same folder and renames over the target."""
    errors = validate(json.loads(dumps(manifest)))
    if errors:
        raise ValueError("manifest does not conform to the schema:\n  " + "\n  ".join(errors))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / filename
    tmp = folder / f".{filename}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(dumps(manifest))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def run_members(folder: Path, manifest: dict, X: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    cols = []
    for mb in manifest["members"]:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(folder / mb["file"]), so, providers=["CPUExecutionProvider"])
        out = sess.run([mb["output_name"]], {mb["input_name"]: np.asarray(X, dtype=np.float32)})[0]
        cols.append(out[:, mb["output_index"]] if mb["output_index"] is not None else out.reshape(-1))
    return np.column_stack(cols).astype(np.float64)


def verify(folder: Path, tol: float = 1e-6) -> list[str]:
    """Schema, file hashes, and golden examples re-scored with onnxruntime."""
    folder = Path(folder)
    man = json.loads((folder / "manifest.json").read_text())
    errors = validate(man)
    if errors:
        return errors
    for mb in man["members"]:
        p = folder / mb["file"]
        if not p.exists():
            errors.append(f"{mb['file']}: missing")
        elif sha256_file(p) != mb["sha256"]:
            errors.append(f"{mb['file']}: sha256 mismatch")
    if errors:
        return errors
    X = np.array([g["inputs"] for g in man["golden"]], dtype=np.float64)
    P = run_members(folder, man, X)
    S = combine(man, P)
    for i, g in enumerate(man["golden"]):
        d = np.max(np.abs(P[i] - np.asarray(g["members"])))
        if d > tol:
            errors.append(f"golden[{i}]: member scores differ by {d:.3g}")
        if abs(S[i] - g["score"]) > tol:
            errors.append(f"golden[{i}]: score differs by {abs(S[i] - g['score']):.3g}")
    return errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fraudscore_training.manifest")
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="schema + sha256 + golden re-scoring of a model folder")
    v.add_argument("folder")
    args = ap.parse_args(argv)
    errors = verify(Path(args.folder))
    if errors:
        print("manifest verify FAILED:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    man = json.loads((Path(args.folder) / "manifest.json").read_text())
    print(f"manifest verify OK: {man['name']} v{man['version']}, {len(man['members'])} members, {len(man['golden'])} golden rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
