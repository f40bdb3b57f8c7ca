"""Manual tags: human-curated metadata (products, campaign, licence, geographic rights, free tags).

The keys and the form of their values come from a taxonomy YAML file (``include/taxonomy.yaml``,
setting ``taxonomy_file``); see the comments at the top of that file for the types. Tags are set
at ingest from a sidecar file next to the video (``NAME.json``, ``NAME.yaml`` or ``NAME.yml``
beside ``NAME.mp4``) or from the DAG run conf, and later with ``vam tag ASSET key=value ...``.
Every change is validated and merged into the asset's current tags by :func:`apply_changes`, a pure
function: this module never opens the catalog. The steps layer runs it under the catalog's row lock
(``Catalog.update_tags``), which writes ``assets.tags``, the audit event with the before/after diff
and its source (one of :data:`SOURCES`, see :func:`check_source`) and rebuilds the search document.

A *changes* mapping says what to do to each key::

    {"campaign": "spring-24"}       set (a list key also takes a list, or "a,b")
    {"campaign": None}              delete the key
    {"tags+": ["a", "b"]}           add these values to a list key
    {"product_ids-": ["SKU-1"]}     remove these values from a list key (an emptied list is deleted)

On the command line (:func:`parse_assignments`) the same operations are written
``key=value``, ``key=`` (delete), ``key+=v1,v2`` and ``key-=v1,v2``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vam import storage
from vam.enrich.countries import COMMON_MISTAKES, ISO_3166_ALPHA2
from vam.errors import PermanentFailure, StorageError, VamError

log = logging.getLogger(__name__)

TYPES = ("string", "list", "date", "countries", "enum", "boolean")
LIST_TYPES = frozenset({"list", "countries"})
SOURCES = ("sidecar", "run_conf", "cli", "api")
SIDECAR_SUFFIXES = (".json", ".yaml", ".yml")

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ASSIGNMENT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\+=|-=|=)(.*)$", re.DOTALL)
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


class InvalidTags(PermanentFailure):
    """Tags that the taxonomy does not accept (retrying cannot help: the tags must be fixed).
    ``problems`` lists each thing that is wrong."""

    def __init__(self, problems: list[str] | str, *, where: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(prefix + "; ".join(self.problems))


class TaxonomyError(PermanentFailure):
    """A taxonomy file that is malformed."""


# -- the taxonomy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySpec:
    """What one tag key accepts."""

    name: str
    type: str
    description: str = ""
    pattern: re.Pattern[str] | None = None
    case: str | None = None  # "lower" | "upper"
    max_length: int | None = None
    max_items: int | None = None
    values: tuple[str, ...] = ()
    example: str | None = None

    @property
    def is_list(self) -> bool:
        return self.type in LIST_TYPES

    def normalise(self, value: Any) -> Any:
        """The stored form of ``value`` for this key; InvalidTags when it is not acceptable."""
        if self.type == "date":
            return self._date(value)
        if self.type == "boolean":
            return self._boolean(value)
        if self.type == "enum":
            return self._enum(value)
        if self.is_list:
            items = self.items(value)
            if not items:
                raise InvalidTags(f"{self.name}: empty list; to remove the key give null (CLI: {self.name}=)")
            return items
        return self._string(value)

    def items(self, value: Any) -> list[str]:
        """The normalised, de-duplicated values of a list key (``value``: a list or "a,b")."""
        if isinstance(value, str):
            raw: list[Any] = [v for v in re.split(r"[,\s]+" if self.type == "countries" else ",", value)]
            raw = [v.strip() for v in raw if v.strip()]
        elif isinstance(value, list | tuple):
            raw = list(value)
        else:
            raise InvalidTags(f"{self.name}: expected a list of values, got {_describe(value)}")
        problems: list[str] = []
        items: list[str] = []
        for item in raw:
            try:
                norm = self._country(item) if self.type == "countries" else self._string(item)
            except InvalidTags as exc:
                problems.extend(exc.problems)
                continue
            if norm not in items:
                items.append(norm)
        if problems:
            raise InvalidTags(problems)
        if self.max_items is not None and len(items) > self.max_items:
            raise InvalidTags(f"{self.name}: {len(items)} values, at most {self.max_items} allowed")
        return sorted(items) if self.type == "countries" else items

    def _string(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidTags(f"{self.name}: expected text, got {_describe(value)}")
        text = str(value).strip()
        if not text:
            raise InvalidTags(f"{self.name}: empty value; to remove the key give null (CLI: {self.name}=)")
        if self.case == "lower":
            text = text.lower()
        elif self.case == "upper":
            text = text.upper()
        if self.max_length is not None and len(text) > self.max_length:
            raise InvalidTags(
                f"{self.name}: {text[:40]!r}... is {len(text)} characters, at most {self.max_length}"
            )
        if self.pattern is not None and not self.pattern.fullmatch(text):
            hint = f", e.g. {self.example}" if self.example else ""
            raise InvalidTags(
                f"{self.name}: {text!r} does not match the pattern {self.pattern.pattern}{hint}"
            )
        return text

    def _country(self, value: Any) -> str:
        if value is False:
            raise InvalidTags(
                f"{self.name}: got the boolean false; YAML reads an unquoted NO (Norway) as false,"
                " quote it: 'NO'"
            )
        if not isinstance(value, str):
            raise InvalidTags(f"{self.name}: expected a country code, got {_describe(value)}")
        code = value.strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", code):
            raise InvalidTags(
                f"{self.name}: {value!r} is not an ISO 3166-1 alpha-2 country code"
                " (two letters, e.g. US, FR, DE)"
            )
        if code not in ISO_3166_ALPHA2:
            hint = f"; did you mean {COMMON_MISTAKES[code]}?" if code in COMMON_MISTAKES else ""
            raise InvalidTags(
                f"{self.name}: {code!r} is not an assigned ISO 3166-1 alpha-2 country code{hint}"
            )
        return code

    def _date(self, value: Any) -> str:
        if isinstance(value, dt.datetime):
            raise InvalidTags(
                f"{self.name}: {value.isoformat()} has a time of day; give a date as YYYY-MM-DD"
            )
        if isinstance(value, dt.date):
            return value.isoformat()
        if not isinstance(value, str) or not _DATE_RE.match(value.strip()):
            raise InvalidTags(f"{self.name}: {value!r} is not a date written YYYY-MM-DD (e.g. 2026-12-31)")
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError as exc:
            raise InvalidTags(f"{self.name}: {value.strip()!r} is not a valid date ({exc})") from None

    def _enum(self, value: Any) -> str:
        if isinstance(value, str):
            for allowed in self.values:
                if value.strip().lower() == allowed.lower():
                    return allowed
        raise InvalidTags(f"{self.name}: {value!r} is not one of {', '.join(self.values)}")

    def _boolean(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise InvalidTags(f"{self.name}: {value!r} is not true or false")


@dataclass(frozen=True)
class Taxonomy:
    """The tag keys an asset may carry. Build with :func:`load_taxonomy`."""

    keys: dict[str, KeySpec]
    strict: bool = True
    disjoint: tuple[tuple[str, ...], ...] = ()
    source: str = "<taxonomy>"
    version: int | None = None
    _generic: dict[str, KeySpec] = field(default_factory=dict, repr=False, compare=False)

    def spec(self, key: str, value: Any = None) -> KeySpec:
        """The spec of ``key``; for an unknown key of a non-strict taxonomy, a generic one."""
        if key in self.keys:
            return self.keys[key]
        if self.strict:
            raise InvalidTags(
                f"unknown tag key {key!r} (the taxonomy {self.source} is strict); "
                f"known keys: {', '.join(sorted(self.keys))}"
            )
        if not _KEY_RE.match(key):
            raise InvalidTags(
                f"tag key {key!r} must be lower case letters, digits and _, starting with a letter"
            )
        return KeySpec(key, "list" if isinstance(value, list | tuple) else "string")

    def validate(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise a changes mapping (see the module docstring); every problem found is
        reported in one InvalidTags. Returns the normalised changes."""
        if not isinstance(changes, dict):
            raise InvalidTags(f"tags must be a mapping of key to value, got {_describe(changes)}")
        out: dict[str, Any] = {}
        problems: list[str] = []
        for raw_key, value in changes.items():
            if not isinstance(raw_key, str):
                problems.append(f"tag key {raw_key!r} is not text")
                continue
            key, op = _split_op(raw_key)
            try:
                spec = self.spec(key, value)
                if op:
                    if not spec.is_list:
                        raise InvalidTags(
                            f"{key} is a {spec.type}, not a list: set it with {key}=VALUE "
                            f"('{key}{op}=' only works on list keys)"
                        )
                    items = spec.items(value)
                    if not items:
                        raise InvalidTags(f"{key}{op}: no values given")
                    out[key + op] = items
                else:
                    out[key] = None if value is None else spec.normalise(value)
            except InvalidTags as exc:
                problems.extend(exc.problems)
        if problems:
            raise InvalidTags(problems)
        return out

    def filter_values(self, tags: dict[str, Any]) -> dict[str, Any]:
        """Tag values for a search filter (vam.catalog.search.SearchFilters.tags) in their stored
        form: ``{"allowed_countries": "fr"}`` -> ``{"allowed_countries": ["FR"]}``, ``"a,b"`` on a
        list key -> ``["a", "b"]`` (the asset must have all of them)."""
        out: dict[str, Any] = {}
        problems: list[str] = []
        for key, value in tags.items():
            try:
                if not isinstance(key, str) or key.endswith(("+", "-")) or value is None:
                    raise InvalidTags(f"search by tag: give key=value, got {key!r}={value!r}")
                out[key] = self.spec(key, value).normalise(value)
            except InvalidTags as exc:
                problems.extend(exc.problems)
        if problems:
            raise InvalidTags(problems)
        return out

    def merge(self, current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """Apply validated ``changes`` to a copy of ``current`` tags, in order."""
        tags = dict(current)
        for raw_key, value in changes.items():
            key, op = _split_op(raw_key)
            if op == "+":
                existing = _as_list(tags.get(key))
                merged = existing + [v for v in value if v not in existing]
                tags[key] = sorted(merged) if self.spec(key, merged).type == "countries" else merged
            elif op == "-":
                remaining = [v for v in _as_list(tags.get(key)) if v not in value]
                if remaining:
                    tags[key] = remaining
                else:
                    tags.pop(key, None)
            elif value is None:
                tags.pop(key, None)
            else:
                tags[key] = value
        return tags

    def check(self, tags: dict[str, Any]) -> dict[str, Any]:
        """Check the rules that span keys (disjoint groups) on a whole tag set; returns it."""
        problems = []
        for group in self.disjoint:
            for i, first in enumerate(group):
                for second in group[i + 1 :]:
                    shared = sorted(set(_as_list(tags.get(first))) & set(_as_list(tags.get(second))))
                    if shared:
                        problems.append(
                            f"{first} and {second} may not share values, both have {', '.join(shared)}"
                        )
        if problems:
            raise InvalidTags(problems)
        return tags


def _split_op(raw_key: str) -> tuple[str, str]:
    if raw_key.endswith(("+", "-")):
        return raw_key[:-1], raw_key[-1]
    return raw_key, ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:120]


