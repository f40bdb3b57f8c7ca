"""Transformation URLs as a step: canonicalise, look up the cache, build once, publish, catalog, count.

A transformation of an asset is stored at ``{processed}/{asset_id}/transforms/{digest}.{fmt}``,
``digest`` being the SHA-256 of its canonical text (:mod:`vam.media.transform`) and of the bytes of
any overlay it uses (a watermark image replaced under the same id gives new objects, never a stale
one). It is cataloged as a derived output of the asset (``derived_outputs`` kind
``transformation``, ``stored_objects`` kind ``derived``: ``vam show`` lists it, lifecycle
policies move it with the asset's other objects) and in ``transformations`` with its build state
and hit counter.

A build is claimed in the catalog (:meth:`vam.catalog.Catalog.claim_transformation`): one owner per
transformation, at most ``transform_max_builds`` builds at once across every process, a lease so a
killed builder's work is taken over. The output is encoded to a local temp file (renamed once
checked: size, duration), uploaded to a temp key, copied to its final key and only then marked
ready: a reader sees nothing, or the whole checked file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vam import storage
from vam.errors import PermanentFailure, StorageError, VamError
from vam.runtime import Runtime
from vam.steps._common import load_asset, source_meta

log = logging.getLogger(__name__)

TRANSFORM_DAG = "vam_transform"
SIGNED_PREFIX = "s--"  # /t/s--{token}/...: a signed transformation URL
OVERLAY_EXTS = {"png_pipe": "png", "jpeg_pipe": "jpg", "webp_pipe": "webp", "bmp_pipe": "bmp"}
OVERLAY_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "bmp": "image/bmp"}


class TransformUnavailable(VamError):
    """The transformation cannot be built now (the asset is not ready, too many builds are running);
    ``status`` is the HTTP answer (404, 409, 503) and ``retry_after`` a hint in seconds."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.retry_after = status, code, retry_after


class OverlayError(PermanentFailure):
    """A watermark image that cannot be used (not an image, too large, a bad id)."""


@dataclass
class Prepared:
    """A transformation of one asset, validated and planned (without g_auto's saliency)."""

    asset_id: str
    spec: Any  # vam.media.transform.TransformSpec
    digest: str
    uri: str
    plan: Any  # vam.media.transform.TransformPlan
    overlays: dict[str, dict[str, Any]]

    @property
    def canonical(self) -> str:
        return self.spec.canonical


def limits(rt: Runtime):  # -> vam.media.transform.Limits
    from vam.media.transform import Limits

    s = rt.settings
    return Limits(max_dimension=s.transform_max_dimension, max_seconds=float(s.transform_max_seconds))


def digest_of(canonical: str, overlays: dict[str, dict[str, Any]] | None = None) -> str:
    basis = canonical + "".join(f"\n{oid}={row['sha256']}" for oid, row in sorted((overlays or {}).items()))
    return hashlib.sha256(basis.encode()).hexdigest()[:20]


def new_owner(prefix: str = "") -> str:
    return prefix or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def prepare(rt: Runtime, asset_id: str, transformation: str, ext: str | None = None) -> Prepared:
    """Parse and plan ``transformation`` of the asset: :class:`TransformError` (a 400) naming a bad
    parameter or a limit, :class:`TransformUnavailable` for an unknown or unready asset."""
    from vam.errors import CatalogError
    from vam.media.transform import TransformError, parse, plan

    spec = parse(transformation, ext)
    try:
        asset = load_asset(rt, asset_id)
    except CatalogError as exc:
        if not str(exc).startswith("no asset"):
            raise
        raise TransformUnavailable(404, "not_found", f"no asset {asset_id!r}") from None
    if asset["status"] != "ready":
        raise TransformUnavailable(
            409, "not_ready", f"asset {asset_id} is {asset['status']}: transformations need a ready asset"
        )
    with rt.catalog() as cat:
        overlays = cat.overlays_by_id(spec.overlay_ids())
    missing = [o for o in spec.overlay_ids() if o not in overlays]
    if missing:
        raise TransformError("l", f"no overlay {missing[0]!r}: upload it first (POST /overlays)")
    sizes = {oid: (row["width"], row["height"]) for oid, row in overlays.items()}
    tplan = plan(spec, source_meta(asset), overlay_sizes=sizes, limits=limits(rt))
    digest = digest_of(spec.canonical, overlays)
    uri = rt.output_uri(asset_id, "transforms", f"{digest}.{spec.fmt}")
    return Prepared(asset_id, spec, digest, uri, tplan, overlays)


