"""Storage prices per provider and storage class (``include/policies/prices.yaml``).

The planner puts money into every plan line with them and the storage report sums them. A provider is
the URI scheme of an object (``s3``, ``gs``, ``az``, ``file``, ``ftp``); a storage class of ``None``
means the provider's default class. Sizes are billed per GB (10^9 bytes) and month; a class's
``min_days`` is its minimum storage duration (an object deleted or moved away earlier is billed as if it
had stayed that long: the early-deletion charge); ``transition_per_1000`` prices the requests that put
objects into the class.

    >>> prices = load_prices()
    >>> round(prices.monthly_cost("s3", "STANDARD_IA", 10**9), 4)
    0.0125
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vam.errors import PolicyError
from vam.settings import REPO_ROOT

DEFAULT_PRICES = REPO_ROOT / "include" / "policies" / "prices.yaml"
GB = 10**9
DAYS_PER_MONTH = 30.0
_CLASS_KEYS = {"per_gb_month", "min_days", "transition_per_1000"}


@dataclass(frozen=True)
class ClassPrice:
    """The price of one storage class."""

    per_gb_month: float
    min_days: int
    transition_per_1000: float


@dataclass(frozen=True)
class Prices:
    """A price table: ``classes[provider][CLASS]`` and each provider's default class."""

    classes: dict[str, dict[str, ClassPrice]]
    defaults: dict[str, str]
    any_class: frozenset[str] = frozenset()  # providers whose class is only a label (file, ftp)
    currency: str = "USD"
    source: str = ""

    def price(self, provider: str, storage_class: str | None) -> ClassPrice:
        """The price entry of ``provider``/``storage_class`` (``None``: the provider's default)."""
        provider = {"ftps": "ftp"}.get(provider, provider)
        table = self.classes.get(provider)
        if table is None:
            raise PolicyError(
                f"no prices for provider {provider!r} in {self.source or 'the price table'}; "
                f"known providers: {', '.join(sorted(self.classes))}. Add it to prices.yaml."
            )
        # None (or pandas' NaN for a missing value): the provider's default class
        name = (
            storage_class if isinstance(storage_class, str) and storage_class else self.defaults[provider]
        ).upper()
        entry = table.get(name)
        if entry is None and provider in self.any_class:
            entry = table[self.defaults[provider]]
        if entry is None:
            raise PolicyError(
                f"no price for storage class {name!r} of {provider!r} in "
                f"{self.source or 'the price table'}; known classes: {', '.join(sorted(table))}"
            )
        return entry

    def monthly_cost(self, provider: str, storage_class: str | None, nbytes: int) -> float:
        """USD per month to keep ``nbytes`` in the class."""
        return self.price(provider, storage_class).per_gb_month * nbytes / GB

    def min_days(self, provider: str, storage_class: str | None) -> int:
        """The class's minimum storage duration in days (0: none)."""
        return self.price(provider, storage_class).min_days

    def early_deletion_charge(
        self, provider: str, storage_class: str | None, nbytes: int, age_days: float
    ) -> float:
        """What deleting (or moving away) an object ``age_days`` old costs extra: the remaining days
        of the class's minimum duration, prorated. 0 once the minimum is served."""
        entry = self.price(provider, storage_class)
        remaining = max(0.0, entry.min_days - max(0.0, age_days))
        return entry.per_gb_month * nbytes / GB * remaining / DAYS_PER_MONTH

    def transition_cost(self, provider: str, storage_class: str | None, n_requests: int) -> float:
        """The request cost of putting ``n_requests`` objects into the class."""
        return self.price(provider, storage_class).transition_per_1000 * n_requests / 1000.0

    def default_class(self, provider: str) -> str:
        """The provider's default storage class."""
        self.price(provider, None)
        return self.defaults[{"ftps": "ftp"}.get(provider, provider)]


def _number(value: Any, where: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PolicyError(f"{where}: expected a non-negative number, got {value!r}")
    if integer and int(value) != value:
        raise PolicyError(f"{where}: expected a whole number of days, got {value!r}")
    return value


def prices_from_dict(data: Any, source: str = "") -> Prices:
    """Validate a price table given as data (the YAML layout)."""
    if not isinstance(data, dict) or not isinstance(data.get("providers"), dict):
        raise PolicyError(f"{source or 'price table'}: expected a mapping with a 'providers' key")
    classes: dict[str, dict[str, ClassPrice]] = {}
    defaults: dict[str, str] = {}
    any_class: set[str] = set()
    for provider, body in data["providers"].items():
        where = f"{source}: providers.{provider}"
        if not isinstance(body, dict) or not isinstance(body.get("classes"), dict) or not body["classes"]:
            raise PolicyError(f"{where}: expected 'default' and a non-empty 'classes' mapping")
        table: dict[str, ClassPrice] = {}
        for name, entry in body["classes"].items():
            cwhere = f"{where}.classes.{name}"
            if not isinstance(entry, dict):
                raise PolicyError(f"{cwhere}: expected a mapping of {sorted(_CLASS_KEYS)}")
            unknown = set(entry) - _CLASS_KEYS
            if unknown:
                raise PolicyError(
                    f"{cwhere}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_CLASS_KEYS)}"
                )
            table[str(name).upper()] = ClassPrice(
                per_gb_month=float(_number(entry.get("per_gb_month", 0.0), f"{cwhere}.per_gb_month")),
                min_days=int(_number(entry.get("min_days", 0), f"{cwhere}.min_days", integer=True)),
                transition_per_1000=float(
                    _number(entry.get("transition_per_1000", 0.0), f"{cwhere}.transition_per_1000")
                ),
            )
        default = str(body.get("default") or next(iter(table))).upper()
        if default not in table:
            raise PolicyError(f"{where}.default: {default!r} is not one of its classes {sorted(table)}")
        classes[str(provider)] = table
        if body.get("any_class"):
            any_class.add(str(provider))
        defaults[str(provider)] = default
    return Prices(
        classes=classes,
        defaults=defaults,
        any_class=frozenset(any_class),
        currency=str(data.get("currency", "USD")),
        source=source,
    )


def load_prices(path: Path | None = None) -> Prices:
    """Load and validate the price table (default: ``include/policies/prices.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_PRICES
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise PolicyError(f"price table {path} does not exist; pass an existing prices.yaml") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"price table {path} is not valid YAML: {exc}") from exc
    return prices_from_dict(data, source=str(path))
