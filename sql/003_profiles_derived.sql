-- Pinned encoding profile versions and derived outputs (social crops and other derivatives).

-- The exact definition of every profile version a run used: `plan` records it, every later task
-- of the run reads it back from here by (key, sha256), so a profile file edited mid-run never
-- mixes versions within a run.
CREATE TABLE IF NOT EXISTS profile_versions (
    profile_key     text NOT NULL,          -- name@version
    sha256          text NOT NULL,          -- of the canonical JSON of the definition
    name            text NOT NULL,
    version         text NOT NULL,
    definition      jsonb NOT NULL,
    first_used_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (profile_key, sha256)
);

-- Outputs derived from an asset's source by a flow other than the ladder (e.g. a 9:16 crop).
CREATE TABLE IF NOT EXISTS derived_outputs (
    asset_id        text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    name            text NOT NULL,          -- e.g. social-9x16
    kind            text NOT NULL,          -- e.g. social_crop
    spec            jsonb NOT NULL DEFAULT '{}'::jsonb,
    uri             text NOT NULL,
    width           integer,
    height          integer,
    duration        double precision,
    frame_count     integer,
    size_bytes      bigint,
    sha256          text,
    vmaf            double precision,
    ssim            double precision,
    psnr            double precision,
    quality         jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, name)
);
