"""Resumable uploads (tus): check an upload's metadata, finish a complete upload (land it, register
its asset, start its run) and expire the unfinished ones.

A finished upload lands at ``<landing_uri>/<upload id>/<filename>`` (its tags in a ``<stem>.json``
sidecar beside it, written first). Then:

- with ``airflow_api_url`` set: the asset is registered now (title, tags, profile) and a
  ``vam_process`` run ``asset__<asset id>`` is started through Airflow's REST API (a JWT from
  ``POST /auth/token``, then ``POST /api/v2/dags/vam_process/dagRuns``);
- without it: the next ``vam_ingest`` poll finds the landed object and starts the run (title and
  profile from the metadata do not travel that way; the tags do, through the sidecar). The asset id
  is known at once all the same: assets are named by their content hash.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from vam import storage
from vam.catalog import asset_id_for
from vam.errors import VamError
from vam.ingest.tus import TusError, TusStore, Upload
from vam.runtime import Runtime

log = logging.getLogger(__name__)

PROCESS_DAG = "vam_process"


def tus_store(rt: Runtime) -> TusStore:
    """The upload store the settings describe (``upload_uri``, ``landing_uri``, expiration, limit)."""
    s = rt.settings
    return TusStore(
        s.upload_uri,
        s.landing_uri,
        expiration_seconds=s.upload_expiration_seconds,
        max_bytes=s.upload_max_bytes,
        spool_dir=rt.work("uploads-spool"),
        # locks beside the uploads on file://; on s3:// in the work dir (one host)
        lock_dir=None if s.upload_uri.startswith("file://") else rt.work("upload-locks"),
    )


def parse_tags(text: str | None) -> dict[str, Any]:
    """The ``tags`` metadata value: a JSON object, or ``key=value`` assignments separated by ``;``
    or new lines (the ``vam tag`` syntax)."""
    from vam.enrich.tags import parse_assignments

    if not text or not text.strip():
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TusError(400, "invalid_tags", f"Upload-Metadata tags: not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise TusError(400, "invalid_tags", "Upload-Metadata tags: a JSON object is needed")
        return data
    items = [part for line in text.splitlines() for part in line.split(";") if part.strip()]
    return parse_assignments(items)


def check_metadata(rt: Runtime, metadata: dict[str, str]) -> dict[str, Any]:
    """Validate an upload's metadata before any byte is taken: the tags against the taxonomy and
    the profile name. Raises TusError 400 naming the bad key; returns the normalised tags."""
    from vam.enrich.tags import InvalidTags, apply_changes

    try:
        tags = apply_changes(rt.taxonomy, {}, parse_tags(metadata.get("tags")), where="Upload-Metadata tags")
    except InvalidTags as exc:
        raise TusError(400, "invalid_tags", str(exc)) from None
    if metadata.get("profile"):
        try:
            rt.profile(metadata["profile"])
        except VamError as exc:
            raise TusError(400, "unknown_profile", f"Upload-Metadata profile: {exc}") from None
    return tags


def finish(rt: Runtime, store: TusStore, upload: Upload) -> dict[str, Any]:
    """Land a complete upload and hand it to processing. Idempotent: a landed upload returns what
    its finishing returned. Call it holding the upload's lock."""
    if upload.state == "landed":
        return upload.result
    metadata = upload.metadata
    tags = check_metadata(rt, metadata) if upload.concat != "partial" else {}
    if upload.concat == "partial":
        return {}
    target = store.target_uri(upload)
    if tags:
        sidecar = target.rsplit("/", 1)[0] + "/" + _stem(target.rsplit("/", 1)[1]) + ".json"
        storage.store_for(sidecar).put_bytes(
            json.dumps(tags).encode(), sidecar, content_type="application/json"
        )
    landed = store.land(upload)
    log.info("upload %s landed at %s", upload.id, landed)
    if rt.settings.airflow_api_url:
        result = _register_and_start(rt, store, landed, upload, tags)
    else:
        sha256 = store.sha256(upload) or storage.sha256_object(landed)
        result = {
            "asset_id": asset_id_for(sha256),
            "source_uri": landed,
            "sha256": sha256,
            "run": "ingest_poll",
        }
    upload.result = result
    store.save(upload)
    store.forget(upload.id)
    return result


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name


