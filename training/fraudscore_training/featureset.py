"""Feature-set definitions (`features/<name>_v<version>.json`) as data."""

from __future__ import annotations

import json
from dataclasses import dataclass
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
    # Entity name -> the request field it is keyed by (customer_id, terminal_id, device_id, ip, ip_prefix).
    entities: dict[str, str] | None = None

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
    entities = {name: e["key"] for name, e in doc.get("entities", {}).items()}
    return FeatureSet(
        name=doc["name"], version=int(doc["version"]), features=doc["features"], path=path, entities=entities
    )


def ip_prefix(ip: str) -> str | None:
    """The network of an address, as the engine names it (src/domain/features/keys.ts): an IPv4 /24
    (`192.0.2.0/24`), an IPv6 /48 as its first three groups in lowercase hex (`2001:db8:0::/48`)."""
    import ipaddress

    try:
        a = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return None
    if a.version == 4:
        return str(ipaddress.ip_network(f"{a}/24", strict=False))
    return ":".join(format(int(h, 16), "x") for h in a.exploded.split(":")[:3]) + "::/48"
