-- One run in flight per asset: the run that registered the asset holds it until its finalize.
ALTER TABLE assets ADD COLUMN IF NOT EXISTS run_id text;
ALTER TABLE assets ADD COLUMN IF NOT EXISTS run_lease_until timestamptz;
