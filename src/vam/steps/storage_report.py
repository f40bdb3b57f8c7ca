"""The storage cost report: bytes and monthly cost per tier, per asset and per campaign tag, and the
lifecycle policy's projected savings; written as CSV files and a PNG chart.

Prices come from ``include/policies/prices.yaml`` (:mod:`vam.lifecycle.prices`); the savings from the
lifecycle planner's plan at ``now`` (what a ``vam lifecycle run`` would change), when a policy
loads. The files go under ``<processed_uri>/_reports/storage/<UTC stamp>/``: ``by_tier.csv``,
``by_asset.csv``, ``by_campaign.csv``, ``summary.csv`` and ``chart.png``.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path
from typing import Any

from vam import storage
from vam.errors import VamError
from vam.lifecycle import report as rep
from vam.runtime import Runtime

log = logging.getLogger(__name__)


def _policy(rt: Runtime, policy: str | None):  # -> vam.lifecycle.policy.Policy | None
    """The lifecycle policy (None when this installation has no lifecycle steps)."""
    try:
        from vam.steps.lifecycle import policy_for
    except ImportError:
        log.info("no lifecycle planner in this installation: the report has no projected savings")
        return None
    return policy_for(rt, policy)


def _plan(rt: Runtime, pol, prices, now: dt.datetime):  # -> pandas.DataFrame
    """The lifecycle plan at ``now``: what a ``vam lifecycle run`` would change."""
    from vam.steps.lifecycle import make_plan

    return make_plan(rt, pol, prices, now)


def storage_report(
    rt: Runtime,
    *,
    now: dt.datetime | None = None,
    policy: str | None = None,
    prices_file: str | None = None,
    top: int = 20,
) -> dict[str, Any]:
    """Build and write the report; returns ``{"totals", "by_tier", "by_campaign", "top_assets",
    "savings", "csv_uris", "chart_uri"}`` (tables as lists of dicts; ``top_assets``: the ``top``
    costliest assets)."""
    from vam.lifecycle.prices import load_prices

    now = now or dt.datetime.now(dt.UTC)
    prices = load_prices(Path(prices_file) if prices_file else None)
    with rt.catalog() as cat:
        inventory = cat.storage_inventory()
    savings: dict[str, Any] | None = None
    note, plan = None, None
    try:
        pol = _policy(rt, policy)
        if pol is not None:
            for row in inventory:  # objects the catalog has no tier for: the policy tier holding them
                if not row["tier"] and (tier := pol.tier_of(row["uri"])) is not None:
                    row["tier"] = tier.name
            plan = _plan(rt, pol, prices, now)
    except VamError as exc:  # the report stands without savings; the reason is in it
        log.warning("no projected savings: the lifecycle plan failed: %s", exc)
        note = f"lifecycle plan failed: {exc}"
    df = rep.priced(inventory, prices.monthly_cost)
    tables = rep.breakdowns(df)
    if plan is not None:
        cost_by_tier = tables["by_tier"].groupby("tier")["monthly_cost"].sum().to_dict()
        savings = rep.policy_savings(plan, cost_by_tier)
    elif note is None:
        note = "no lifecycle planner available"
    summary = {**rep.totals(df, savings), "currency": prices.currency, "at": now.isoformat()}
    if note:
        summary["savings_note"] = note
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    csv_uris = {}
    for name, text in rep.to_csv(tables, summary).items():
        uri = rt.output_uri("_reports", "storage", stamp, f"{name}.csv")
        storage.store_for(uri).put_bytes(text.encode(), uri, content_type="text/csv")
        csv_uris[name] = uri
    work = rt.fresh_work("_reports", "storage")
    png = rep.chart(tables, savings, work / "chart.png")
    chart_uri = rt.output_uri("_reports", "storage", stamp, "chart.png")
    storage.store_for(chart_uri).put(png, chart_uri, content_type="image/png")
    shutil.rmtree(work, ignore_errors=True)
    log.info("storage report: %s; %s", summary, chart_uri)
    return {
        "totals": summary,
        "by_tier": tables["by_tier"].to_dict("records"),
        "by_campaign": tables["by_campaign"].to_dict("records"),
        "top_assets": tables["by_asset"].head(top).to_dict("records"),
        "savings": savings,
        "csv_uris": csv_uris,
        "chart_uri": chart_uri,
    }