def load_taxonomy(path: str | Path) -> Taxonomy:
    """The taxonomy in the YAML file ``path`` (the caller's ``taxonomy_file`` setting, by default
    include/taxonomy.yaml)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TaxonomyError(f"no taxonomy file at {path}; set VAM_TAXONOMY_FILE or taxonomy_file") from None
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{path} is not valid YAML: {exc}") from None
    return taxonomy_from_dict(data, source=str(path))


def taxonomy_from_dict(data: Any, *, source: str = "<taxonomy>") -> Taxonomy:
    """Build a :class:`Taxonomy` from the parsed YAML mapping (see include/taxonomy.yaml)."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict) or not data["keys"]:
        raise TaxonomyError(f"{source} must be a mapping with a non-empty 'keys' mapping")
    unknown_top = sorted(set(data) - {"version", "strict", "keys", "disjoint"})
    if unknown_top:
        raise TaxonomyError(
            f"{source}: unknown top-level entries {unknown_top}; known: version, strict, keys, disjoint"
        )
    keys: dict[str, KeySpec] = {}
    for name, entry in data["keys"].items():
        keys[name] = _key_spec(name, entry, source)
    disjoint = []
    for group in data.get("disjoint") or []:
        if not isinstance(group, list) or len(group) < 2:
            raise TaxonomyError(f"{source}: each disjoint entry must list two or more keys, got {group!r}")
        for key in group:
            if key not in keys or not keys[key].is_list:
                raise TaxonomyError(f"{source}: disjoint key {key!r} is not a list key of this taxonomy")
        disjoint.append(tuple(group))
    strict = data.get("strict", True)
    if not isinstance(strict, bool):
        raise TaxonomyError(f"{source}: strict must be true or false, got {strict!r}")
    return Taxonomy(
        keys=keys, strict=strict, disjoint=tuple(disjoint), source=source, version=data.get("version")
    )