def runs_inline(rt: Runtime, prepared: Prepared) -> bool:
    """Small builds run in the service's worker threads; larger ones (more than
    ``transform_inline_max_mpx_frames`` megapixel-frames, or a q_auto search) as a ``vam_transform``
    Airflow run when the service knows Airflow's API, so they are retried, visible and capped by the
    ``transform`` pool."""
    if not rt.settings.airflow_api_url:
        return True
    from vam.media.transform import QUALITY_TARGETS

    heavy = prepared.plan.pixel_seconds / 1e6 > rt.settings.transform_inline_max_mpx_frames
    return not (heavy or prepared.spec.quality in QUALITY_TARGETS)


def cached(rt: Runtime, prepared: Prepared, *, verify: bool = True) -> dict[str, Any] | None:
    """The ready transformation (its hit counted), or None. With ``verify``, a row whose object has
    gone (deleted by hand, or lost) is forgotten, so it is built again (the service checks the
    object itself when it opens it: :func:`forget`)."""
    with rt.catalog() as cat:
        row = cat.hit_transformation(prepared.asset_id, prepared.digest)
        if row is None:
            return None
        if verify and not storage.store_for(row["uri"]).exists(row["uri"]):
            log.warning("transformation %s of %s: %s is gone; building it again", row["canonical"],
                        prepared.asset_id, row["uri"])  # fmt: skip
            cat.forget_transformation(prepared.asset_id, prepared.digest)
            return None
    return row


def forget(rt: Runtime, asset_id: str, digest: str) -> None:
    """Forget a ready transformation whose object has gone: the next request builds it again."""
    with rt.catalog() as cat:
        cat.forget_transformation(asset_id, digest)


def claim(rt: Runtime, prepared: Prepared, owner: str, *, status: str = "building") -> dict[str, Any]:
    with rt.catalog() as cat:
        return cat.claim_transformation(
            prepared.asset_id, prepared.digest, prepared.canonical, prepared.spec.fmt,
            owner=owner, lease_seconds=rt.settings.transform_lease_seconds,
            max_builds=rt.settings.transform_max_builds, status=status,
        )  # fmt: skip


def _publish(local: Path, uri: str, owner: str, content_type: str) -> storage.ObjectInfo:
    """Upload to a temp key, copy to ``uri``, delete the temp key: ``uri`` holds the whole file or
    nothing (and the catalog says ready only after this)."""
    store = storage.store_for(uri)
    base, _, name = uri.rpartition("/")
    tmp_uri = f"{base}/_building/{name}.{owner.replace(':', '-')}.part"
    store.put(local, tmp_uri, content_type=content_type)
    try:
        info = store.copy(tmp_uri, uri)
    finally:
        try:
            store.delete(tmp_uri)
        except StorageError as exc:
            log.warning("could not delete the temp object %s: %s", tmp_uri, exc)
    if info.size != local.stat().st_size:
        raise StorageError(f"published {uri} has {info.size} bytes, built {local.stat().st_size}")
    return info


