-- When an asset was last read (playback through the origin, `vam show`/`vam url`): lifecycle
-- policies tier on it. Written at most once per asset every few minutes (Catalog.touch_access),
-- so a playback never costs a database write per segment.
ALTER TABLE assets ADD COLUMN IF NOT EXISTS last_accessed_at timestamptz;
CREATE INDEX IF NOT EXISTS assets_last_accessed_idx ON assets (last_accessed_at);
