"""Lifecycle policies: reviewed, versioned data in ``include/policies/NAME.yaml``.

A policy names its tiers (a URI prefix plus a storage class, on any backend), the rules that move
or delete objects, and retention bounds. ``${processed_uri}`` and ``${home}`` in tier URIs are
replaced with the settings' values, so the shipped default works on the embedded defaults::

    name: default
    version: 1
    default_tier: hot            # the tier of objects under no tier's prefix (e.g. sources in landing)
    hot_tier: hot                # where restores bring cold assets back
    tiers:
      hot:  {uri: "${processed_uri}", class: STANDARD}
      warm: {uri: "${home}/objects/warm", class: STANDARD_IA}
      cold: {uri: "${home}/objects/cold", class: GLACIER_IR}
    rules:
      - name: warm-after-30-days-idle
        when: {tier: hot, idle_days: 30}
        action: {move: warm}
      - name: expired-licence
        when: {tag_date_passed: license_expiry}
        action: {keep_source: true}
    retention:
      - {tag: legal, min_days: 3650}
      - {tier: cold, max_days: 3650}

Conditions (all must hold): ``kind`` (list), ``tier`` (list), ``status`` (list), ``age_days``
(days since the object was written), ``ingest_days`` (since the asset was registered),
``ready_days`` (since it became ready), ``idle_days`` (since last access, else since ready, else
since ingest), ``min_bytes``/``max_bytes``, ``tags`` (``{key: value or [values]}``),
``tag_date_passed`` (a tag holding an ISO date that is in the past). Actions: ``move: TIER``,
``delete: true``, ``keep_source: true`` (drop renditions and packages: they can be regenerated from
the source and the recorded profile version), ``restore: {days: N}`` (back to the hot tier for N
days). ``allow_early_deletion: true`` on a rule lets it move or delete before the class's minimum
storage duration (the plan states the charge); by default such lines wait.

Precedence (one action per object): a legal hold beats everything, then minimum retention (no
delete before it), then delete (a rule's or maximum retention), then the move to the cheapest class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vam.errors import PolicyError
from vam.settings import REPO_ROOT

POLICIES_DIR = REPO_ROOT / "include" / "policies"
KINDS = (
    "source",
    "rendition",
    "segment",
    "manifest",
    "captions",
    "chapters",
    "keyframe",
    "derived",
    "quarantine",
)
PACKAGE_KINDS = ("segment", "manifest")
REGENERABLE_KINDS = ("rendition", "segment", "manifest")
_TOP = {"name", "version", "description", "default_tier", "hot_tier", "tiers", "rules", "retention"}
_WHEN = {
    "kind", "tier", "status", "age_days", "ingest_days", "ready_days", "idle_days", "min_bytes",
    "max_bytes", "tags", "tag_date_passed",
}  # fmt: skip
_ACTIONS = {"move", "delete", "keep_source", "restore"}
_RULE = {"name", "when", "action", "allow_early_deletion", "description"}
_RETENTION = {"tag", "tier", "min_days", "max_days"}
_VAR = re.compile(r"\$\{(\w+)\}")


@dataclass(frozen=True)
class Tier:
    name: str
    uri: str  # a prefix ending in "/"
    storage_class: str | None

    @property
    def provider(self) -> str:
        return self.uri.partition("://")[0].lower()


@dataclass(frozen=True)
class Rule:
    name: str
    when: dict[str, Any]
    action: str  # move, delete, keep_source, restore
    target: str | None = None  # the tier of a move
    days: int | None = None  # of a restore
    allow_early_deletion: bool = False


@dataclass(frozen=True)
class Retention:
    tag: str | None
    tier: str | None
    min_days: float | None
    max_days: float | None


@dataclass(frozen=True)
class Policy:
    name: str
    version: int
    tiers: dict[str, Tier]
    rules: tuple[Rule, ...]
    retention: tuple[Retention, ...] = ()
    default_tier: str | None = None
    hot_tier: str | None = None
    description: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    def tier_of(self, uri: str) -> Tier | None:
        """The tier whose prefix holds ``uri`` (the longest match), else None."""
        best = None
        for tier in self.tiers.values():
            if uri.startswith(tier.uri) and (best is None or len(tier.uri) > len(best.uri)):
                best = tier
        return best


def _fail(where: str, message: str) -> PolicyError:
    return PolicyError(f"{where}: {message}")


def _prefix(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def _expand(text: str, variables: dict[str, str], where: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise _fail(where, f"unknown variable ${{{name}}}; known: {', '.join(sorted(variables))}")
        return variables[name].rstrip("/")

    out = _VAR.sub(sub, text)
    if "://" not in out:  # a local path: a file:// URI
        out = Path(out).expanduser().resolve().as_uri()
    return out


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _fail(where, f"expected a non-negative number, got {value!r}")
    return float(value)


def _as_list(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if allowed is not None:
        bad = [v for v in items if v is not None and v not in allowed]
        if bad:
            raise _fail(where, f"unknown value(s) {bad}; one of {', '.join(allowed)}")
    return items


def _rule(raw: Any, index: int, tiers: dict[str, Tier], source: str) -> Rule:
    where = f"{source}: rules[{index}]"
    if not isinstance(raw, dict):
        raise _fail(where, "expected a mapping with name, when and action")
    unknown = set(raw) - _RULE
    if unknown:
        raise _fail(where, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_RULE)}")
    name = str(raw.get("name") or f"rule-{index}")
    where = f"{source}: rules[{index}] ({name})"
    when = raw.get("when") or {}
    if not isinstance(when, dict):
        raise _fail(where + ".when", "expected a mapping of conditions")
    unknown = set(when) - _WHEN
    if unknown:
        raise _fail(where + ".when", f"unknown condition(s) {sorted(unknown)}; allowed: {sorted(_WHEN)}")
    for key in ("age_days", "ingest_days", "ready_days", "idle_days", "min_bytes", "max_bytes"):
        if key in when:
            _number(when[key], f"{where}.when.{key}")
    if "kind" in when:
        _as_list(when["kind"], f"{where}.when.kind", KINDS)
    if "tier" in when:
        _as_list(when["tier"], f"{where}.when.tier", tuple(tiers))
    if "tags" in when and not isinstance(when["tags"], dict):
        raise _fail(where + ".when.tags", "expected {key: value or [values]}")
    action = raw.get("action")
    if not isinstance(action, dict) or len(set(action) & _ACTIONS) != 1 or set(action) - _ACTIONS:
        raise _fail(where + ".action", f"expected exactly one of {sorted(_ACTIONS)}, got {action!r}")
    (verb,) = set(action) & _ACTIONS
    target = days = None
    if verb == "move":
        target = str(action["move"])
        if target not in tiers:
            raise _fail(where + ".action.move", f"unknown tier {target!r}; tiers: {', '.join(tiers)}")
    elif verb == "restore":
        spec = action["restore"] or {}
        days = int(
            _number(spec.get("days", 7) if isinstance(spec, dict) else spec, where + ".action.restore")
        )
        if days < 1:
            raise _fail(where + ".action.restore", "days must be at least 1")
    elif action[verb] is not True:
        raise _fail(where + f".action.{verb}", "expected true")
    return Rule(name, dict(when), verb, target, days, bool(raw.get("allow_early_deletion", False)))


def policy_from_dict(data: Any, variables: dict[str, str] | None = None, source: str = "policy") -> Policy:
    """Validate a policy given as data; ``variables`` fill ``${name}`` in tier URIs."""
    variables = variables or {}
    if not isinstance(data, dict):
        raise _fail(source, "expected a mapping")
    unknown = set(data) - _TOP
    if unknown:
        raise _fail(source, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP)}")
    for key in ("name", "version", "tiers"):
        if key not in data:
            raise _fail(source, f"missing key {key!r}")
    if not isinstance(data["version"], int) or isinstance(data["version"], bool):
        raise _fail(source + ".version", f"expected a whole number, got {data['version']!r}")
    if not isinstance(data["tiers"], dict) or not data["tiers"]:
        raise _fail(source + ".tiers", "expected a non-empty mapping of name -> {uri, class}")
    tiers: dict[str, Tier] = {}
    for name, spec in data["tiers"].items():
        where = f"{source}: tiers.{name}"
        if not isinstance(spec, dict) or "uri" not in spec or set(spec) - {"uri", "class"}:
            raise _fail(where, "expected {uri: PREFIX, class: STORAGE_CLASS}")
        cls = spec.get("class")
        tiers[str(name)] = Tier(
            str(name), _prefix(_expand(str(spec["uri"]), variables, where)), cls and str(cls)
        )
    uris = sorted(t.uri for t in tiers.values())
    for a, b in zip(uris, uris[1:], strict=False):
        if b.startswith(a):
            raise _fail(source + ".tiers", f"tier prefixes must not nest: {a} holds {b}")
    for key in ("default_tier", "hot_tier"):
        if data.get(key) is not None and data[key] not in tiers:
            raise _fail(f"{source}.{key}", f"unknown tier {data[key]!r}; tiers: {', '.join(tiers)}")
    rules = tuple(_rule(r, i, tiers, source) for i, r in enumerate(data.get("rules") or []))
    retention = []
    for i, raw in enumerate(data.get("retention") or []):
        where = f"{source}: retention[{i}]"
        if not isinstance(raw, dict) or set(raw) - _RETENTION or not ({"tag", "tier"} & set(raw)):
            raise _fail(where, "expected {tag: KEY or tier: NAME, min_days: N, max_days: N}")
        if raw.get("tier") is not None and raw["tier"] not in tiers:
            raise _fail(where + ".tier", f"unknown tier {raw['tier']!r}")
        lo = _number(raw["min_days"], where + ".min_days") if "min_days" in raw else None
        hi = _number(raw["max_days"], where + ".max_days") if "max_days" in raw else None
        if lo is not None and hi is not None and hi < lo:
            raise _fail(where, "max_days is below min_days")
        retention.append(Retention(raw.get("tag"), raw.get("tier"), lo, hi))
    return Policy(
        name=str(data["name"]),
        version=int(data["version"]),
        tiers=tiers,
        rules=rules,
        retention=tuple(retention),
        default_tier=data.get("default_tier"),
        hot_tier=data.get("hot_tier") or data.get("default_tier"),
        description=str(data.get("description") or ""),
        source=source,
    )


def policy_path(name_or_file: str | None, policies_dir: Path = POLICIES_DIR) -> Path:
    """The file of a policy given by name (``default``) or path; default: ``default``."""
    candidate = Path(name_or_file or "default")
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise PolicyError(f"policy file {candidate} does not exist")
        return candidate
    path = policies_dir / f"{candidate}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in policies_dir.glob("*.yaml") if p.stem != "prices")
        raise PolicyError(f"unknown policy {name_or_file!r}; available: {', '.join(names)} (or a YAML file)")
    return path


def load_policy(
    name_or_file: str | None = None,
    variables: dict[str, str] | None = None,
    policies_dir: Path = POLICIES_DIR,
) -> Policy:
    """Load and validate a policy by name or file."""
    path = policy_path(name_or_file, policies_dir)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {path} is not valid YAML: {exc}") from exc
    return policy_from_dict(data, variables, source=str(path))