def build_claimed(rt: Runtime, prepared: Prepared, owner: str) -> dict[str, Any]:
    """Build a transformation whose build ``owner`` has claimed: encode, publish, catalog. A failure
    is recorded on the row (the next request tries again) and re-raised."""
    from vam.media import transform as tm
    from vam.media.saliency import saliency_map

    asset_id = prepared.asset_id
    work = rt.fresh_work(asset_id, "transform", prepared.digest)
    try:
        asset = load_asset(rt, asset_id)
        info = source_meta(asset)
        source = rt.source_file(asset)
        overlay_paths = {
            oid: rt.local_copy(row["uri"], "_overlays", f"{oid}-{row['sha256'][:12]}", row["sha256"])
            for oid, row in prepared.overlays.items()
        }
        sizes = {oid: (row["width"], row["height"]) for oid, row in prepared.overlays.items()}
        tplan = tm.plan(
            prepared.spec, info, overlay_sizes=sizes, limits=limits(rt),
            saliency=lambda start, duration: saliency_map(source, info, start, duration),
        )  # fmt: skip
        out = work / f"{prepared.digest}.{prepared.spec.fmt}"
        made = tm.build(source, out, tplan, overlay_paths, threads=rt.settings.ffmpeg_threads)
        tm.check_duration(made, tplan)
        sha256 = storage.sha256_file(out)
        size = out.stat().st_size
        _publish(out, prepared.uri, owner, prepared.spec.content_type)
        row = {
            "uri": prepared.uri, "sha256": sha256, "size_bytes": size, "width": made["width"],
            "height": made["height"], "duration": made["duration"], "frame_count": made["frame_count"],
            "build_seconds": made["build_seconds"],
        }  # fmt: skip
        spec = {"canonical": prepared.canonical, "format": prepared.spec.fmt, "plan": tplan.summary()}
        if made.get("quality"):
            spec["quality"] = made["quality"]
        with rt.catalog() as cat:
            cat.upsert_derived(asset_id, f"t-{prepared.digest}", "transformation", spec, row)
            cat.record_object(prepared.uri, asset_id=asset_id, kind="derived", size_bytes=size, sha256=sha256)
            if not cat.finish_transformation(asset_id, prepared.digest, owner, row):
                log.warning("transformation %s of %s: the lease of %s had run out before it finished",
                            prepared.canonical, asset_id, owner)  # fmt: skip
    except BaseException as exc:
        try:
            with rt.catalog() as cat:
                cat.fail_transformation(asset_id, prepared.digest, owner, f"{type(exc).__name__}: {exc}")
        except VamError as catalog_exc:
            log.error("could not record the failed build of %s: %s", prepared.canonical, catalog_exc)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("transformation %s of %s built in %.1f s -> %s", prepared.canonical, asset_id,
             made["build_seconds"], prepared.uri)  # fmt: skip
    return {**result_of(prepared, row), "cached": False, "quality": made.get("quality")}


def result_of(prepared: Prepared, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "asset_id": prepared.asset_id,
        "transformation": prepared.canonical,
        "digest": prepared.digest,
        "format": prepared.spec.fmt,
        "content_type": prepared.spec.content_type,
        "uri": row["uri"],
        "width": row.get("width"),
        "height": row.get("height"),
        "duration": row.get("duration"),
        "size_bytes": row.get("size_bytes"),
        "sha256": row.get("sha256"),
        "hits": row.get("hits"),
    }


def transform(
    rt: Runtime,
    asset_id: str,
    transformation: str,
    ext: str | None = None,
    *,
    owner: str | None = None,
    wait_seconds: float | None = None,
    poll_seconds: float = 1.0,
) -> dict[str, Any]:
    """The transformation of the asset, built now if it is not cached (the CLI and the operator):
    waits for another owner's build, or for a free build slot, up to ``wait_seconds`` (default:
    the lease). Returns ``{"asset_id", "transformation", "digest", "format", "uri", "width",
    "height", "duration", "size_bytes", "sha256", "cached", ...}``."""
    prepared = prepare(rt, asset_id, transformation, ext)
    owner = owner or new_owner()
    deadline = time.monotonic() + (
        rt.settings.transform_lease_seconds if wait_seconds is None else wait_seconds
    )
    while True:
        row = cached(rt, prepared)
        if row is not None:
            return {**result_of(prepared, row), "cached": True}
        got = claim(rt, prepared, owner)
        if got["state"] == "claimed":
            return build_claimed(rt, prepared, owner)
        if got["state"] == "ready":
            continue
        if time.monotonic() > deadline:
            what = "another build of it" if got["state"] == "busy" else "a free build slot"
            raise TransformUnavailable(503, "busy", f"waited for {what} too long; try again", 5)
        time.sleep(poll_seconds)


def start_dag_run(
    rt: Runtime, prepared: Prepared, ext: str, *, run_id: str, owner: str, timeout: float = 30.0
) -> str:
    """Queue the build as a ``vam_transform`` run through Airflow's REST API; the run builds it as
    ``owner`` (the claim the service made for it, status ``queued``). Returns the run id."""
    from vam.steps.uploads import start_run

    conf = {
        "asset_id": prepared.asset_id,
        "transformation": prepared.canonical,
        "ext": ext,
        "owner": f"airflow:{run_id}",
    }
    start_run(rt.settings, run_id, conf, dag_id=TRANSFORM_DAG, timeout=timeout)
    return run_id


# -- overlays --------------------------------------------------------------------------------------


