-- vam catalog: enrichment (transcripts, scenes, chapters, labels, moderation), manual tags and search.
-- Every per-asset table is rewritten as a whole by its step (delete + insert in one transaction),
-- so a re-run replaces its rows. Written by vam.catalog.enrichment, read by vam.catalog.search.

-- -- assets: tags, moderation flag, published text tracks, filterable technical metadata ----------

ALTER TABLE assets
    ADD COLUMN IF NOT EXISTS tags                 jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS moderation_flagged   boolean,      -- NULL: not moderated yet
    ADD COLUMN IF NOT EXISTS moderation_score     real,         -- highest keyframe score
    ADD COLUMN IF NOT EXISTS moderation_threshold real,         -- the threshold it was compared with
    ADD COLUMN IF NOT EXISTS captions_uri         text,         -- WebVTT captions track
    ADD COLUMN IF NOT EXISTS chapters_uri         text;         -- WebVTT chapters track

-- A number from JSON text, or NULL when it is not one (a malformed probe value must never make
-- an asset write fail because of a derived column).
CREATE OR REPLACE FUNCTION vam_json_number(value text) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN value ~ '^\s*-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*$' THEN value::double precision END
$$;

-- Filter columns derived from source_meta (vam.media.types.MediaInfo as JSON).
ALTER TABLE assets
    ADD COLUMN IF NOT EXISTS duration_s double precision
        GENERATED ALWAYS AS (vam_json_number(source_meta ->> 'duration')) STORED,
    ADD COLUMN IF NOT EXISTS video_height integer
        GENERATED ALWAYS AS (round(coalesce(vam_json_number(source_meta ->> 'display_height'),
                                            vam_json_number(source_meta ->> 'height')))::integer) STORED,
    ADD COLUMN IF NOT EXISTS video_codec text
        GENERATED ALWAYS AS (lower(source_meta ->> 'video_codec')) STORED;

CREATE INDEX IF NOT EXISTS assets_duration_idx ON assets (duration_s);
CREATE INDEX IF NOT EXISTS assets_height_idx ON assets (video_height);
CREATE INDEX IF NOT EXISTS assets_codec_idx ON assets (video_codec);
CREATE INDEX IF NOT EXISTS assets_tags_idx ON assets USING gin (tags jsonb_path_ops);
CREATE INDEX IF NOT EXISTS assets_flagged_idx ON assets (asset_id) WHERE moderation_flagged;

