"""``vam serve``: the HTTP service under uvicorn, bound to the one address given."""

from __future__ import annotations

import logging

from vam.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, *, workers: int = 1) -> None:
    """Run the service until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    import uvicorn

    from vam.api.app import create_app

    app = create_app(settings)
    log.info("vam serve on http://%s:%d (tus uploads at /files/, OpenAPI at /docs)", host, port)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, timeout_keep_alive=30)