def _key_spec(name: Any, entry: Any, source: str) -> KeySpec:
    where = f"{source}: key {name!r}"
    if not isinstance(name, str) or not _KEY_RE.match(name):
        raise TaxonomyError(
            f"{where}: key names are lower case letters, digits and _, starting with a letter"
        )
    if not isinstance(entry, dict):
        raise TaxonomyError(f"{where} must be a mapping with at least a type")
    known = {"type", "description", "pattern", "case", "max_length", "max_items", "values", "example"}
    extra = sorted(set(entry) - known)
    if extra:
        raise TaxonomyError(f"{where}: unknown options {extra}; known: {', '.join(sorted(known))}")
    kind = entry.get("type")
    if kind not in TYPES:
        raise TaxonomyError(f"{where}: type {kind!r} is not one of {', '.join(TYPES)}")
    pattern = None
    if entry.get("pattern") is not None:
        try:
            pattern = re.compile(str(entry["pattern"]))
        except re.error as exc:
            raise TaxonomyError(
                f"{where}: pattern {entry['pattern']!r} is not a valid regex: {exc}"
            ) from None
    case = entry.get("case")
    if case not in (None, "lower", "upper"):
        raise TaxonomyError(f"{where}: case must be lower or upper, got {case!r}")
    values = tuple(str(v) for v in entry.get("values") or ())
    if kind == "enum" and not values:
        raise TaxonomyError(f"{where}: an enum needs a non-empty 'values' list")
    for option in ("max_length", "max_items"):
        limit = entry.get(option)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise TaxonomyError(f"{where}: {option} must be a positive integer, got {limit!r}")
    return KeySpec(
        name=name,
        type=kind,
        description=str(entry.get("description") or ""),
        pattern=pattern,
        case=case,
        max_length=entry.get("max_length"),
        max_items=entry.get("max_items"),
        values=values,
        example=None if entry.get("example") is None else str(entry["example"]),
    )


