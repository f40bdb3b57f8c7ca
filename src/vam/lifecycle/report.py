"""The storage cost report's computations (pure: pandas and matplotlib, no catalog, no storage).

Input: one row per stored object (``uri``, ``asset_id``, ``title``, ``kind``, ``size_bytes``,
``tier``, ``storage_class``, ``campaign``, ``deleted``) and a price function ``cost(provider,
storage_class, nbytes) -> USD per month``; the provider is the URI's scheme. Output: bytes and
monthly cost per tier (with provider and class), per asset and per campaign tag, plus totals; and a
PNG chart of the cost per tier before and after the lifecycle policy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

UNTIERED = "(untiered)"
NO_CAMPAIGN = "(no campaign)"
OBJECT_COLUMNS = [
    "uri",
    "asset_id",
    "title",
    "kind",
    "size_bytes",
    "tier",
    "storage_class",
    "campaign",
    "deleted",
]

CostFn = Callable[[str, str | None, int], float]


def provider_of(uri: str) -> str:
    return uri.split("://", 1)[0].lower() if "://" in uri else "file"


def priced(objects: list[dict[str, Any]], cost: CostFn) -> pd.DataFrame:
    """The objects as a DataFrame with ``provider``, ``storage_class`` (None kept as '') and
    ``monthly_cost`` (USD)."""
    df = pd.DataFrame(objects, columns=OBJECT_COLUMNS)
    df["size_bytes"] = df["size_bytes"].fillna(0).astype("int64")
    df["tier"] = df["tier"].fillna(UNTIERED)
    df["campaign"] = df["campaign"].fillna(NO_CAMPAIGN).astype(str)
    df["deleted"] = df["deleted"].fillna(False).astype(bool)
    df["provider"] = df["uri"].map(provider_of)
    df["monthly_cost"] = [
        float(cost(p, c if isinstance(c, str) and c else None, int(n)))
        for p, c, n in zip(df["provider"], df["storage_class"], df["size_bytes"], strict=True)
    ]
    df["storage_class"] = df["storage_class"].fillna("")
    return df


def _sum(df: pd.DataFrame, by: list[str], **extra: tuple[str, Any]) -> pd.DataFrame:
    out = df.groupby(by, dropna=False, sort=True).agg(
        objects=("uri", "count"), bytes=("size_bytes", "sum"), monthly_cost=("monthly_cost", "sum"), **extra
    )
    return out.reset_index().sort_values(["monthly_cost", "bytes"], ascending=False, kind="stable")


def breakdowns(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``by_tier`` (tier, provider, storage_class), ``by_asset`` and ``by_campaign`` tables."""
    by_asset = _sum(df, ["asset_id"], title=("title", "first"), deleted=("deleted", "max"))
    by_campaign = _sum(df, ["campaign"], assets=("asset_id", "nunique"))
    return {
        "by_tier": _sum(df, ["tier", "provider", "storage_class"]).reset_index(drop=True),
        "by_asset": by_asset.reset_index(drop=True),
        "by_campaign": by_campaign.reset_index(drop=True),
    }


def totals(df: pd.DataFrame, savings: dict[str, Any] | None) -> dict[str, Any]:
    """Overall figures, with the policy's projected savings when a plan was available."""
    deleted = df[df["deleted"]]
    out: dict[str, Any] = {
        "objects": int(len(df)),
        "assets": int(df["asset_id"].nunique()),
        "bytes": int(df["size_bytes"].sum()),
        "monthly_cost": round(float(df["monthly_cost"].sum()), 10),
        "deleted_pending_purge_bytes": int(deleted["size_bytes"].sum()),
    }
    if savings:
        out.update({f"policy_{k}": v for k, v in savings.items() if not isinstance(v, dict)})
    return out


def to_csv(tables: dict[str, pd.DataFrame], summary: dict[str, Any]) -> dict[str, str]:
    """Each table as CSV text, plus ``summary`` as a two-column CSV (metric, value)."""
    out = {name: table.to_csv(index=False, float_format="%.10g") for name, table in tables.items()}
    out["summary"] = pd.DataFrame({"metric": list(summary), "value": [summary[k] for k in summary]}).to_csv(
        index=False
    )
    return out


def chart(tables: dict[str, pd.DataFrame], savings: dict[str, Any] | None, path: Path) -> Path:
    """A PNG: monthly cost per tier (and after the policy, when planned), bytes per tier, and the
    costliest campaigns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tiers = tables["by_tier"].groupby("tier", sort=True)[["bytes", "monthly_cost"]].sum()
    campaigns = tables["by_campaign"].head(10)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    ax.bar(tiers.index.astype(str), tiers["monthly_cost"], color="#2563eb", label="now")
    if savings and savings.get("after_by_tier"):
        after = pd.Series(savings["after_by_tier"], dtype=float)
        names = sorted(set(tiers.index) | set(after.index))
        ax.cla()
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [float(tiers["monthly_cost"].get(n, 0.0)) for n in names], 0.4,
               color="#2563eb", label="now")  # fmt: skip
        ax.bar([i + 0.2 for i in x], [float(after.get(n, 0.0)) for n in names], 0.4,
               color="#16a34a", label="after policy")  # fmt: skip
        ax.set_xticks(list(x), names)
    ax.set_title("monthly cost per tier (USD)")
    ax.legend()
    axes[1].bar(tiers.index.astype(str), tiers["bytes"] / 1e6, color="#64748b")
    axes[1].set_title("stored MB per tier")
    axes[2].barh(campaigns["campaign"].astype(str), campaigns["monthly_cost"], color="#ea580c")
    axes[2].invert_yaxis()
    axes[2].set_title("monthly cost per campaign (USD)")
    if savings and savings.get("monthly_savings") is not None:
        fig.suptitle(f"projected policy savings: {savings['monthly_savings']:.4f} USD/month")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=80)
    plt.close(fig)
    return path


def policy_savings(plan: pd.DataFrame, cost_by_tier: dict[str, float]) -> dict[str, Any]:
    """What the lifecycle plan would change: ``{"objects", "monthly_cost_before",
    "monthly_cost_after", "monthly_savings", "one_off_cost", "after_by_tier"}`` from its executed
    rows (move, delete). ``cost_by_tier``: the monthly cost per tier now."""
    executed = plan[plan["action"].isin(("move", "delete"))] if not plan.empty else plan
    after = {str(k): float(v) for k, v in cost_by_tier.items()}
    for row in executed.itertuples():
        tier = str(row.tier) if isinstance(row.tier, str) and row.tier else UNTIERED
        after[tier] = after.get(tier, 0.0) - float(row.monthly_cost_before or 0.0)
        if row.action == "move" and isinstance(row.dst_tier, str) and row.dst_tier:
            after[row.dst_tier] = after.get(row.dst_tier, 0.0) + float(row.monthly_cost_after or 0.0)
    before = float(executed["monthly_cost_before"].fillna(0).sum()) if len(executed) else 0.0
    after_total = float(executed["monthly_cost_after"].fillna(0).sum()) if len(executed) else 0.0
    one_off = (
        float(executed["transition_cost"].fillna(0).sum() + executed["early_deletion_charge"].fillna(0).sum())
        if len(executed)
        else 0.0
    )
    return {
        "objects": int(len(executed)),
        "monthly_cost_before": round(before, 10),
        "monthly_cost_after": round(after_total, 10),
        "monthly_savings": round(before - after_total, 10),
        "one_off_cost": round(one_off, 10),
        "after_by_tier": {k: round(max(v, 0.0), 10) for k, v in sorted(after.items())},
    }
