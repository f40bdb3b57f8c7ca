"""Dedup planning: which copies of identical bytes to keep and which to remove (pure, pandas).

Input: every copy whose SHA-256 another copy shares (stored objects and the keys a source was seen
under), with the number of catalog references each has. Per group of equal bytes exactly one copy
is kept; a copy is removed only where that is safe:

- copies that manifests reference by relative path (segments, manifests, caption and chapter
  tracks) stay where they are: only catalog references can be re-pointed, not bytes inside files;
- every other copy (sources and the keys they were seen under, renditions, derived outputs,
  keyframes, quarantine copies) is removed once the kept copy verifies, its references re-pointed.

The kept copy is the one that must stay anyway (a copy a manifest references), else the one with the
most references, then one of a live (not deleted) asset, a stored object before a bare source key,
and the first URI. There is never a removal without a kept copy in the same group.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# Copies that only catalog rows point at: their references can be re-pointed to another copy.
RELOCATABLE_KINDS = frozenset({"source", "source_key", "rendition", "derived", "keyframe", "quarantine"})

COLUMNS = [
    "sha256", "uri", "kind", "asset_id", "size_bytes", "tier", "storage_class", "references",
    "deleted", "action", "why",
]  # fmt: skip


def plan_dedup(copies: list[dict[str, Any]], references: dict[str, int]) -> pd.DataFrame:
    """One row per copy with ``action`` ``keep``, ``remove`` or ``stay`` and ``why``; groups of a
    single copy are dropped. ``references``: catalog references per URI."""
    if not copies:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.DataFrame(copies)
    for column, default in (("tier", None), ("storage_class", None), ("deleted", False), ("asset_id", None)):
        if column not in df:
            df[column] = default
    df["deleted"] = df["deleted"].fillna(False).astype(bool)
    df["references"] = df["uri"].map(lambda u: int(references.get(u, 0)))
    df["fixed"] = ~df["kind"].isin(RELOCATABLE_KINDS)
    df["is_key"] = df["kind"].eq("source_key")
    df = df[df.groupby("sha256")["uri"].transform("count") > 1].copy()
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    df = df.sort_values(
        ["sha256", "fixed", "references", "deleted", "is_key", "uri"],
        ascending=[True, False, False, True, True, True],
    )
    first = ~df.duplicated("sha256", keep="first")
    df["action"] = "remove"
    df["why"] = "same bytes as the kept copy; references re-pointed to it"
    df.loc[df["fixed"], ["action", "why"]] = ["stay", "a manifest references it by relative path"]
    df.loc[first, ["action", "why"]] = ["keep", "the copy kept for this content"]
    return df[COLUMNS].reset_index(drop=True)


def summarize(plan: pd.DataFrame) -> dict[str, Any]:
    """Totals and one entry per group: ``{"groups", "copies", "redundant_copies", "reclaimable_bytes",
    "items": [{"sha256", "size_bytes", "copies", "references", "keep", "remove", "stay"}]}``."""
    if plan.empty:
        return {"groups": 0, "copies": 0, "redundant_copies": 0, "reclaimable_bytes": 0, "items": []}
    items = []
    for sha256, group in plan.groupby("sha256", sort=True):
        size = int(group["size_bytes"].dropna().max()) if group["size_bytes"].notna().any() else 0
        items.append(
            {
                "sha256": sha256,
                "size_bytes": size,
                "copies": int(len(group)),
                "references": int(group["references"].sum()),
                "keep": group.loc[group["action"] == "keep", "uri"].iloc[0],
                "remove": group.loc[group["action"] == "remove", "uri"].tolist(),
                "stay": group.loc[group["action"] == "stay", "uri"].tolist(),
                "copy_references": dict(zip(group["uri"], group["references"].astype(int), strict=True)),
            }
        )
    removable = plan[plan["action"] == "remove"]
    return {
        "groups": len(items),
        "copies": int(len(plan)),
        "redundant_copies": int((plan["action"] != "keep").sum()),
        "reclaimable_bytes": int(removable["size_bytes"].fillna(0).sum()),
        "items": items,
    }
