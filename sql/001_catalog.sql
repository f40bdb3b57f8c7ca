-- vam catalog: assets, their renditions, quality metrics, stored objects and an append-only audit log.
-- Applied once by vam.catalog.db.migrate(); record kept in schema_migrations.

CREATE TABLE IF NOT EXISTS assets (
    asset_id        text PRIMARY KEY,
    content_sha256  text NOT NULL UNIQUE,
    source_uri      text NOT NULL,
    title           text,
    status          text NOT NULL
                    CHECK (status IN ('ingesting', 'processing', 'ready', 'rejected', 'failed')),
    reason          text,
    size_bytes      bigint,
    profile         text,
    source_meta     jsonb,
    hls_uri         text,
    dash_uri        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS assets_status_idx ON assets (status);

-- Every object key a source was seen under (the same bytes under two keys are one asset).
CREATE TABLE IF NOT EXISTS asset_sources (
    source_uri      text PRIMARY KEY,
    asset_id        text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    etag            text,
    size_bytes      bigint,
    first_seen_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS renditions (
    asset_id        text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    profile         text NOT NULL,          -- name@version
    name            text NOT NULL,
    codec           text NOT NULL,
    width           integer NOT NULL,
    height          integer NOT NULL,
    bitrate_kbps    integer,
    duration        double precision,
    frame_count     integer,
    size_bytes      bigint,
    sha256          text,
    uri             text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, profile, name)
);

CREATE TABLE IF NOT EXISTS quality_metrics (
    asset_id        text NOT NULL,
    profile         text NOT NULL,
    rendition       text NOT NULL,
    metric          text NOT NULL,          -- vmaf, ssim, psnr
    mean            double precision,
    min             double precision,
    harmonic_mean   double precision,
    model           text,
    n_subsample     integer,
    frames_uri      text,                   -- per-frame scores (libvmaf JSON log) in object storage
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, profile, rendition, metric),
    FOREIGN KEY (asset_id, profile, rendition)
        REFERENCES renditions (asset_id, profile, name) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS stored_objects (
    uri             text PRIMARY KEY,
    asset_id        text REFERENCES assets (asset_id) ON DELETE CASCADE,
    kind            text NOT NULL,          -- source, quarantine, rendition, segment, manifest, log
    size_bytes      bigint,
    sha256          text,
    storage_class   text,
    tier            text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS stored_objects_asset_idx ON stored_objects (asset_id);

CREATE TABLE IF NOT EXISTS asset_events (
    event_id        bigserial PRIMARY KEY,
    asset_id        text NOT NULL,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind            text NOT NULL,          -- status, registered, duplicate, ...
    from_status     text,
    to_status       text,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    actor           text
);
CREATE INDEX IF NOT EXISTS asset_events_asset_idx ON asset_events (asset_id, event_id);

-- The audit log is append-only.
CREATE OR REPLACE FUNCTION asset_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'asset_events is append-only';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS asset_events_no_change ON asset_events;
CREATE TRIGGER asset_events_no_change BEFORE UPDATE OR DELETE ON asset_events
    FOR EACH ROW EXECUTE FUNCTION asset_events_append_only();
