"""The smoke path end to end (generate -> oracle -> train) and the manifest it writes."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fraudscore_training import generate, manifest as mf, oracle, train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("smoke")
    raw = d / "raw.csv"
    generate.write(generate.generate(days=30, customers=200, terminals=400, seed=1), raw)
    feats = d / "features.csv"
    assert oracle.main(["--input", str(raw), "--output", str(feats), "--feature-set", "v2"]) == 0
    args = ["--features", str(feats), "--out", str(d / "models"), "--name", "fraudscore", "--version", "3",
            "--feature-set", "transaction_v2", "--train-until", "2018-08-01", "--seed", "7", "--smoke"]
    assert train.main(args) == 0
    return d / "models" / "fraudscore" / "3", args


def test_manifest_conforms(smoke_model):
    folder, _ = smoke_model
    man = json.loads((folder / "manifest.json").read_text())
    assert mf.validate(man) == []
    assert mf.verify(folder) == []
    assert man["schema_version"] == 1 and man["version"] == "3"
    assert man["feature_set"] == {"name": "transaction", "version": 2}
    assert len(man["inputs"]) == 18 and man["inputs"][0] == "TX_AMOUNT"
    assert len(man["members"]) >= 3 and len({m["family"] for m in man["members"]}) >= 3
    assert man["combiner"]["kind"] == "logistic_stack"
    assert len(man["combiner"]["coefficients"]) == len(man["members"])
    assert 0 <= man["thresholds"]["review"] <= man["thresholds"]["decline"] <= 1
    assert abs(sum(man["importance"].values()) - 1) < 1e-9
    for h in list(man["reference"]["features"].values()) + [man["reference"]["score"]]:
        assert len(h["counts"]) == len(h["edges"]) + 1
        assert sum(h["counts"]) == man["reference"]["rows"]
    assert 10 <= len(man["golden"]) <= 30 and any(g["label"] == 1 for g in man["golden"])
    assert "single_split" in man["evaluation"] and man["evaluation"]["split"]["derived_from_data_range"]
    assert (folder / "REPORT.md").exists() and "python -m fraudscore_training.train" in (folder / "REPORT.md").read_text()
    # manifest written last: it is the newest file of the folder
    newest = max(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    assert newest.name == "manifest.json"
    assert not list(folder.glob(".*tmp*"))


def test_deterministic(smoke_model, tmp_path):
    folder, args = smoke_model
    args = list(args)
    args[args.index("--out") + 1] = str(tmp_path)
    assert train.main(args) == 0
    again = tmp_path / "fraudscore" / "3"
    a = json.loads((folder / "manifest.json").read_text())
    b = json.loads((again / "manifest.json").read_text())
    assert [m["sha256"] for m in a["members"]] == [m["sha256"] for m in b["members"]]
    for k in ("combiner", "thresholds", "golden", "reference", "importance"):
        assert a[k] == b[k], k


def test_golden_rescored_by_onnxruntime(smoke_model):
    folder, _ = smoke_model
    man = json.loads((folder / "manifest.json").read_text())
    X = np.array([g["inputs"] for g in man["golden"]])
    P = mf.run_members(folder, man, X)
    assert np.max(np.abs(P - np.array([g["members"] for g in man["golden"]]))) < 1e-7
    S = mf.combine(man, P)
    assert np.max(np.abs(S - np.array([g["score"] for g in man["golden"]]))) < 1e-9


def test_validator_rejects_bad_manifests(smoke_model):
    folder, _ = smoke_model
    good = json.loads((folder / "manifest.json").read_text())
    cases = {
        "counts": lambda m: m["reference"]["score"]["counts"].pop(),
        "edges": lambda m: m["reference"]["score"]["edges"].reverse(),
        "coef": lambda m: m["combiner"]["coefficients"].pop(),
        "thresholds": lambda m: m["thresholds"].update(review=0.9, decline=0.1),
        "golden": lambda m: m["golden"][0]["inputs"].pop(),
        "sha": lambda m: m["members"][0].update(sha256="ABC"),
        "version": lambda m: m.update(version="0"),
        "histogram": lambda m: m["reference"]["features"].pop(m["inputs"][0]),
    }
    for name, mutate in cases.items():
        m = json.loads(json.dumps(good))
        mutate(m)
        assert mf.validate(m), name


def test_histogram_bins():
    h = train.histogram(np.array([0, 0, 0, 1, 1, 2, 3, 4, 5, 6.0]), n_bins=4)
    # edges: the 25/50/75% quantiles; counts: < e0, [e0, e1), [e1, e2), >= e2
    assert h["edges"] == [0.25, 1.5, 3.75]
    assert h["counts"] == [3, 2, 2, 3]
    c = train.histogram(np.zeros(5))
    assert c == {"edges": [0.0, 1.0], "counts": [0, 5, 0]}


TSX = REPO / "node_modules" / ".bin" / "tsx"
SCHEMA = REPO / "src" / "domain" / "models" / "manifest.ts"


@pytest.mark.skipif(not (TSX.exists() and SCHEMA.exists() and shutil.which("node")), reason="node/tsx or the zod schema not available")
def test_manifest_passes_the_service_zod_schema(smoke_model, tmp_path):
    folder, _ = smoke_model
    script = tmp_path / "check.ts"
    script.write_text(
        f"import {{ readFileSync }} from 'node:fs';\n"
        f"import {{ ManifestSchema }} from {json.dumps(str(SCHEMA))};\n"
        f"const r = ManifestSchema.safeParse(JSON.parse(readFileSync(process.argv[2], 'utf8')));\n"
        f"if (!r.success) {{ console.error(JSON.stringify(r.error.issues, null, 2)); process.exit(1); }}\n"
        f"console.log('ok');\n"
    )
    p = subprocess.run([str(TSX), str(script), str(folder / "manifest.json")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout


def test_generated_data_gets_no_handbook_baselines(smoke_model, tmp_path):
    """`--generated-data` with a split that fits the data (not derived): no handbook baselines, quality bar or notes."""
    _, args = smoke_model
    a = ["--features", args[1], "--out", str(tmp_path), "--name", "gen", "--version", "1", "--feature-set", "transaction_v2",
         "--train-from", "2018-04-02", "--train-until", "2018-04-17", "--seed", "7", "--smoke", "--generated-data"]
    assert train.main(a) == 0
    man = json.loads((tmp_path / "gen" / "1" / "manifest.json").read_text())
    ev = man["evaluation"]
    assert ev["data"] == "generated" and not ev["split"]["derived_from_data_range"]
    assert "single_split" in ev and "baseline" not in ev["single_split"] and "quality_bar" not in ev
    report = (tmp_path / "gen" / "1" / "REPORT.md").read_text()
    assert "Generated data" in report and "compared handbook-style" not in report
