"""Feature-set definitions (`features/<name>_v<version>.json`) as data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FEATURES_DIR = REPO_ROOT / "features"


@dataclass(frozen=True)
class FeatureSet:
    name: str
    version: int
    features: list[dict[str, Any]]
    path: Path
    # entity name -> {"key": "customer_id" | "terminal_id"}
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.name}_v{self.version}"

    @property
    def names(self) -> list[str]:
        return [f["name"] for f in self.features]


def resolve(spec: str, features_dir: Path | None = None) -> Path:
    """Accepts `v2`, `2`, `transaction_v2`, `transaction_v2.json` or a path to a JSON file."""
    p = Path(spec)
    if p.suffix == ".json" and p.exists():
        return p
    d = Path(features_dir) if features_dir else DEFAULT_FEATURES_DIR
    s = spec[:-5] if spec.endswith(".json") else spec
    if s.isdigit():
        s = f"v{s}"
    if s.startswith("v") and s[1:].isdigit():
        s = f"transaction_{s}"
    candidate = d / f"{s}.json"
    if not candidate.exists():
        raise FileNotFoundError(f"feature set {spec!r}: {candidate} not found")
    return candidate


def load(spec: str, features_dir: Path | None = None) -> FeatureSet:
    path = resolve(spec, features_dir)
    doc = json.loads(path.read_text())
    names = [f["name"] for f in doc["features"]]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate feature names")
    return FeatureSet(
        name=doc["name"],
        version=int(doc["version"]),
        features=doc["features"],
        path=path,
        entities=doc.get("entities", {}),
    )
