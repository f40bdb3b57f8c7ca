"""The ``vam`` command.

``vam process SOURCE [--profile NAME] [--json]`` runs the per-asset DAG for one source in this
process (Airflow's ``dag.test()``) and prints a summary. Exit status: 0 ready, 2 rejected
(the reason on stderr and in the JSON), 1 failed or any other error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

EXIT_READY, EXIT_ERROR, EXIT_REJECTED = 0, 1, 2

log = logging.getLogger("vam")


def _setup_logging(verbose: bool) -> None:
    # Everything but the summary goes to stderr, so `--json` output can be piped.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


def cmd_process(args: argparse.Namespace) -> int:
    import vam

    result = vam.process(
        args.source, profile=args.profile, title=args.title, force=args.force, retries=args.retries
    )
    _print(result, args.json)
    status = result["status"]
    if status == "ready":
        return EXIT_READY
    print(f"vam: asset {result['asset_id']} {status}: {result.get('reason')}", file=sys.stderr)
    return EXIT_REJECTED if status == "rejected" else EXIT_ERROR


def cmd_show(args: argparse.Namespace) -> int:
    import vam

    result = vam.show(args.asset_id, events=args.events)
    _print(result, args.json)
    return EXIT_READY


def cmd_search(args: argparse.Namespace) -> int:
    import vam
    from vam.catalog.search import SearchFilters
    from vam.enrich.tags import parse_assignments
    from vam.runtime import Runtime

    rt = Runtime.from_env()
    tags = rt.taxonomy.filter_values(parse_assignments(args.tag)) if args.tag else None
    filters = SearchFilters(
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        min_height=args.min_height,
        max_height=args.max_height,
        codec=args.codec,
        status=args.status,
        tags=tags,
        labels=args.label or None,
        flagged=args.flagged,
    )
    hits = vam.search(args.query, mode=args.mode, filters=filters, limit=args.limit, rt=rt)
    if args.json:
        _print_json(hits)
        return EXIT_READY
    if not hits:
        print("no matches", file=sys.stderr)
    for hit in hits:
        print(f"{hit['asset_id']}  {hit['score']:.3f}  {hit.get('title') or ''}")
        for m in hit.get("matches") or []:
            print(f"    {_clock(m['start'])}-{_clock(m['end'])}  {m['text']}")
    return EXIT_READY


def _clock(seconds: float) -> str:
    minutes, secs = divmod(float(seconds), 60)
    return f"{int(minutes):02d}:{secs:06.3f}"


def cmd_tag(args: argparse.Namespace) -> int:
    import getpass

    import vam
    from vam.enrich.tags import parse_assignments

    actor = f"cli:{getpass.getuser()}"
    tags = vam.tag(args.asset_id, parse_assignments(args.assignments), actor=actor, source="cli")
    if args.json:
        _print_json(tags)
    else:
        print("\n".join(f"{k}={v}" for k, v in sorted(tags.items())))
    return EXIT_READY


def cmd_url(args: argparse.Namespace) -> int:
    """``vam url ASSET_ID``: a signed playback URL (the token covers every segment of the asset)."""
    import vam

    result = vam.url(args.asset_id, base=args.base, ttl_seconds=args.ttl, fmt=args.format)
    if args.json:
        _print_json(result)
    else:
        print(result["url"])
    return EXIT_READY


def cmd_transform(args: argparse.Namespace) -> int:
    """``vam transform ASSET_ID TRANSFORMATION [--out FILE]``: build (or reuse) a transformation."""
    from vam.runtime import Runtime
    from vam.steps.transform import transform_for_cli

    result = transform_for_cli(
        Runtime.from_env(), args.asset_id, args.transformation, ext=args.format, out=args.out,
        sign_base=args.sign, ttl_seconds=args.ttl,
    )  # fmt: skip
    if args.json:
        _print_json(result)
    else:
        print(result.get("out") or result.get("url") or result["uri"])
    return EXIT_READY


def cmd_signing_key(args: argparse.Namespace) -> int:
    """``vam signing-key rotate``: a new signing key in the data dir; the previous one stays valid."""
    from vam.delivery import signing
    from vam.errors import VamError
    from vam.settings import load_settings

    settings = load_settings()
    if settings.signing_keys.strip():
        raise VamError(
            "signing keys come from VAM_SIGNING_KEYS here: rotate by putting a new kid:secret first"
            " in that setting (keep the old one until its URLs expire)"
        )
    kids = signing.rotate(settings.home)
    print(f"signing with {kids[0]}; still accepted: {', '.join(kids[1:]) or 'none'}")
    return EXIT_READY


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_drop(args: argparse.Namespace) -> int:
    """Upload a file into the landing prefix, where the ingest DAG picks it up."""
    import vam

    print(vam.drop(args.file, key=args.key))
    return EXIT_READY


def cmd_profiles(args: argparse.Namespace) -> int:
    from vam.media.profiles import available_profiles, load_profile
    from vam.settings import load_settings

    settings = load_settings()  # the edge: read once, passed down
    for name in available_profiles(settings.profiles_dir):
        prof = load_profile(name, settings.profiles_dir)
        print(f"{prof.key:24} {', '.join(f'{r.name}/{r.codec}' for r in prof.rungs)}")
    return EXIT_READY


def cmd_archive(args: argparse.Namespace) -> int:
    """``vam archive ingest URI``: the vam_archive_ingest DAG, in this process."""
    from vam.enrich.tags import parse_assignments
    from vam.orchestration import runner

    conf = {
        "source": args.uri,
        "glob": args.glob or "",
        "modified_since": args.since or "",
        "modified_until": args.until or "",
        "profile": args.profile or "",
        "tags": parse_assignments(args.tag) if args.tag else {},
        "dry_run": args.dry_run,
        "batch_size": args.batch_size,
    }
    run = runner.run_dag("vam_archive_ingest", conf)
    planned = runner.task_result(run, "plan", key="summary") or {}
    result = {
        "run_id": run.run_id,
        "state": str(run.state),
        "selected": planned.get("selected"),
        "to_process": planned.get("to_process"),
        "report": runner.task_result(run, "report"),
        "failed_tasks": runner.failed_tasks(run),
    }
    if args.json:
        _print_json(result)
    else:
        report = result["report"] or {}
        selected = "" if result["selected"] is None else f"; {result['selected']} objects selected"
        print(f"archive ingest {args.uri}: {result['state']}{selected}")
        for outcome, n in (report.get("counts") or {}).items():
            print(f"  {outcome:10} {n:6}  {report['bytes'][outcome]} bytes")
        if report:
            print(f"  report: {report['html_uri']}")
    if result["failed_tasks"]:
        print(f"vam: tasks {', '.join(result['failed_tasks'])} failed: see their log above", file=sys.stderr)
    return EXIT_READY if result["state"] == "success" else EXIT_ERROR


def cmd_sample(args: argparse.Namespace) -> int:
    from vam.media.sample import make_sample

    path = make_sample(Path(args.output), seconds=args.seconds, width=args.width, height=args.height)
    print(path)
    return EXIT_READY


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(result)
        return
    print(
        f"asset {result['asset_id']}: {result['status']}"
        + (f" ({result['reason']})" if result.get("reason") else "")
    )
    if result.get("deleted"):
        gone = result["deleted"]
        purge = f"{gone['purge_after']:%Y-%m-%d %H:%M:%S %Z}"
        print(
            f"  DELETED {gone['at']:%Y-%m-%d %H:%M:%S %Z}; purged after {purge}"
            f" (until then: vam undelete {result['asset_id']})"
        )
    for r in result.get("renditions") or []:
        print(
            f"  {r['name']:>8} {r['codec']:5} {r['width']}x{r['height']} {r['bitrate_kbps']} kbps"
            f"  vmaf {r['vmaf']} ssim {r['ssim']} psnr {r['psnr']}"
        )
    ladder = result.get("ladder_analysis")
    if ladder:  # a per-title profile: why each rung is what it is
        print(f"  per-title ladder (hull chart: {ladder.get('chart_uri')}):")
        for r in ladder.get("rungs") or []:
            print(f"    {r['name']:>8}: {r['reason']}")
        for r in ladder.get("dropped") or []:
            print(f"    {r['name']:>8} dropped: {r['reason']}")
    for key in ("hls", "dash"):
        if result.get(key):
            print(f"  {key}: {result[key]}")
    for d in result.get("derived") or []:
        print(
            f"  derived {d['name']}: {d['width']}x{d['height']} {d['duration']} s"
            f" vmaf {d['vmaf']}  {d['uri']}"
        )
    if result.get("objects"):
        print("  objects:")
        for o in result["objects"]:
            print(f"    {o['kind']:10} {o['size_bytes'] or '':>10} {o['tier'] or '-':6} {o['uri']}")
    if result.get("events"):
        print("  events:")
        for e in result["events"]:
            change = f" {e['from_status'] or ''} -> {e['to_status']}" if e.get("to_status") else ""
            print(
                f"    {e['at']:%Y-%m-%d %H:%M:%S} {e['kind']}{change} {json.dumps(e['detail'], default=str)}"
            )


def cmd_serve(args: argparse.Namespace) -> int:
    from vam.api.server import serve
    from vam.settings import load_settings

    serve(load_settings(), host=args.host, port=args.port)
    return EXIT_READY


def cmd_upload(args: argparse.Namespace) -> int:
    import os

    from vam.settings import load_settings
    from vam.upload_client import upload

    settings = load_settings()
    server = args.server or settings.public_url or "http://127.0.0.1:8000"
    tags = json.dumps(_tag_changes(args.tag)) if args.tag else None

    def progress(done: int, total: int) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\r{done / max(total, 1):6.1%} of {total} bytes", end="", file=sys.stderr)

    result = upload(
        args.file,
        server,
        chunk_size_mib=args.chunk_size,
        parallel=args.parallel,
        title=args.title,
        tags=tags,
        profile=args.profile,
        api_key=args.api_key or os.environ.get("VAM_API_KEY") or None,
        state_path=Path(settings.home) / "upload-state.json",
        progress=progress,
    )
    if args.json:
        _print_json(result)
    else:
        print(f"uploaded {args.file}: asset {result['asset_id']} at {result['source_uri']}")
    return EXIT_READY


def _tag_changes(assignments: list[str]) -> dict[str, Any]:
    from vam.enrich.tags import parse_assignments

    return parse_assignments(assignments)


def _when_arg(value: str | None):  # -> datetime | None
    import datetime as dt

    from vam.errors import VamError

    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise VamError(f"--now {value!r} is not an ISO 8601 time, e.g. 2027-01-31T12:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def cmd_delete(args: argparse.Namespace) -> int:
    """``vam delete ASSET``: soft delete, purged after the grace period unless undeleted."""
    from vam.runtime import Runtime
    from vam.steps.retention import delete_asset

    done = delete_asset(
        Runtime.from_env(), args.asset_id, grace_days=args.grace_days, reason=args.reason, actor=_actor()
    )
    if args.json:
        _print_json(done)
    else:
        again = " (already deleted)" if done["already_deleted"] else ""
        print(
            f"asset {args.asset_id} deleted{again}; purged after {done['purge_after']:%Y-%m-%d %H:%M:%S %Z}"
            f" unless you run: vam undelete {args.asset_id}"
        )
    return EXIT_READY


def cmd_undelete(args: argparse.Namespace) -> int:
    from vam.runtime import Runtime
    from vam.steps.retention import undelete_asset

    done = undelete_asset(Runtime.from_env(), args.asset_id, actor=_actor())
    if args.json:
        _print_json(done)
    else:
        print(f"asset {args.asset_id} undeleted")
    return EXIT_READY


def cmd_purge(args: argparse.Namespace) -> int:
    """``vam purge``: what the daily vam_purge DAG does, in this process."""
    from vam.runtime import Runtime
    from vam.steps.retention import purge

    done = purge(Runtime.from_env(), now=_when_arg(args.now), actor=_actor())
    if args.json:
        _print_json(done)
    else:
        print(f"purged {len(done['purged'])} assets ({done['bytes']} bytes); objects {done['objects']}")
        for r in done["refused"]:
            print(f"  refused {r['asset_id']}: {r['reason']}")
    return EXIT_READY


def cmd_storage(args: argparse.Namespace) -> int:
    """``vam storage dedup [--apply]`` and ``vam storage report``."""
    from vam.runtime import Runtime

    rt = Runtime.from_env()
    if args.storage_command == "dedup":
        from vam.steps.dedup import dedup

        done = dedup(rt, apply=args.apply, actor=_actor())
        if args.json:
            _print_json(done)
            return EXIT_READY
        print(
            f"{done['groups']} contents stored more than once: {done['redundant_copies']} redundant copies,"
            f" {done['reclaimable_bytes']} bytes reclaimable; report {done.get('csv_uri')}"
        )
        for item in done["items"]:
            head = f"  {item['sha256'][:16]} {item['size_bytes']:>12} bytes x{item['copies']}"
            print(f"{head} ({item['references']} references): keep {item['keep']}")
            for uri in item["remove"]:
                print(f"      remove {uri}")
            for uri in item["stay"]:
                print(f"      stays  {uri} (a manifest references it)")
        if args.apply:
            print(f"removed {len(done['removed'])} copies, {done['reclaimed_bytes']} bytes reclaimed")
            for s in done["skipped"]:
                print(f"  skipped {s['uri']}: {s['why']}")
        return EXIT_READY
    from vam.steps.storage_report import storage_report

    done = storage_report(rt, now=_when_arg(args.now), policy=args.policy)
    if args.json:
        _print_json(done)
        return EXIT_READY
    t = done["totals"]
    cost = f"{t['monthly_cost']:.4f} {t['currency']}/month"
    print(f"{t['objects']} objects of {t['assets']} assets, {t['bytes']} bytes, {cost}")
    for row in done["by_tier"]:
        where = f"{row['tier']:14} {row['provider']:4} {row['storage_class'] or '-':12} {row['objects']:7}"
        print(f"  tier {where} objects {row['bytes']:>14} bytes {row['monthly_cost']:10.4f}/month")
    for row in done["by_campaign"]:
        what = f"{row['campaign']:24} {row['assets']:5} assets {row['bytes']:>14} bytes"
        print(f"  campaign {what} {row['monthly_cost']:10.4f}/month")
    if done["savings"]:
        s = done["savings"]
        saving = f"saving {s['monthly_savings']:.4f}/month (one-off {s['one_off_cost']:.4f})"
        print(f"  policy: {s['objects']} objects change, {saving}")
    else:
        print(f"  policy savings: none computed ({t.get('savings_note')})")
    print(f"  csv: {done['csv_uris']['summary'].rsplit('/', 1)[0]}/  chart: {done['chart_uri']}")
    return EXIT_READY


def cmd_lifecycle(args: argparse.Namespace) -> int:
    """``vam lifecycle plan|run``: the vam_lifecycle DAG's work, in this process."""
    from vam.runtime import Runtime
    from vam.steps import lifecycle

    rt = Runtime.from_env()
    if args.lifecycle_command == "plan":
        result = lifecycle.plan(rt, args.policy, args.now, include_rows=args.json)
    else:
        result = lifecycle.run(rt, args.policy, args.now, dry_run=args.dry_run, threads=args.threads)
    if args.json:
        _print_json(result)
        return EXIT_ERROR if (result.get("executed") or {}).get("errors") else EXIT_READY
    s = result["summary"]
    print(f"policy {result['policy']} at {result['now']}: {s['objects']} objects")
    for action, n in sorted(s["actions"].items()):
        print(f"  {action:7} {n['objects']:>7} objects of {n['assets']} assets, {n['bytes']} bytes")
    print(
        f"  monthly cost {s['monthly_cost_before']:.4f} -> {s['monthly_cost_after']:.4f} USD"
        f" (saves {s['monthly_savings']:.4f}; transitions {s['transition_cost']:.4f},"
        f" early deletion {s['early_deletion_charge']:.4f})"
    )
    print(f"  plan: {result['plan_csv']}\n        {result['plan_html']}")
    done = result.get("executed")
    if done:
        print(f"moved {done['moved']}, deleted {done['deleted']} objects ({done['bytes']} bytes)")
        for asset_id, reason in done["errors"].items():
            print(f"  not moved {asset_id}: {reason}", file=sys.stderr)
        return EXIT_ERROR if done["errors"] else EXIT_READY
    return EXIT_READY