# -- command line ---------------------------------------------------------------------------------


def parse_assignments(args: Iterable[str]) -> dict[str, Any]:
    """Turn ``vam tag`` arguments into a changes mapping (values are validated later).

    ``key=value`` sets (a list key takes ``a,b``), ``key=`` deletes the key, ``key+=v1,v2`` adds
    values to a list key, ``key-=v1,v2`` removes values from it. Several ``+=`` (or ``-=``) of one
    key are combined; setting a key and also adding to it in one command is refused.
    """
    changes: dict[str, Any] = {}
    for arg in args:
        match = _ASSIGNMENT_RE.match(arg)
        if not match:
            raise InvalidTags(
                f"cannot read {arg!r}: write key=value, key= (delete), key+=v1,v2 (add)"
                " or key-=v1,v2 (remove)"
            )
        key, op, value = match.group(1), match.group(2), match.group(3).strip()
        if op == "=":
            if any(k in changes for k in (key, key + "+", key + "-")):
                raise InvalidTags(f"{key} is given more than once; set it once, or only add/remove values")
            changes[key] = value or None
            continue
        suffix = op[0]
        items = [v.strip() for v in value.split(",") if v.strip()]
        if not items:
            raise InvalidTags(f"{arg!r}: no values after {op}; e.g. {key}{op}a,b")
        if key in changes:
            raise InvalidTags(f"{key} is set and changed in one command; either set it or add/remove values")
        changes.setdefault(key + suffix, []).extend(items)
    return changes


