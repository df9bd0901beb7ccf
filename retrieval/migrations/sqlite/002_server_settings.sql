-- Per-server settings and the log of their changes. A database made before migrations may already have them.
CREATE TABLE IF NOT EXISTS server_settings (guild_id TEXT PRIMARY KEY, qa_channels TEXT, admin_roles TEXT,
  results INTEGER, cooldown INTEGER, changed_by TEXT, changed_at TEXT, left_at TEXT);
CREATE TABLE IF NOT EXISTS server_settings_changes (id INTEGER PRIMARY KEY AUTOINCREMENT, changed_at TEXT NOT NULL,
  guild_id TEXT NOT NULL, user_id TEXT, setting TEXT NOT NULL, old_value TEXT, new_value TEXT);
CREATE INDEX IF NOT EXISTS server_settings_changes_guild ON server_settings_changes (guild_id, id);
INSERT OR IGNORE INTO meta (key, value) VALUES ('settings_version', '0');
