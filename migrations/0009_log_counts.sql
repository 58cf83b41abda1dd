-- What `stats` reports, kept up to date instead of counted per call:
-- COUNT(*) over a log of half a million events held the daemon's loop for
-- about a quarter of a second each time.
--
-- Events and messages: beside the log's head, written by the store with it
-- once per batch (appends add, retention's deletions subtract).
ALTER TABLE log_head ADD COLUMN event_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE log_head ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
-- Channel streams hold only message.published, mailbox streams only
-- message.sent ('0' follows '/').
UPDATE log_head SET
    event_count = (SELECT COUNT(*) FROM events),
    message_count = (SELECT COUNT(*) FROM events
                     WHERE (stream >= 'ch/' AND stream < 'ch0') OR (stream >= 'dm/' AND stream < 'dm0'));

-- Channels and memberships: rows of projections that change rarely, counted
-- by triggers, so a rebuild (which replays through the same tables) arrives
-- at the same counts, and a rolled-back savepoint takes its counting with it.
CREATE TABLE projection_counts (
    name   TEXT PRIMARY KEY,   -- 'channels', 'subscriptions'
    count  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO projection_counts (name, count) VALUES
    ('channels', (SELECT COUNT(*) FROM bot_channels)),
    ('subscriptions', (SELECT COUNT(*) FROM bot_subscriptions));

CREATE TRIGGER bot_channels_count_insert AFTER INSERT ON bot_channels BEGIN
    UPDATE projection_counts SET count = count + 1 WHERE name = 'channels';
END;
CREATE TRIGGER bot_channels_count_delete AFTER DELETE ON bot_channels BEGIN
    UPDATE projection_counts SET count = count - 1 WHERE name = 'channels';
END;
CREATE TRIGGER bot_subscriptions_count_insert AFTER INSERT ON bot_subscriptions BEGIN
    UPDATE projection_counts SET count = count + 1 WHERE name = 'subscriptions';
END;
CREATE TRIGGER bot_subscriptions_count_delete AFTER DELETE ON bot_subscriptions BEGIN
    UPDATE projection_counts SET count = count - 1 WHERE name = 'subscriptions';
END;

-- `consumers` pages in (channel, bot) order, also across every channel.
CREATE INDEX channel_consumers_by_channel ON channel_consumers(channel, bot_id);
