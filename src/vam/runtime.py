"""The runtime of vam's steps: settings read once at the edge, and the handles built from them.

An edge (the CLI, an operator's ``execute``, the HTTP service) builds one :class:`Runtime` from
:func:`vam.settings.load_settings` and hands it to the steps; nothing below reads settings on its
own. Building a runtime passes the settings the leaf modules need down to them once (the ffmpeg
and ffprobe paths, the S3 endpoint), and gives the steps the catalog, the encoding profiles, the
tag taxonomy, local scratch directories and output URIs.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from vam import storage
from vam.catalog import Catalog, open_catalog
from vam.errors import VamError
from vam.settings import Settings, load_settings

log = logging.getLogger(__name__)


def _suffix(uri: str) -> str:
    return PurePosixPath(uri.split("?", 1)[0]).suffix.lower()


@dataclass
class Runtime:
    """Settings plus what they point to; one per process (tasks of one worker may share it)."""

    settings: Settings
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        from vam.media import tools

        tools.configure(ffmpeg=self.settings.ffmpeg or None, ffprobe=self.settings.ffprobe or None)
        storage.set_s3_defaults(self.settings.s3_endpoint_url or None, self.settings.s3_region)

    @classmethod
    def from_env(cls) -> Runtime:
        """A runtime from the embedded defaults, ``VAM_CONFIG`` and ``VAM_*`` variables (an edge)."""
        return cls(load_settings())

    # -- catalog ---------------------------------------------------------------------------------

    @cached_property
    def dsn(self) -> str:
        from vam.catalog.dsn import resolve_dsn

        return resolve_dsn(self.settings.catalog_dsn, self.settings.home)

    def catalog(self, actor: str = "vam") -> Catalog:
        return open_catalog(self.dsn, actor=actor)

    # -- profiles and taxonomy -------------------------------------------------------------------

    def profile(self, name: str | None = None):  # -> vam.media.types.Profile
        """The encoding profile ``name`` (default: the ``profile`` setting) as its file says now."""
        from vam.media.profiles import load_profile

        return load_profile(name or self.settings.profile, self.settings.profiles_dir)

    def pinned_profile(self, key: str, sha256: str):  # -> vam.media.types.Profile
        """The exact profile version a run's ``plan`` recorded (see ``Catalog.pin_profile``)."""
        from vam.media.profiles import profile_from_dict

        with self.catalog() as cat:
            return profile_from_dict(cat.pinned_profile(key, sha256))

    @cached_property
    def taxonomy(self):  # -> vam.enrich.tags.Taxonomy
        from vam.enrich.tags import load_taxonomy

        return load_taxonomy(self.settings.taxonomy_file)

    # -- local files -----------------------------------------------------------------------------

    def work(self, *parts: str) -> Path:
        """A scratch directory under the work dir (created)."""
        path = Path(self.settings.work_dir).joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fresh_work(self, *parts: str) -> Path:
        """An empty scratch directory of this runtime's own (``<work>/<parts>/<run id>``): two runs
        of one asset never share one."""
        path = self.work(*parts, self.run_id)
        shutil.rmtree(path)
        path.mkdir()
        return path

    def output_uri(self, asset_id: str, *parts: str) -> str:
        return storage.uri_join(self.settings.processed_uri, asset_id, *parts)

    def local_copy(self, uri: str, asset_id: str, name: str, sha256: str | None = None) -> Path:
        """A local file holding the object at ``uri``: the object itself for file:// URIs, else a
        download cached in the asset's work dir (verified against ``sha256`` when given)."""
        store = storage.store_for(uri)
        path = store.local_path(uri)
        if path is not None:
            return path
        dest = self.work(asset_id, "cache") / f"{name}{_suffix(uri)}"
        marker = dest.with_name(dest.name + ".sha256")
        if dest.exists() and marker.exists() and (sha256 is None or marker.read_text() == sha256):
            return dest
        partial = dest.with_name(f"{dest.name}.{self.run_id}.part")
        store.get(uri, partial)
        digest = storage.sha256_file(partial)
        if sha256 is not None and digest != sha256:
            partial.unlink(missing_ok=True)
            raise VamError(f"downloaded {uri} but its SHA-256 {digest} is not the registered {sha256}")
        partial.replace(dest)
        marker.write_text(digest)
        return dest

    def keep_local(self, path: Path, asset_id: str, name: str, sha256: str) -> None:
        """Move a file just uploaded to object storage into the local cache under ``name``, so that
        later tasks on this worker find it (see :meth:`local_copy`)."""
        dest = self.work(asset_id, "cache") / f"{name}{path.suffix}"
        shutil.move(path, dest)
        dest.with_name(dest.name + ".sha256").write_text(sha256)

    def source_file(self, asset: dict[str, Any]) -> Path:
        """The asset's source (a catalog row or register result) as a local file."""
        sha256 = asset.get("sha256") or asset.get("content_sha256")
        return self.local_copy(asset["source_uri"], asset["asset_id"], "source", sha256)
