-- Per-title ladder analysis (vam.media.per_title, vam.steps.ladder_analysis): the trial encodes of
-- each candidate size (one row per asset, profile and size: the ladder_trial tasks write them) and
-- the ladder chosen from them (one row per asset and profile: the plan writes it), with the hull
-- points, why each rung was chosen or dropped, and the URI of the hull chart (a PNG stored with
-- the asset). Re-runs overwrite their rows (UPSERT).
CREATE TABLE IF NOT EXISTS ladder_trials (
    asset_id text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    profile text NOT NULL,
    candidate text NOT NULL,  -- e.g. "720p"
    height integer NOT NULL,
    samples jsonb NOT NULL,  -- [{start, duration, activity}]
    points jsonb NOT NULL,  -- [{width, height, crf, bitrate_kbps, vmaf, ...}]
    seconds real,  -- wall time of the trial encodes and their scoring
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, profile, candidate)
);

CREATE TABLE IF NOT EXISTS ladder_analyses (
    asset_id text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    profile text NOT NULL,
    analysis jsonb NOT NULL,  -- {samples, hull, rungs: [{name, target_vmaf, ..., reason}], dropped}
    chart_uri text,  -- the hull PNG
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, profile)
);
