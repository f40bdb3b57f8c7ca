-- Landing places: where each asset came from, and what discovery saw of objects still being written.
ALTER TABLE assets ADD COLUMN IF NOT EXISTS landing_uri text;

-- Each poll's view of a candidate object that is not ingested yet: an object is complete once its
-- size and etag (modification time) have stayed the same for long enough (see vam.ingest.landings).
CREATE TABLE IF NOT EXISTS landing_observations (
    uri             text PRIMARY KEY,
    size_bytes      bigint,
    etag            text,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),  -- since when it has looked like this
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    polls           integer NOT NULL DEFAULT 1           -- polls that saw it like this
);
