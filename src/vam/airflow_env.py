"""Airflow settings for running vam's DAGs in this process (``vam process``, tests).

Only environment variables are set here, and only those not set already, so a deployment's own
Airflow configuration always wins. This module does not import Airflow; call :func:`configure`
before the first ``import airflow``.
"""

from __future__ import annotations

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
    """The api-server's JWT signing secret, generated once into ``home/jwt_secret`` (mode 0600)."""
    path = home / "jwt_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


def ensure_metadata_db() -> None:
    """Create or upgrade the Airflow metadata DB (a no-op when it is current)."""
    from airflow.utils import db

    db.initdb() if not _db_exists() else db.upgradedb()


def _db_exists() -> bool:
    from airflow import settings
    from sqlalchemy import inspect

    return inspect(settings.engine).has_table("alembic_version")


def load_dag(dag_id: str):
    """Import a DAG object from vam's dags/ folder (the file is named after the DAG id)."""
    import importlib.util

    from vam.errors import VamError

    path = DAGS_FOLDER / f"{dag_id}.py"
    spec = importlib.util.spec_from_file_location(f"vam_dags_{dag_id}", path)
    if spec is None or spec.loader is None:
        raise VamError(f"no DAG file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, f"{dag_id}_dag")


def task_result(dag_run, task_id: str):
    """What ``task_id`` returned in ``dag_run`` (its ``return_value`` XCom), or None."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key="return_value"
        )
        row = session.scalars(query).first()
        return XComModel.deserialize_value(row) if row is not None else None
