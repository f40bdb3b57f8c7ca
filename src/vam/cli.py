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
    for r in result.get("renditions") or []:
        print(
            f"  {r['name']:>8} {r['codec']:5} {r['width']}x{r['height']} {r['bitrate_kbps']} kbps"
            f"  vmaf {r['vmaf']} ssim {r['ssim']} psnr {r['psnr']}"
        )
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

    p = sub.add_parser("serve", help="run the HTTP service (tus uploads at /files/, OpenAPI at /docs)")
    p.add_argument("--host", default="127.0.0.1", help="the one address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

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
