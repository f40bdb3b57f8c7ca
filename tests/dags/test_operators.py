"""The operator library: its shape (what engineers rely on) and the deferrable landing sensor."""

from __future__ import annotations

import ast
import importlib
import inspect
import threading
import time
from pathlib import Path

import pytest

from vam.orchestration.env import PLUGINS_FOLDER

MODULES = [
    "operators.ingest",
    "operators.media",
    "operators.enrich",
    "operators.storage",
    "operators.lifecycle",
    "operators.transform",
]


def _operator_classes():
    from airflow.sdk import BaseOperator

    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        for cls_name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, BaseOperator)
                and cls.__module__ == name
                and not cls_name.startswith("_")
            ):
                found.append(cls)
    return found


def test_the_library_has_every_step():
    names = {cls.__name__ for cls in _operator_classes()}
    assert {
        "VamRegisterOperator", "VamDiscoverOperator", "VamLandingSensor", "VamProbeOperator",
        "VamPlanOperator", "VamTranscodeOperator", "VamQualityOperator", "VamQualityGateOperator",
        "VamPackageOperator", "VamPublishOperator", "VamFinalizeOperator", "VamSocialCropOperator",
        "VamReadyAssetsOperator", "VamTagsOperator", "VamTranscriptOperator", "VamScenesOperator",
        "VamLabelsOperator", "VamModerationOperator",
    } <= names  # fmt: skip


@pytest.mark.parametrize("cls", _operator_classes(), ids=lambda c: c.__name__)
def test_operator_shape(cls):
    params = inspect.signature(cls.__init__).parameters
    for name, p in params.items():
        if name == "self":
            continue
        assert p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD), f"{cls.__name__}({name}) is not keyword-only"
    for field in ("asset_id", "source_uri", "profile", "rendition", "landing_uri"):
        if field in params:
            assert field in cls.template_fields, f"{cls.__name__}.{field} is not templated"
    conn = inspect.signature(cls.__init__).parameters.get("aws_conn_id")
    if conn is None:  # inherited from VamOperator
        from operators._base import VamOperator

        assert issubclass(cls, VamOperator)
        conn = inspect.signature(VamOperator.__init__).parameters["aws_conn_id"]
    assert conn.default == "aws_default"
    assert cls.on_kill is not inspect.getattr_static(
        __import__("airflow.sdk").sdk.BaseOperator, "on_kill"
    ) or (cls.__name__ == "VamLandingSensor")


def test_constructors_only_assign():
    """__init__ bodies: docstring, super().__init__, kwargs.setdefault and self.x = y; nothing else."""
    for path in sorted((PLUGINS_FOLDER / "operators").glob("*.py")):
        tree = ast.parse(path.read_text())
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"):
                for stmt in fn.body:
                    ok = isinstance(stmt, ast.Assign) and all(
                        isinstance(t, ast.Attribute) and getattr(t.value, "id", "") == "self"
                        for t in stmt.targets
                    )
                    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                        text = ast.unparse(stmt.value.func)
                        ok = text in ("super().__init__", "kwargs.setdefault")
                    ok = ok or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
                    assert ok, f"{path.name}:{stmt.lineno} {cls.name}.__init__ does more than assign"


def test_ingest_waits_in_the_triggerer_until_a_new_object_lands(vam_home, airflow_db, monkeypatch):
    """vam_ingest's deferrable sensor: an empty landing prefix (but for an upload in progress)
    defers; an object dropped later ends the wait, and discover hashes it."""
    from vam import storage
    from vam.orchestration.runner import load_dag, task_result

    landing = vam_home / "landing-sensor"
    landing.mkdir(parents=True)
    (landing / "upload.mp4.part").write_bytes(b"in progress")  # not a source yet
    monkeypatch.setenv("VAM_LANDING_URI", storage.to_uri(landing) + "/")
    monkeypatch.setenv("VAM_INGEST_INTERVAL_SECONDS", "1")
    dag = load_dag("vam_ingest")
    assert dag.get_task("wait_for_sources").deferrable

    def drop_later() -> None:
        time.sleep(4)
        (landing / "clip.mp4").write_bytes(b"not really a video, but bytes to hash")

    dropper = threading.Thread(target=drop_later)
    started = time.monotonic()
    dropper.start()
    run = dag.test()
    dropper.join()
    assert run.state == "success"
    assert time.monotonic() - started >= 4  # it waited for the object, it did not pass at once
    waited = task_result(run, "wait_for_sources")
    assert [Path(storage.parse_uri(o["uri"])[2]).name for o in waited] == ["clip.mp4"]
    discovered = task_result(run, "discover", map_index=0)  # one discover task per landing place
    assert [Path(storage.parse_uri(d["source_uri"])[2]).name for d in discovered] == ["clip.mp4"]
    assert discovered[0]["sha256"] == storage.sha256_file(landing / "clip.mp4")


def test_landing_trigger_serializes_to_what_rebuilds_it():
    from operators.triggers import VamLandingTrigger

    trigger = VamLandingTrigger(landing_uris=["s3://a/in/", "ftp://h/drop/"], poll_interval=5)
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)
    assert rebuilt.landing_uris == ["s3://a/in/", "ftp://h/drop/"]
