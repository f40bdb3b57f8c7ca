"""Airflow settings for running vam's DAGs in this process (``vam process``, tests).

Only environment variables are set here, and only those not set already, so a deployment's own
Airflow configuration always wins. Call :func:`configure` before the first ``import airflow``.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import sys
from pathlib import Path

from vam.settings import REPO_ROOT, Settings

DAGS_FOLDER = REPO_ROOT / "dags"
PLUGINS_FOLDER = REPO_ROOT / "plugins"


def configure(settings: Settings, *, retries: int | None = None) -> Path:
    """Point Airflow at vam's dags/ and plugins/ and a metadata DB under vam's home."""
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(settings.home_path / "airflow")))
    home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret(home),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    if retries is not None:
        os.environ["VAM_TASK_RETRIES"] = str(retries)
    if str(PLUGINS_FOLDER) not in sys.path:
        sys.path.insert(0, str(PLUGINS_FOLDER))
    return home


def jwt_secret(home: Path) -> str:
    """The api-server's JWT signing secret, generated once into ``home/jwt_secret`` (mode 0600).
    Safe when several processes start at once: the file appears whole or not at all."""
    path = home / "jwt_secret"
    if not path.exists():
        tmp = path.with_name(f".jwt_secret.{os.getpid()}")
        tmp.write_text(secrets.token_urlsafe(64))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # atomic, and never replaces a secret another process wrote first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def ensure_metadata_db() -> None:
    """Create or upgrade the Airflow metadata DB (a no-op when it is current). Processes that start
    at once on a fresh home take turns (a lock file in AIRFLOW_HOME), so the second finds the
    first's database instead of racing to create the same tables."""
    from airflow.utils import db

    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".vam-initdb.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            db.initdb() if not _db_exists() else db.upgradedb()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _db_exists() -> bool:
    from airflow import settings
    from sqlalchemy import inspect

    return inspect(settings.engine).has_table("alembic_version")
