-- Retention: soft deletion with a grace period (vam delete / undelete, purged by vam_purge), and the
-- object deletions the catalog has committed to but storage has not done yet.
--
-- A deleted asset keeps its status (the status CHECK is left alone): deleted_at says it is deleted,
-- purge_after when its objects and rows go. Search and listings leave deleted assets out.
ALTER TABLE assets ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
ALTER TABLE assets ADD COLUMN IF NOT EXISTS purge_after timestamptz;
ALTER TABLE assets ADD COLUMN IF NOT EXISTS delete_reason text;
CREATE INDEX IF NOT EXISTS assets_purge_after_idx ON assets (purge_after) WHERE deleted_at IS NOT NULL;

-- Dedup looks for equal bytes stored more than once.
CREATE INDEX IF NOT EXISTS stored_objects_sha256_idx ON stored_objects (sha256) WHERE sha256 IS NOT NULL;

-- An object the catalog no longer points at and that storage must delete: written in the same
-- transaction that drops the catalog's last reference (a purge, a dedup), removed once storage has
-- deleted the object. A run interrupted between the two finds the row and finishes the delete; before
-- deleting, the object is checked to be unreferenced again and unchanged (size, etag when recorded).
-- No foreign key: the asset is usually gone already.
CREATE TABLE IF NOT EXISTS pending_deletes (
    uri             text PRIMARY KEY,
    asset_id        text,
    reason          text NOT NULL,          -- purge, dedup
    size_bytes      bigint,
    etag            text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Which catalog rows name an object (a purge keeps a copy another asset uses after a dedup; a queued
-- deletion is dropped when something names the object again): one index per column that holds an
-- object URI and has none yet.
CREATE INDEX IF NOT EXISTS assets_source_uri_idx ON assets (source_uri);
CREATE INDEX IF NOT EXISTS assets_hls_uri_idx ON assets (hls_uri) WHERE hls_uri IS NOT NULL;
CREATE INDEX IF NOT EXISTS assets_dash_uri_idx ON assets (dash_uri) WHERE dash_uri IS NOT NULL;
CREATE INDEX IF NOT EXISTS assets_captions_uri_idx ON assets (captions_uri) WHERE captions_uri IS NOT NULL;
CREATE INDEX IF NOT EXISTS assets_chapters_uri_idx ON assets (chapters_uri) WHERE chapters_uri IS NOT NULL;
CREATE INDEX IF NOT EXISTS renditions_uri_idx ON renditions (uri);
CREATE INDEX IF NOT EXISTS derived_outputs_uri_idx ON derived_outputs (uri);
CREATE INDEX IF NOT EXISTS scenes_keyframe_uri_idx ON scenes (keyframe_uri) WHERE keyframe_uri IS NOT NULL;
CREATE INDEX IF NOT EXISTS quality_metrics_frames_uri_idx ON quality_metrics (frames_uri)
    WHERE frames_uri IS NOT NULL;
CREATE INDEX IF NOT EXISTS asset_sources_asset_idx ON asset_sources (asset_id);