def save_overlay(rt: Runtime, overlay_id: str, src: Path) -> dict[str, Any]:
    """Store a watermark image (PNG with alpha, JPEG, WebP, BMP) as overlay ``overlay_id`` (the
    ``l_`` value) and catalog it; replaces an earlier image of that id (transformations using the
    old one keep their objects; new requests build with the new one)."""
    from vam.media.probe import describe
    from vam.media.transform import OVERLAY_ID_RE

    if not OVERLAY_ID_RE.match(overlay_id or ""):
        raise OverlayError(f"overlay id {overlay_id!r}: use 1-64 letters, digits, - and _ (it becomes l_ID)")
    size = Path(src).stat().st_size
    if size > rt.settings.overlay_max_bytes:
        raise OverlayError(f"the image has {size} bytes; the limit is {rt.settings.overlay_max_bytes}")
    try:
        described = describe(Path(src))
    except VamError:
        raise OverlayError("the upload is not an image ffmpeg can read; send a PNG, JPEG or WebP") from None
    fmt = OVERLAY_EXTS.get(str(described.format.get("format_name")))
    video = described.video
    if fmt is None or video is None:
        raise OverlayError(
            f"the upload is {described.format.get('format_name')!r}, not an image; send a PNG, JPEG or WebP"
        )
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if not (1 <= width <= 4096 and 1 <= height <= 4096):
        raise OverlayError(f"the image is {width}x{height}; overlays may be up to 4096x4096")
    sha256 = storage.sha256_file(src)
    uri = storage.uri_join(rt.settings.processed_uri, "_overlays", overlay_id, f"{sha256[:16]}.{fmt}")
    storage.store_for(uri).put(Path(src), uri, content_type=OVERLAY_TYPES[fmt])
    row = {
        "overlay_id": overlay_id, "uri": uri, "sha256": sha256, "size_bytes": size,
        "width": width, "height": height, "content_type": OVERLAY_TYPES[fmt],
    }  # fmt: skip
    with rt.catalog() as cat:
        cat.save_overlay(overlay_id, row)
        cat.record_object(uri, asset_id=None, kind="overlay", size_bytes=size, sha256=sha256)
    log.info("overlay %s: %dx%d %s -> %s", overlay_id, width, height, fmt, uri)
    return row


def transform_for_cli(
    rt: Runtime,
    asset_id: str,
    transformation: str,
    *,
    ext: str | None = None,
    out: str | None = None,
    sign_base: str | None = None,
    ttl_seconds: int = 365 * 86400,
) -> dict[str, Any]:
    """``vam transform``: build (or reuse) the transformation; copy it to ``out`` (whose extension
    gives the format unless ``ext`` does); with ``sign_base``, a signed ``/t/`` URL too."""
    if ext is None and out:
        suffix = Path(out).suffix.lstrip(".")
        ext = suffix or None
    result = transform(rt, asset_id, transformation, ext)
    if out:
        dest = Path(out).absolute()
        storage.store_for(result["uri"]).get(result["uri"], dest)
        result["out"] = str(dest)
    if sign_base:
        from vam.steps.delivery import keyring

        signed = signed_url(
            keyring(rt), sign_base, asset_id, result["transformation"], result["format"], ttl_seconds
        )
        result["url"], result["url_expires"] = signed["url"], signed["expires"]
    return result


def signed_path(canonical: str, asset_id: str, fmt: str) -> str:
    """What a transformation URL's token covers: any spelling of the same transformation."""
    return f"t/{canonical}/{asset_id}.{fmt}"


def signed_url(
    ring: Any, base: str, asset_id: str, transformation: str, ext: str | None, ttl_seconds: int
) -> dict[str, Any]:
    """``{base}/t/s--{token}/{canonical}/{asset_id}.{fmt}``, signed with ``ring``
    (:class:`vam.delivery.signing.KeyRing`): ``{"url", "expires", "transformation"}``."""
    from vam.media.transform import parse

    spec = parse(transformation, ext)
    token, expires = ring.sign(signed_path(spec.canonical, asset_id, spec.fmt), ttl_seconds)
    url = f"{base.rstrip('/')}/t/{SIGNED_PREFIX}{token}/{spec.canonical}/{asset_id}.{spec.fmt}"
    return {"url": url, "expires": expires, "transformation": spec.canonical}
