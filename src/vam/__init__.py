"""vam: video asset management as an Apache Airflow 3 pipeline.

The high-level calls, for the common case (the ``vam`` command is a thin layer over them)::

    import vam

    result = vam.process("clip.mp4", profile="default")   # the whole pipeline, in this process
    result["status"], result["hls"], result["renditions"]
    vam.show(result["asset_id"], events=True)              # catalog summary, objects, audit log
    vam.search("river bank")                                # hits with time offsets
    vam.tag(result["asset_id"], {"campaign": "spring"})

Each reads the settings once (embedded defaults, ``VAM_CONFIG``, ``VAM_*`` variables) unless it is
given a :class:`vam.runtime.Runtime`. Only :func:`process` needs Airflow (it runs the
``vam_process`` DAG with ``dag.test()``); the rest of the library never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vam.runtime import Runtime

__version__ = "0.1.0"
__all__ = ["drop", "process", "search", "show", "tag", "url"]


def _rt(rt: Runtime | None) -> Runtime:
    from vam.runtime import Runtime

    return rt or Runtime.from_env()


def process(
    source: str,
    *,
    profile: str | None = None,
    title: str | None = None,
    tags: dict[str, Any] | None = None,
    force: bool = False,
    retries: int = 0,
    rt: Runtime | None = None,
) -> dict[str, Any]:
    """Run the per-asset pipeline (the ``vam_process`` DAG, in this process) for ``source`` (a local
    path, ``file://`` or ``s3://`` URI) and return the asset's summary: ``status`` is ``ready``,
    ``rejected`` or ``failed`` with a ``reason``, or ``error`` when the run ended before the
    source was registered. Bytes the catalog already has ready (same profile) or rejected are
    answered from the catalog, as is a second run of bytes being processed (it waits for the first),
    unless ``force``. A missing source or an unknown profile raises
    :class:`~vam.errors.VamError` before anything runs."""
    from vam import storage
    from vam.orchestration import runner

    rt = _rt(rt)
    if profile:  # fail fast, with the list of profiles, before Airflow starts
        rt.profile(profile)
    uri = storage.to_uri(source)
    storage.store_for(uri).head(uri)  # a clear error now if the source is missing
    return runner.process(rt, uri, profile=profile, title=title, tags=tags, force=force, retries=retries)


def show(asset_id: str, *, events: bool = False, rt: Runtime | None = None) -> dict[str, Any]:
    """The asset's summary, its stored objects and, with ``events``, its audit log."""
    from vam.steps.show import show as show_asset

    return show_asset(_rt(rt), asset_id, events=events)


def search(
    query: str = "", *, mode: str = "text", filters: Any = None, limit: int = 20, rt: Runtime | None = None
) -> list[dict[str, Any]]:
    """Full-text (or ``mode="semantic"``) search; ``filters`` a :class:`vam.catalog.search.SearchFilters`."""
    from vam.steps.search import search as search_assets

    return search_assets(_rt(rt), query, mode=mode, filters=filters, limit=limit)


def tag(
    asset_id: str,
    changes: dict[str, Any],
    *,
    actor: str = "api",
    source: str = "api",
    rt: Runtime | None = None,
) -> dict[str, Any]:
    """Validate ``changes`` against the taxonomy and apply them to the asset's tags; returns the tags."""
    from vam.steps.enrich import update_tags

    rt = _rt(rt)
    with rt.catalog() as cat:
        cat.get_asset(asset_id)  # a clear error for an unknown asset
    return update_tags(rt, asset_id, changes, actor=actor, source=source)


def url(
    asset_id: str,
    *,
    base: str | None = None,
    ttl_seconds: int | None = None,
    fmt: str | None = None,
    rt: Runtime | None = None,
) -> dict[str, Any]:
    """Signed playback URLs of a ready asset (``url``: the HLS manifest, or DASH with ``fmt="dash"``;
    also ``hls``, ``dash``, ``captions``, ``chapters``, ``watch``, ``expires``). ``base`` defaults to
    the ``public_url`` setting; the token covers every object below the asset."""
    from vam.steps.delivery import playback

    return playback(_rt(rt), asset_id, base=base, ttl_seconds=ttl_seconds, fmt=fmt)


def drop(path: str, *, key: str | None = None, rt: Runtime | None = None) -> str:
    """Upload a local file into the landing prefix (the ingest DAG picks it up); returns its URI."""
    from pathlib import Path

    from vam import storage
    from vam.errors import VamError

    src = Path(path)
    if not src.is_file():
        raise VamError(f"{src} is not a file")
    uri = storage.uri_join(_rt(rt).settings.landing_uri, key or src.name)
    storage.store_for(uri).put(src, uri)
    return uri
