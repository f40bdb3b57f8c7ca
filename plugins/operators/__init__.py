"""vam's operator library: operators, a sensor and a trigger over :mod:`vam.steps`.

Import them the way you import a provider's operators (``plugins/`` is on Airflow's path)::

    from operators.ingest import VamRegisterOperator, VamDiscoverOperator, VamLandingSensor
    from operators.media import (VamProbeOperator, VamPlanOperator, VamTranscodeOperator,
        VamQualityOperator, VamQualityGateOperator, VamPackageOperator, VamPublishOperator,
        VamFinalizeOperator, VamSocialCropOperator, ASSET_READY)
    from operators.enrich import (VamTagsOperator, VamTranscriptOperator, VamScenesOperator,
        VamLabelsOperator, VamModerationOperator)

Every operator: keyword-only arguments that are only assigned in ``__init__``; ``template_fields``
for what you would template (source URI, profile, asset id, rendition...); ``aws_conn_id``
(default ``aws_default``) for S3 credentials; clients built in ``execute``; a small JSON result in
XCom (ids, URIs, numbers; never media); ``on_kill`` stops the media processes. A step that fails
for good (a rejected source, bad metadata, a failed quality gate) fails the task without retries
and records the reason against the asset. See the README, "Adding a DAG".
"""