def cmd_hold(args: argparse.Namespace) -> int:
    """``vam hold ASSET --reason TEXT`` / ``vam release ASSET``: legal hold."""
    import getpass

    from vam.runtime import Runtime
    from vam.steps import lifecycle

    rt, actor = Runtime.from_env(), f"cli:{getpass.getuser()}"
    if args.command == "hold":
        result = lifecycle.hold(rt, args.asset_id, args.reason, actor=actor)
    else:
        result = lifecycle.release(rt, args.asset_id, actor=actor)
    if args.json:
        _print_json(result)
    else:
        state = (
            f"under legal hold ({result['reason']})" if result["legal_hold"] else "released from legal hold"
        )
        print(f"asset {args.asset_id} {state}")
    return EXIT_READY


def cmd_restore(args: argparse.Namespace) -> int:
    """``vam restore ASSET [--days N]``: a temporary hot copy of a cold asset."""
    import getpass

    from vam.runtime import Runtime
    from vam.steps import lifecycle

    result = lifecycle.restore(
        Runtime.from_env(),
        args.asset_id,
        days=args.days,
        policy=args.policy,
        actor=f"cli:{getpass.getuser()}",
    )
    if args.json:
        _print_json(result)
    elif result["state"] == "restored":
        print(f"asset {args.asset_id} restored: {result['objects']} objects hot until {result['expires_at']}")
    elif result["state"] == "restoring":
        print(
            f"asset {args.asset_id} restoring: {result['archived']} archived objects requested;"
            " the vam_lifecycle DAG (or `vam lifecycle run`) finishes the restore when they are readable"
        )
    else:
        print(f"asset {args.asset_id}: {result['note']}")
    return EXIT_READY


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vam", description="video asset management on Airflow")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("process", help="run the processing DAG for one source in this process")
    p.add_argument("source", help="a local path, file:// or s3:// URI")
    p.add_argument("--profile", help="encoding profile (see `vam profiles`)")
    p.add_argument("--title", help="title for the catalog")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--retries", type=int, default=0, help="task retries (default 0: fail fast)")
    p.add_argument(
        "--force", action="store_true", help="process again even when the catalog already has the answer"
    )
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("show", help="print an asset's catalog summary")
    p.add_argument("asset_id")
    p.add_argument("--events", action="store_true", help="include the audit log")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("search", help="search titles, tags, labels and transcripts")
    p.add_argument("query", nargs="?", default="", help="words or a phrase (empty: browse with filters)")
    p.add_argument("--mode", choices=("text", "semantic"), default="text")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--min-duration", type=float)
    p.add_argument("--max-duration", type=float)
    p.add_argument("--min-height", type=int)
    p.add_argument("--max-height", type=int)
    p.add_argument("--codec", help="source video codec, e.g. h264")
    p.add_argument("--status", help="asset status, e.g. ready")
    p.add_argument("--tag", action="append", default=[], help="key=value tag filter (repeatable)")
    p.add_argument("--label", action="append", default=[], help="visual label the asset must have")
    p.add_argument("--flagged", action=argparse.BooleanOptionalAction, default=None, help="moderation flag")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("tag", help="set manual tags: key=value, key+=a,b, key-=a, key= (delete)")
    p.add_argument("asset_id")
    p.add_argument("assignments", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("drop", help="upload a file into the landing prefix (picked up by the ingest DAG)")
    p.add_argument("file")
    p.add_argument("--key", help="key under the landing prefix (default: the file name)")
    p.set_defaults(func=cmd_drop)

    p = sub.add_parser("profiles", help="list the encoding profiles")
    p.set_defaults(func=cmd_profiles)

    p = sub.add_parser("archive", help="bulk archive ingest (the vam_archive_ingest DAG, in this process)")
    archive = p.add_subparsers(dest="archive_command", required=True)
    p = archive.add_parser("ingest", help="ingest every video under a prefix, then report")
    p.add_argument("uri", help="the archive's prefix: s3://, gs://, az://, ftp:// or file://")
    p.add_argument("--glob", help="keys to take below the prefix, e.g. '*.mxf'")
    p.add_argument("--since", help="only objects modified since (ISO date)")
    p.add_argument("--until", help="only objects modified until (ISO date)")
    p.add_argument("--profile", help="encoding profile")
    p.add_argument("--tag", action="append", default=[], help="key=value tag for every asset (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="list and report only")
    p.add_argument("--batch-size", type=int, default=25, help="sources per mapped task")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_archive)

    p = sub.add_parser("sample", help="write a generated sample clip (test pattern, tone)")
    p.add_argument("output")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "serve", help="run the HTTP service (uploads, assets API, origin, /watch and /upload pages; /docs)"
    )
    p.add_argument("--host", default="127.0.0.1", help="the one address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("url", help="print a signed playback URL of a ready asset (HLS, or DASH)")
    p.add_argument("asset_id")
    p.add_argument("--base", help="the service's public address (default: the public_url setting)")
    p.add_argument("--ttl", type=int, help="seconds the URL stays valid (default: signed_url_ttl_seconds)")
    p.add_argument("--format", choices=("hls", "dash"), help="the manifest to point at (default hls)")
    p.add_argument("--json", action="store_true", help="print every URL, the token and its expiry")
    p.set_defaults(func=cmd_url)

    p = sub.add_parser("transform", help="build (or reuse) a transformation of an asset, e.g. c_fill,w_720")
    p.add_argument("asset_id")
    p.add_argument("transformation", help="Cloudinary-style, e.g. ar_9:16,c_fill,g_auto/so_2,du_10")
    p.add_argument("--out", help="copy the result to this file (its extension sets the format)")
    p.add_argument("--format", help="mp4, webm, gif or jpg (default: --out's extension, f_, else mp4)")
    p.add_argument("--sign", metavar="BASE", help="also print a signed /t/ URL on base URL BASE")
    p.add_argument("--ttl", type=int, default=365 * 86400, help="seconds a --sign URL stays valid")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_transform)

    p = sub.add_parser("signing-key", help="manage the keys of signed playback URLs")
    p.add_argument("action", choices=("rotate",), help="rotate: new signing key, the previous stays valid")
    p.set_defaults(func=cmd_signing_key)

    p = sub.add_parser("upload", help="upload a file resumably to `vam serve` (tus); run again to resume")
    p.add_argument("file")
    p.add_argument("--server", help="the service's address (default: public_url, else http://127.0.0.1:8000)")
    p.add_argument("--chunk-size", type=float, default=8, help="MiB per request (default 8)")
    p.add_argument("--parallel", type=int, default=1, help="ranges uploaded at once, then concatenated")
    p.add_argument("--title", help="title for the catalog")
    p.add_argument("--profile", help="encoding profile")
    p.add_argument("--tag", action="append", default=[], help="key=value tag (repeatable)")
    p.add_argument("--api-key", help="the service's API key (default: $VAM_API_KEY)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_upload)

    p = sub.add_parser("delete", help="soft-delete an asset: purged after a grace period (default 7 days)")
    p.add_argument("asset_id")
    p.add_argument("--grace-days", type=float, help="days before the purge (default: delete_grace_days)")
    p.add_argument("--reason", help="why (kept in the audit log)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("undelete", help="bring a deleted asset back within its grace period")
    p.add_argument("asset_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_undelete)

    p = sub.add_parser("purge", help="purge deleted assets whose grace period has ended (the vam_purge DAG)")
    p.add_argument("--now", help="purge as if it were this ISO 8601 time (default: now)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("storage", help="storage dedup and cost report")
    store = p.add_subparsers(dest="storage_command", required=True)
    p = store.add_parser("dedup", help="report identical bytes stored more than once; --apply keeps one")
    p.add_argument("--apply", action="store_true", help="remove redundant copies, re-pointing the catalog")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_storage)
    p = store.add_parser("report", help="bytes and monthly cost per tier, asset, campaign; CSV + PNG chart")
    p.add_argument("--policy", help="lifecycle policy for the projected savings (name or file)")
    p.add_argument("--now", help="plan the savings as of this ISO 8601 time")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_storage)

    p = sub.add_parser("lifecycle", help="storage lifecycle: plan or run a policy (the vam_lifecycle DAG)")
    life = p.add_subparsers(dest="lifecycle_command", required=True)
    for name, text in (
        ("plan", "what the policy would move or delete, with its cost"),
        ("run", "plan, then move"),
    ):
        p = life.add_parser(name, help=text)
        p.add_argument("--policy", help="policy name in include/policies or a YAML file (default: default)")
        p.add_argument("--now", help="plan as if it were this ISO 8601 time (e.g. a year ahead)")
        p.add_argument("--json", action="store_true")
        if name == "run":
            p.add_argument("--dry-run", action="store_true", help="plan only")
            p.add_argument("--threads", type=int, default=8, help="objects copied at once")
        p.set_defaults(func=cmd_lifecycle)

    p = sub.add_parser("hold", help="put an asset under legal hold: nothing moves or deletes it")
    p.add_argument("asset_id")
    p.add_argument("--reason", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_hold)
    p = sub.add_parser("release", help="release an asset from legal hold")
    p.add_argument("asset_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_hold)

    p = sub.add_parser("restore", help="bring a temporary hot copy of a cold asset back for N days")
    p.add_argument("asset_id")
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--policy", help="policy naming the hot tier (default: default)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_restore)
    return parser


def main(argv: list[str] | None = None) -> int:
    from vam.errors import VamError

    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except VamError as exc:
        print(f"vam: {exc}", file=sys.stderr)
        if getattr(args, "json", False):
            asset = {"asset_id": None} if args.command in ("process", "show") else {}
            _print_json({**asset, "status": "error", "reason": str(exc)})
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
