"""vam.api: the HTTP service (``vam serve``): one FastAPI app built by :func:`create_app`, a router
per area (uploads: the tus 1.0 endpoint at ``/files/``; assets and search at ``/assets``; the
HLS/DASH origin at ``/v/{token}/...`` and ``/o/...``; pages ``/watch/{asset_id}`` and ``/upload``;
health)."""

from vam.api.app import create_app

__all__ = ["create_app"]
