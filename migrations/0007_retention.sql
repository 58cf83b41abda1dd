-- Per-channel retention limits, set by channel.retention_set events. NULL:
-- the daemon's default (--retention-max-age-ms, --retention-max-messages);
-- 0: no limit of that kind.
ALTER TABLE bot_channels ADD COLUMN max_age_ms INTEGER;
ALTER TABLE bot_channels ADD COLUMN max_messages INTEGER;
