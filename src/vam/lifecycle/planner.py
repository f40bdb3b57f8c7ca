"""The lifecycle planner: every stored object and its asset's state in, one action per object out.

:func:`plan` takes a pandas DataFrame of objects (the columns of :data:`OBJECT_COLUMNS`, one row per
catalog object) and a :class:`~vam.lifecycle.policy.Policy`, and returns the plan: a DataFrame with
one row per object the policy would touch (:data:`PLAN_COLUMNS`), with the money in it (monthly
cost before and after, transition requests, early-deletion charge). Rows whose ``action`` is ``move``
or ``delete`` are what a run executes; ``hold`` (legal hold) and ``defer`` (minimum storage duration
or minimum retention not served) rows say why an object a rule matched stays where it is.

Precedence: legal hold > minimum retention > delete > restore > the move to the cheapest class.
An asset's package (segments and manifests) moves as a unit: its rows all take the decision made for
its first manifest.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from vam.lifecycle.policy import PACKAGE_KINDS, REGENERABLE_KINDS, Policy, Rule, Tier
from vam.lifecycle.prices import Prices

if TYPE_CHECKING:
    import pandas as pd

OBJECT_COLUMNS = (
    "uri", "asset_id", "kind", "size_bytes", "sha256", "storage_class", "written_at", "created_at",
    "ready_at", "last_accessed_at", "status", "tags", "legal_hold", "restore_state", "restore_expires_at",
    "restored_from",
)  # fmt: skip
PLAN_COLUMNS = (
    "asset_id", "kind", "uri", "tier", "storage_class", "action", "dst_tier", "dst_class", "dst_uri",
    "bytes", "monthly_cost_before", "monthly_cost_after", "transition_cost", "early_deletion_charge",
    "rule", "note", "sha256", "restore_days",
)  # fmt: skip
EXECUTED = ("move", "delete")
DAY = 86400.0
GB = 10**9


def _days_since(series: pd.Series, now: pd.Timestamp) -> pd.Series:
    import pandas as pd

    stamps = pd.to_datetime(series, utc=True)
    return (now - stamps).dt.total_seconds() / DAY


def _tag_matches(tags: Any, wanted: dict[str, Any]) -> bool:
    tags = tags or {}
    for key, value in wanted.items():
        have = tags.get(key)
        options = value if isinstance(value, list) else [value]
        have_list = have if isinstance(have, list) else [have]
        if value is True:
            if have is None:
                return False
        elif not any(h in options for h in have_list):
            return False
    return True


def _date_passed(tags: Any, key: str, now: datetime) -> bool:
    import pandas as pd

    value = (tags or {}).get(key)
    if not value:
        return False
    try:
        when = pd.Timestamp(str(value))
    except (ValueError, TypeError):
        return False
    if when.tzinfo is None:
        when = when.tz_localize("UTC")
    return bool(when < now)


def _mask(df: pd.DataFrame, rule: Rule, now: pd.Timestamp) -> pd.Series:
    import pandas as pd

    when = rule.when
    m = pd.Series(True, index=df.index)
    for key, column in (("kind", "kind"), ("tier", "tier"), ("status", "status")):
        if key in when:
            values = when[key] if isinstance(when[key], list) else [when[key]]
            m &= df[column].isin(values)
    for key, column in (
        ("age_days", "age_days"),
        ("ingest_days", "ingest_days"),
        ("ready_days", "ready_days"),
        ("idle_days", "idle_days"),
    ):
        if key in when:
            m &= df[column].fillna(-1) >= float(when[key])
    if "min_bytes" in when:
        m &= df["size_bytes"] >= when["min_bytes"]
    if "max_bytes" in when:
        m &= df["size_bytes"] <= when["max_bytes"]
    if "tags" in when:
        m &= df["tags"].map(lambda t: _tag_matches(t, when["tags"]))
    if "tag_date_passed" in when:
        m &= df["tags"].map(lambda t: _date_passed(t, when["tag_date_passed"], now))
    return m


def _relative_key(row: Any, tier: Tier | None) -> str:
    if tier is not None and row.uri.startswith(tier.uri):
        return row.uri[len(tier.uri) :]
    name = row.uri.rstrip("/").rsplit("/", 1)[-1]
    return f"{row.asset_id}/{row.kind}/{name}"


def _provider(uri: str) -> str:
    return uri.partition("://")[0].lower()


def empty_plan() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=object) for c in PLAN_COLUMNS})


def plan(objects: pd.DataFrame, policy: Policy, prices: Prices, now: datetime) -> pd.DataFrame:
    """The plan for ``objects`` under ``policy`` at ``now`` (timezone-aware)."""
    import pandas as pd

    if objects.empty:
        return empty_plan()
    now_ts = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC")
    df = objects.reset_index(drop=True).copy()
    df["size_bytes"] = df["size_bytes"].fillna(0).astype("int64")
    tiers = [policy.tier_of(u) for u in df["uri"]]
    default = policy.tiers.get(policy.default_tier) if policy.default_tier else None
    df["tier_obj"] = [t or default for t in tiers]
    df["tier"] = [t.name if t else None for t in df["tier_obj"]]
    # an object with no recorded class has its tier's class when it lies in that tier; one outside
    # every tier (counted in the default tier) has its provider's default class
    df["storage_class"] = [
        c if isinstance(c, str) and c else (t.storage_class if t else None)
        for c, t in zip(df["storage_class"], tiers, strict=True)
    ]
    df["age_days"] = _days_since(df["written_at"], now_ts)
    df["ingest_days"] = _days_since(df["created_at"], now_ts)
    df["ready_days"] = _days_since(df["ready_at"], now_ts)
    idle_from = df["last_accessed_at"].where(df["last_accessed_at"].notna(), df["ready_at"])
    idle_from = idle_from.where(idle_from.notna(), df["created_at"])
    df["idle_days"] = _days_since(idle_from, now_ts)

    n = len(df)
    action: list[str | None] = [None] * n
    target: list[str | None] = [None] * n
    rule_of: list[str | None] = [None] * n
    early_ok = [False] * n
    restore_days: list[int | None] = [None] * n
    masks = [(rule, _mask(df, rule, now_ts).to_numpy()) for rule in policy.rules]
    tier_order = {name: i for i, name in enumerate(policy.tiers)}

    # Candidates per object, in the precedence order.
    for i in range(n):
        deletes = [r for r, m in masks if m[i] and r.action == "delete"]
        deletes += [
            r
            for r, m in masks
            if m[i] and r.action == "keep_source" and df.at[i, "kind"] in REGENERABLE_KINDS
        ]
        restores = [
            r for r, m in masks if m[i] and r.action == "restore" and df.at[i, "tier"] != policy.hot_tier
        ]
        moves = [r for r, m in masks if m[i] and r.action == "move" and r.target != df.at[i, "tier"]]
        if deletes:
            action[i], rule_of[i], early_ok[i] = "delete", deletes[0].name, deletes[0].allow_early_deletion
        elif restores and policy.hot_tier:
            r = restores[0]
            action[i], target[i], rule_of[i], restore_days[i] = "restore", policy.hot_tier, r.name, r.days
            early_ok[i] = r.allow_early_deletion
        elif moves:
            cheapest = min(  # equal prices (file:// tiers): the tier listed last, the coldest by convention
                moves,
                key=lambda r: (
                    prices.monthly_cost(
                        policy.tiers[r.target].provider, policy.tiers[r.target].storage_class, GB
                    ),
                    -tier_order[r.target],
                ),
            )
            action[i], target[i], rule_of[i], early_ok[i] = (
                "move",
                cheapest.target,
                cheapest.name,
                (cheapest.allow_early_deletion),
            )

    # Maximum retention (a delete), minimum retention (no delete), restores in force or expired.
    note: list[str] = [""] * n
    for i in range(n):
        tags = df.at[i, "tags"] or {}
        for ret in policy.retention:
            applies = (ret.tag is not None and ret.tag in tags) or (
                ret.tier is not None and ret.tier == df.at[i, "tier"]
            )
            if not applies:
                continue
            age = df.at[i, "ingest_days"] if ret.tag is not None else df.at[i, "age_days"]
            if ret.max_days is not None and age >= ret.max_days and action[i] != "delete":
                action[i], target[i], rule_of[i] = "delete", None, f"retention:max_days:{ret.tag or ret.tier}"
            if ret.min_days is not None and age < ret.min_days and action[i] == "delete":
                action[i] = "defer"
                note[i] = f"minimum retention ({ret.tag or ret.tier}: {ret.min_days:g} days) not served"
        state = df.at[i, "restore_state"]
        if state == "restored":
            expires = df.at[i, "restore_expires_at"]
            if expires is not None and pd.Timestamp(expires) <= now_ts and df.at[i, "restored_from"]:
                back = df.at[i, "restored_from"]
                if back in policy.tiers and back != df.at[i, "tier"]:
                    action[i], target[i], rule_of[i], early_ok[i] = "move", back, "restore-expired", True
            elif action[i] is not None:
                action[i], note[i] = "defer", "restored copy in force until its expiry"
        elif state in ("requested", "restoring") and action[i] is not None:
            action[i], note[i] = "defer", f"restore {state}"
        if df.at[i, "legal_hold"] and action[i] is not None:
            action[i], note[i] = "hold", "legal hold: never moved or deleted"
        if action[i] == "delete" and df.at[i, "kind"] == "source" and not note[i]:
            action[i], note[i] = (
                "defer",
                "a source is deleted only with its asset (vam delete), never by a rule",
            )

    df["action"], df["dst_tier"], df["rule"], df["note"] = action, target, rule_of, note
    df["early_ok"], df["restore_days"] = early_ok, restore_days
    df = df[df["action"].notna()].copy()
    if df.empty:
        return empty_plan()

    # The package of an asset moves as a unit: every row takes its first manifest's decision.
    pkg = df["kind"].isin(PACKAGE_KINDS)
    if pkg.any():
        lead = (
            df[pkg].sort_values(["asset_id", "kind", "uri"]).groupby("asset_id", sort=False).first()
        )  # "manifest" sorts before "segment"
        for col in ("action", "dst_tier", "rule", "note", "early_ok", "restore_days"):
            df.loc[pkg, col] = df.loc[pkg, "asset_id"].map(lead[col]).to_numpy()

    rows = []
    for row in df.itertuples(index=False):
        provider = _provider(row.uri)
        before = prices.monthly_cost(provider, row.storage_class, row.size_bytes)
        charge = prices.early_deletion_charge(provider, row.storage_class, row.size_bytes, row.age_days)
        act, note_ = row.action, row.note
        dst_class = dst_uri = None
        after, transition = before, 0.0
        if act in ("move", "restore"):
            dst = policy.tiers[row.dst_tier]
            dst_class = dst.storage_class
            dst_uri = dst.uri + _relative_key(row, row.tier_obj)
            after = prices.monthly_cost(dst.provider, dst_class, row.size_bytes)
            transition = prices.transition_cost(dst.provider, dst_class, 1)
        elif act == "delete":
            after = 0.0
        if act in ("move", "restore", "delete") and charge > 0 and not row.early_ok:
            min_days = prices.min_days(provider, row.storage_class)
            note_ = (
                f"waits for the {min_days}-day minimum of {row.storage_class} "
                f"(early-deletion charge now {charge:.6f} {prices.currency}; "
                "allow_early_deletion accepts it)"
            )
            act = "defer"
        if act == "restore":
            act = "move"
            note_ = note_ or f"restore to {row.dst_tier} for {row.restore_days} days"
        rows.append(
            {
                "asset_id": row.asset_id,
                "kind": row.kind,
                "uri": row.uri,
                "tier": row.tier,
                "storage_class": row.storage_class,
                "action": act,
                "dst_tier": row.dst_tier if act == "move" else None,
                "dst_class": dst_class if act == "move" else None,
                "dst_uri": dst_uri if act == "move" else None,
                "bytes": int(row.size_bytes),
                "monthly_cost_before": before,
                "monthly_cost_after": after if act in EXECUTED else before,
                "transition_cost": transition if act == "move" else 0.0,
                "early_deletion_charge": charge if act in EXECUTED else 0.0,
                "rule": row.rule,
                "note": note_,
                "sha256": row.sha256,
                "restore_days": row.restore_days if row.rule and row.restore_days else None,
            }
        )
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS))


def summarize(plan_df: pd.DataFrame) -> dict[str, Any]:
    """Counts, bytes and money of a plan, per action (JSON-able)."""
    out: dict[str, Any] = {"objects": int(len(plan_df)), "actions": {}}
    for act, group in plan_df.groupby("action"):
        out["actions"][str(act)] = {
            "objects": int(len(group)),
            "assets": int(group["asset_id"].nunique()),
            "bytes": int(group["bytes"].sum()),
        }
    executed = plan_df[plan_df["action"].isin(EXECUTED)]
    before = float(executed["monthly_cost_before"].sum())
    after = float(executed["monthly_cost_after"].sum())
    out.update(
        {
            "monthly_cost_before": round(before, 6),
            "monthly_cost_after": round(after, 6),
            "monthly_savings": round(before - after, 6),
            "transition_cost": round(float(executed["transition_cost"].sum()), 6),
            "early_deletion_charge": round(float(executed["early_deletion_charge"].sum()), 6),
        }
    )
    return out


def batches(plan_df: pd.DataFrame, max_batches: int, min_batch: int = 1) -> list[list[dict[str, Any]]]:
    """The executed rows in at most ``max_batches`` batches, an asset never split across two (its
    package moves as a unit, in one catalog transaction)."""
    executed = plan_df[plan_df["action"].isin(EXECUTED)]
    if executed.empty:
        return []
    records = executed.sort_values(["asset_id", "uri"], kind="stable").to_dict("records")
    per_batch = max(min_batch, -(-len(records) // max(1, max_batches)))
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for i, r in enumerate(records):
        new_asset = i == 0 or r["asset_id"] != records[i - 1]["asset_id"]
        if new_asset and len(current) >= per_batch and len(out) < max_batches - 1:
            out.append(current)
            current = []
        current.append(r)
    if current:
        out.append(current)
    return out


def retier(objects: pd.DataFrame, policy: Policy, prices: Prices, target: str, rule: str) -> pd.DataFrame:
    """Move rows bringing every object outside tier ``target`` into it (a restore), in plan layout."""
    import pandas as pd

    dst = policy.tiers[target]
    rows = []
    for row in objects.reset_index(drop=True).itertuples(index=False):
        tier = policy.tier_of(row.uri) or (
            policy.tiers.get(policy.default_tier) if policy.default_tier else None
        )
        if tier is not None and tier.name == target:
            continue
        cls = row.storage_class or (tier.storage_class if tier else None)
        size = int(row.size_bytes or 0)
        rows.append(
            {
                "asset_id": row.asset_id,
                "kind": row.kind,
                "uri": row.uri,
                "tier": tier.name if tier else None,
                "storage_class": cls,
                "action": "move",
                "dst_tier": target,
                "dst_class": dst.storage_class,
                "dst_uri": dst.uri + _relative_key(row, tier),
                "bytes": size,
                "monthly_cost_before": prices.monthly_cost(_provider(row.uri), cls, size),
                "monthly_cost_after": prices.monthly_cost(dst.provider, dst.storage_class, size),
                "transition_cost": prices.transition_cost(dst.provider, dst.storage_class, 1),
                "early_deletion_charge": 0.0,
                "rule": rule,
                "note": "",
                "sha256": row.sha256,
                "restore_days": None,
            }
        )
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS))