-- -- transcripts -----------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS transcripts (
    asset_id    text PRIMARY KEY REFERENCES assets (asset_id) ON DELETE CASCADE,
    language    text,
    model       text,
    text        text NOT NULL DEFAULT '',   -- '' when the asset has no speech
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS transcript_segments (
    asset_id    text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    start_s     double precision NOT NULL,
    end_s       double precision NOT NULL,
    text        text NOT NULL,
    words       jsonb,                      -- [{word, start, end, probability}, ...]
    tsv         tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED,
    embedding   real[],                     -- sentence embedding (384 floats, L2-normalised) or NULL
    PRIMARY KEY (asset_id, seq),
    CHECK (end_s >= start_s),
    CHECK (embedding IS NULL OR cardinality(embedding) = 384)
);
CREATE INDEX IF NOT EXISTS transcript_segments_tsv_idx ON transcript_segments USING gin (tsv);

-- -- scenes and chapters -----------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS scenes (
    asset_id     text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    seq          integer NOT NULL,
    start_s      double precision NOT NULL,
    end_s        double precision NOT NULL,
    confidence   real,                      -- boundary probability of the cut that opens the scene
    keyframe_uri text,
    PRIMARY KEY (asset_id, seq)
);

CREATE TABLE IF NOT EXISTS chapters (
    asset_id    text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    start_s     double precision NOT NULL,
    end_s       double precision NOT NULL,
    title       text NOT NULL,
    PRIMARY KEY (asset_id, seq)
);

-- -- labels --------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS scene_labels (
    asset_id    text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    scene_seq   integer NOT NULL,
    label       text NOT NULL,
    score       real NOT NULL,
    PRIMARY KEY (asset_id, scene_seq, label)
);

CREATE TABLE IF NOT EXISTS asset_labels (
    asset_id    text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    label       text NOT NULL,
    score       real NOT NULL,
    scenes      integer[] NOT NULL DEFAULT '{}',   -- scene seqs the label was seen in
    PRIMARY KEY (asset_id, label)
);
CREATE INDEX IF NOT EXISTS asset_labels_label_idx ON asset_labels (label, asset_id);

-- -- moderation ----------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS moderation (
    asset_id    text NOT NULL REFERENCES assets (asset_id) ON DELETE CASCADE,
    scene_seq   integer NOT NULL,
    score       real NOT NULL,
    detections  jsonb NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (asset_id, scene_seq)
);

-- -- search documents ----------------------------------------------------------------------------
-- One weighted tsvector per asset: title A, tags and labels B, transcript C.

CREATE TABLE IF NOT EXISTS search_documents (
    asset_id    text PRIMARY KEY REFERENCES assets (asset_id) ON DELETE CASCADE,
    document    tsvector NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS search_documents_document_idx ON search_documents USING gin (document);

-- Rebuild the search documents of these assets from their current rows. The asset rows are locked
-- first (FOR NO KEY UPDATE, which does not conflict with the key-share locks foreign keys take) and
-- the document is built by a later statement, so with READ COMMITTED it sees every enrichment
-- committed before the lock was granted: two steps of one asset refreshing at once cannot leave a
-- document that misses the other's rows. Tag values under keys that hold codes or dates are not
-- words anyone searches for, so they are left out.
CREATE OR REPLACE FUNCTION refresh_search_documents(ids text[]) RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM assets WHERE asset_id = ANY (ids) ORDER BY asset_id FOR NO KEY UPDATE;
    INSERT INTO search_documents AS d (asset_id, document, updated_at)
    SELECT a.asset_id,
           setweight(to_tsvector('english', coalesce(regexp_replace(a.title, '[_.]+', ' ', 'g'), '')), 'A')
           || setweight(to_tsvector('english', coalesce(tg.words, '')), 'B')
           || setweight(to_tsvector('english', coalesce(lb.words, '')), 'B')
           || setweight(to_tsvector('english', coalesce(t.text, '')), 'C'),
           now()
    FROM assets a
    LEFT JOIN transcripts t ON t.asset_id = a.asset_id
    LEFT JOIN LATERAL (
        SELECT string_agg(v.value #>> '{}', ' ') AS words
        FROM jsonb_each(a.tags) AS e (key, value),
             jsonb_path_query(e.value, 'strict $.**') AS v (value)
        WHERE e.key NOT IN ('allowed_countries', 'blocked_countries', 'license_expiry')
          AND jsonb_typeof(v.value) IN ('string', 'number')
    ) tg ON true
    LEFT JOIN LATERAL (
        SELECT string_agg(l.label, ' ') AS words FROM asset_labels l WHERE l.asset_id = a.asset_id
    ) lb ON true
    WHERE a.asset_id = ANY (ids)
    ON CONFLICT (asset_id) DO UPDATE SET document = EXCLUDED.document, updated_at = EXCLUDED.updated_at;
END;
$$;

-- A new asset is searchable by its title at once; title and tag changes refresh its document.
CREATE OR REPLACE FUNCTION assets_refresh_search_document() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_search_documents(ARRAY[NEW.asset_id]);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS assets_search_document_insert ON assets;
CREATE TRIGGER assets_search_document_insert AFTER INSERT ON assets
    FOR EACH ROW EXECUTE FUNCTION assets_refresh_search_document();

DROP TRIGGER IF EXISTS assets_search_document_update ON assets;
CREATE TRIGGER assets_search_document_update AFTER UPDATE OF title, tags ON assets
    FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.tags IS DISTINCT FROM NEW.tags)
    EXECUTE FUNCTION assets_refresh_search_document();

-- Documents for the assets that existed before this migration.
SELECT refresh_search_documents(array_agg(asset_id)) FROM assets;
