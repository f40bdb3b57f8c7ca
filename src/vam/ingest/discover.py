"""Landing-place conventions: which object names are sources.

Names a writer uses while an upload is in progress, sidecar metadata files (read with their video,
see :func:`vam.enrich.tags.load_sidecar`), folder markers and hidden files are never sources. The
catalog side of discovery (seen objects, content-hash dedup) is :mod:`vam.steps.ingest`.
"""

from __future__ import annotations

from pathlib import PurePosixPath

IGNORED_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart", ".json", ".yaml", ".yml")


def is_candidate(uri: str) -> bool:
    """True when the object at ``uri`` may be a source (see the module docstring)."""
    if uri.endswith("/"):  # a "folder" marker object (the S3 console makes them)
        return False
    name = PurePosixPath(uri).name
    return bool(name) and not name.startswith(".") and not name.lower().endswith(IGNORED_SUFFIXES)