# -- sidecar files ----------------------------------------------------------------------------------


def sidecar_uris(source_path_or_uri: str | Path) -> list[str]:
    """Where the sidecars of a video may be: ``NAME.json``, ``NAME.yaml``, ``NAME.yml`` beside it."""
    uri = storage.to_uri(source_path_or_uri)
    head, _, name = uri.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return [f"{head}/{stem}{suffix}" for suffix in SIDECAR_SUFFIXES]


def load_sidecar(source_path_or_uri: str | Path, taxonomy: Taxonomy | None = None) -> dict[str, Any] | None:
    """The tags in the sidecar next to a video, or None when there is none.

    The sidecar is a JSON or YAML mapping of tag key to value (the changes form above). A sidecar
    that cannot be parsed, is not a mapping, or (when ``taxonomy`` is given) does not validate,
    raises InvalidTags naming the file. Two sidecars for one video are refused as ambiguous.
    """
    found = []
    for uri in sidecar_uris(source_path_or_uri):
        try:
            if storage.store_for(uri).exists(uri):
                found.append(uri)
        except StorageError as exc:
            raise InvalidTags(f"cannot look for a sidecar at {uri}: {exc}") from exc
    if not found:
        return None
    if len(found) > 1:
        raise InvalidTags(f"several sidecars for one video: {', '.join(found)}; keep one")
    uri = found[0]
    try:
        text = storage.store_for(uri).read_bytes(uri).decode("utf-8")
        data = json.loads(text) if uri.endswith(".json") else yaml.safe_load(text)
    except UnicodeDecodeError:
        raise InvalidTags("not UTF-8 text", where=f"sidecar {uri}") from None
    except json.JSONDecodeError as exc:
        raise InvalidTags(f"not valid JSON: {exc}", where=f"sidecar {uri}") from None
    except yaml.YAMLError as exc:
        raise InvalidTags(f"not valid YAML: {' '.join(str(exc).split())}", where=f"sidecar {uri}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidTags(
            f"expected a mapping of tag key to value, got {_describe(data)}", where=f"sidecar {uri}"
        )
    if taxonomy is not None:
        apply_changes(taxonomy, {}, data, where=f"sidecar {uri}")
    log.info("read tags from sidecar %s: %s", uri, ", ".join(map(str, data)) or "(empty)")
    return data


# -- applying -------------------------------------------------------------------------------------


def apply_changes(
    taxonomy: Taxonomy, current: dict[str, Any], changes: dict[str, Any], *, where: str | None = None
) -> dict[str, Any]:
    """The tags after ``changes`` (the changes form of the module docstring) are applied to
    ``current``; pure: ``current`` is not modified and nothing is written.

    The changes are validated and normalised, merged in order, and the whole result is checked
    against the rules that span keys (disjoint groups). Anything wrong raises one InvalidTags that
    names each bad key, prefixed with ``where`` (e.g. ``"sidecar s3://b/clip.yaml"`` or
    ``"asset 1234"``) when given. Meant to run inside ``Catalog.update_tags`` as its change function.
    """
    try:
        return taxonomy.check(taxonomy.merge(current, taxonomy.validate(changes)))
    except InvalidTags as exc:
        if where is None:
            raise
        raise InvalidTags(exc.problems, where=where) from None


def check_source(source: str) -> str:
    """``source`` when it is one of :data:`SOURCES` (sidecar, run_conf, cli, api), the values an audited
    tag change may record; else VamError."""
    if source not in SOURCES:
        raise VamError(f"unknown tag source {source!r}; one of {', '.join(SOURCES)}")
    return source
