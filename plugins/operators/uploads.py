"""Upload operators: expire the unfinished resumable (tus) uploads of ``vam serve``.

Example (the core of ``dags/vam_uploads_cleanup.py``)::

    from operators.uploads import VamExpireUploadsOperator

    VamExpireUploadsOperator(task_id="expire_uploads")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators._base import VamOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class VamExpireUploadsOperator(VamOperator):
    """Delete the unfinished uploads under ``upload_uri`` whose expiration has passed (setting
    ``upload_expiration_seconds``): their data (part files, S3 multipart parts and tail objects)
    and their state; also the state left by terminated or landed uploads once it has expired, and
    S3 multipart uploads under the prefix that no state names. Returns the counts
    ``{"expired", "tombstones", "orphans"}``."""

    def execute(self, context: Context) -> dict:
        from vam.steps.uploads import expire_uploads

        return self.call(context, None, expire_uploads)
