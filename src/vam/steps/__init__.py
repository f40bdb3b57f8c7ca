"""The steps of one asset and of the other flows: the only layer that joins media and enrichment
work to object storage and the catalog.

One module per stage. Every step takes a :class:`vam.runtime.Runtime` first, then ids and small
JSON-able dicts (URIs, numbers), and returns a small JSON-able dict: what an Airflow operator
pushes to XCom. Media never travels through the arguments, only URIs. Every step is idempotent:
output keys are deterministic (``{asset_id}/{profile}@{version}/...``) and catalog writes are
UPSERTs, so any step can be re-run.

Status follows the outcome: ``ingesting`` (registered) -> ``processing`` (valid input) ->
``ready`` (published); ``rejected`` when the input is unusable; ``failed`` when a step failed for
good. :func:`vam.steps.finalize.finalize` runs last whatever happened, so no asset stays
non-terminal.
"""
