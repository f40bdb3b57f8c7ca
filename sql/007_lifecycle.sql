-- Storage lifecycle: when each object was written (its age in its class), legal holds, restores of
-- cold assets, and the mover's journal (a move is copy -> verify -> catalog -> delete; the journal
-- lets the next run finish a move interrupted anywhere). No foreign key to assets on the journal or
-- the restores: the audit trail (asset_events) and these rows outlive the assets they describe.
ALTER TABLE stored_objects ADD COLUMN IF NOT EXISTS written_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS stored_objects_tier_idx ON stored_objects (tier);

ALTER TABLE assets ADD COLUMN IF NOT EXISTS legal_hold boolean NOT NULL DEFAULT false;
ALTER TABLE assets ADD COLUMN IF NOT EXISTS hold_reason text;
ALTER TABLE assets ADD COLUMN IF NOT EXISTS held_at timestamptz;

-- One restore of a cold asset to the hot tier at a time: requested (the cold class needs a restore
-- request first) -> restoring (requested from the store, polled) -> restored (hot until expires_at)
-- -> expired (moved back to restored_from by the lifecycle run).
CREATE TABLE IF NOT EXISTS asset_restores (
    asset_id        text PRIMARY KEY,
    state           text NOT NULL CHECK (state IN ('requested', 'restoring', 'restored', 'expired')),
    days            integer NOT NULL CHECK (days > 0),
    restored_from   text,                   -- the tier the asset goes back to on expiry
    requested_at    timestamptz NOT NULL DEFAULT now(),
    restored_at     timestamptz,
    expires_at      timestamptz,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- The mover's journal: one row per object of a move in flight. state 'copying' (nothing in the
-- catalog changed yet: the next run redoes or undoes the copy), 'committed' (the catalog points at
-- dst_uri: the next run deletes src_uri). action 'delete' rows have no dst_uri.
CREATE TABLE IF NOT EXISTS lifecycle_journal (
    src_uri         text PRIMARY KEY,
    dst_uri         text,
    asset_id        text NOT NULL,
    group_id        text NOT NULL,
    action          text NOT NULL CHECK (action IN ('move', 'delete')),
    state           text NOT NULL CHECK (state IN ('copying', 'committed')),
    sha256          text,
    dst_tier        text,
    dst_class       text,
    started_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS lifecycle_journal_group_idx ON lifecycle_journal (group_id);
