-- Transformation URLs (issue 13): one row per (asset, canonical transformation), the build's state
-- and lease (the cross-process build limit), and the hit counter; watermark images for l_.

CREATE TABLE IF NOT EXISTS transformations (
    asset_id        text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    digest          text NOT NULL,          -- sha256 of the canonical text, first 20 hex digits
    canonical       text NOT NULL,          -- e.g. c_fill,g_auto,w_720,h_720/f_mp4
    format          text NOT NULL,          -- mp4, webm, gif, jpg
    status          text NOT NULL,          -- queued, building, ready, failed
    uri             text,                   -- the published object (ready)
    owner           text,                   -- who builds it (process/thread or Airflow run)
    lease_expires_at timestamptz,           -- a build whose lease ran out may be taken over
    size_bytes      bigint,
    sha256          text,
    width           integer,
    height          integer,
    duration        double precision,
    build_seconds   double precision,
    error           text,
    hits            bigint NOT NULL DEFAULT 0,
    builds          integer NOT NULL DEFAULT 0,
    last_hit_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, digest)
);
CREATE INDEX IF NOT EXISTS transformations_building_idx ON transformations (status, lease_expires_at);

CREATE TABLE IF NOT EXISTS overlays (
    overlay_id      text PRIMARY KEY,       -- the l_ value
    uri             text NOT NULL,
    sha256          text NOT NULL,
    size_bytes      bigint NOT NULL,
    width           integer NOT NULL,
    height          integer NOT NULL,
    content_type    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