def _register_and_start(
    rt: Runtime, store: TusStore, uri: str, upload: Upload, tags: dict[str, Any]
) -> dict[str, Any]:
    from vam.steps.register import register

    meta = upload.metadata
    run_id = f"upload-{upload.id}"
    title = meta.get("title") or meta.get("filename")
    # never keep the client waiting for another run of the same bytes: ask once
    quick = dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, run_wait_seconds=0))
    quick.__dict__.update({k: v for k, v in rt.__dict__.items() if k in ("dsn", "taxonomy")})  # cached
    try:
        reg = register(quick, uri, title=title, tags=tags, profile=meta.get("profile"), run_id=run_id)
    except VamError as exc:
        sha256 = store.sha256(upload) or storage.sha256_object(uri)
        log.info("upload %s: %s", upload.id, exc)
        reason = str(exc)
        return {
            "asset_id": asset_id_for(sha256),
            "source_uri": uri,
            "sha256": sha256,
            "run": None,
            "reason": reason,
        }
    asset_id = reg["asset_id"]
    with rt.catalog() as cat:
        cat.release_run(asset_id, run_id)  # the vam_process run holds the asset, not the service
    result = {"asset_id": asset_id, "source_uri": uri, "sha256": reg["sha256"], "status": reg["status"]}
    if not reg["process"]:
        return {**result, "run": None, "reason": reg.get("reason")}
    conf = {
        "source_uri": uri,
        "title": meta.get("title") or "",
        "profile": meta.get("profile") or "",
        "tags": tags,
    }
    dag_run_id = f"asset__{asset_id}"
    try:
        start_run(rt.settings, dag_run_id, conf)
        return {**result, "run": dag_run_id}
    except VamError as exc:
        log.error("could not start run %s through Airflow's REST API: %s", dag_run_id, exc)
        return {**result, "run": None, "reason": f"starting the run failed: {exc}"}


def start_run(
    settings: Any, dag_run_id: str, conf: dict[str, Any], *, dag_id: str = PROCESS_DAG, timeout: float = 30.0
) -> dict[str, Any]:
    """Start a run of ``dag_id`` (``vam_process`` by default) through Airflow 3's REST API (simple
    auth manager: a JWT from ``POST /auth/token``). A run that already exists (409) counts as started."""
    import httpx

    base = settings.airflow_api_url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout) as http:
            headers = {}
            if settings.airflow_api_user:
                resp = http.post(
                    f"{base}/auth/token",
                    json={"username": settings.airflow_api_user, "password": settings.airflow_api_password},
                )
                if resp.status_code not in (200, 201):
                    raise VamError(
                        f"Airflow at {base} refused the login of {settings.airflow_api_user!r}"
                        f" ({resp.status_code}); check airflow_api_user and airflow_api_password"
                    )
                headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
            resp = http.post(
                f"{base}/api/v2/dags/{dag_id}/dagRuns",
                json={"dag_run_id": dag_run_id, "logical_date": None, "conf": conf},
                headers=headers,
            )
    except httpx.HTTPError as exc:
        raise VamError(f"cannot reach Airflow's REST API at {base}: {exc}") from exc
    if resp.status_code == 409:
        log.info("run %s already exists", dag_run_id)
        return {"dag_run_id": dag_run_id, "existing": True}
    if resp.status_code not in (200, 201):
        raise VamError(
            f"Airflow refused to start {dag_id} run {dag_run_id}: {resp.status_code} {resp.text[:300]}"
        )
    log.info("started %s run %s", dag_id, dag_run_id)
    return resp.json()


def expire_uploads(rt: Runtime) -> dict[str, int]:
    """Delete the unfinished uploads past their expiration (data, S3 multipart parts, state)."""
    counts = tus_store(rt).cleanup()
    log.info("expired uploads cleaned: %s", counts)
    return counts
